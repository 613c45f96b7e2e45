"""The budget report as an Excel workbook a desk officer at the EC accepts as it prints.

Sheets: Summary (the cover: period covered, as-of date, the headline figures as formulas over the other sheets,
the EC contribution apart from the consortia's co-financing, and the chart), then Windows, Countries, Headings,
Years, Applicant types and Grants, and Checks (the internal cross-checks, each of which must read 0.00 — kept off
the cover). Every sheet opens with three title rows (programme, budget line and currency; period covered and
as-of date) and a header row (row 4, frozen, repeated on every printed page with the titles); data starts in row
5 and the breakdown sheets end with a Total row of SUM formulas.

Printing: A4 landscape, each sheet fitted to the page width (the Summary to one page, so its chart is whole),
readable column widths with long texts and titles wrapped, and a footer with the sheet, the page number and the
as-of date.

Amounts carry the number format '#,##0.00 "€"' and are written with their exact decimal digits: openpyxl would
write a Decimal through "%.16g" (a float), which turns 810554.19 into 810554.1899999999, so money cells are stored
as numeric cells whose text is the Decimal's own digits (see `_money`). openpyxl does not calculate formulas:
Excel and LibreOffice do on opening. The data cells under them are the report's exact figures, so a reader that
ignores formulas still sees every amount.
"""

from __future__ import annotations

import io
import math
from datetime import date
from decimal import Decimal
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from services.common.values.inert import clean_text, text_cell
from services.common.values.money import money_str

from ..domain.budget_report import BUDGET_LINE_FR, BudgetReport
from .chart import Breakdown, add_charts
from .sections import INT, MONEY, RATE, TEXT, Section, as_of_text, period_covered, report_sections

EUR_FORMAT = '#,##0.00 "€"'
RATE_FORMAT = "0.00%"
INT_FORMAT = "#,##0"
DATE_FORMAT = "yyyy-mm-dd"
HEADER_ROW = 4
FIRST_DATA_ROW = 5

SHEET_NAMES = {
    "windows": "Windows",
    "countries": "Countries",
    "headings": "Headings",
    "years": "Years",
    "applicant_types": "Applicant types",
    "grants": "Grants",
    "expenditure_lines": "Expenditure lines",
    "results": "Results",
    "results_totals": "Results by country",
}
SHEET_TITLES = {
    "windows": "Commitments and disbursements by call window",
    "countries": "Commitments and disbursements by country",
    "headings": "Annex III budget (EC contribution and co-financing) and reported expenditure by heading",
    "years": "Commitments (award date) and disbursements (value date) by year",
    "applicant_types": "Commitments and disbursements by applicant type",
    "grants": "Grants awarded",
    "expenditure_lines": "Expenditure lines in their own currencies, with the rate used and the EUR value",
    "results": "Results: indicators, baselines, targets and the actuals reported",
    "results_totals": "Results per window and country: unit indicators sharing a code and a unit, summed",
}

_TITLE_FONT = Font(bold=True, size=14, color="1F4E79")
_SUBTITLE_FONT = Font(italic=True, size=10, color="404040")
_PERIOD_FONT = Font(bold=True, size=10, color="1F4E79")
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
_TOTAL_FONT = Font(bold=True)
_TOTAL_BORDER = Border(top=Side(style="thin"), bottom=Side(style="double"))
_WRAP = Alignment(wrap_text=True, vertical="top")
_TOP = Alignment(vertical="top")


def _money(ws, row: int, column: int, value: Decimal):
    """A numeric cell holding exactly the Decimal's digits ("810554.19") in the file."""
    cell = ws.cell(row=row, column=column, value=money_str(value))
    cell.data_type = "n"  # a number in the file, its text written verbatim
    cell.number_format = EUR_FORMAT
    return cell


def _ref(sheet: str) -> str:
    return f"'{sheet}'" if " " in sheet else sheet


def _titles(ws, report: BudgetReport, title: str, produced_on: date | None, widths: Sequence[float]) -> None:
    """Three title rows, each merged across the table's width and wrapped (rows as tall as their lines), so
    nothing is cut at the margin."""
    lines = [
        (f"{report.programme_name} — {title}", _TITLE_FONT),
        (
            f"EC budget line: {report.budget_line} ({BUDGET_LINE_FR}) · Programme {report.programme_id} · "
            f"Amounts in {report.currency}",
            _SUBTITLE_FONT,
        ),
        (
            f"Period covered: {period_covered(report, produced_on)} · As of {as_of_text(report, produced_on)}",
            _PERIOD_FONT,
        ),
    ]
    last = get_column_letter(max(len(widths), 2))
    room = sum(widths)  # in widths of a digit of the 11-point body font
    for row, (text, font) in enumerate(lines, start=1):
        cell = text_cell(ws.cell(row=row, column=1), text)  # the programme's name is staff's text
        cell.font, cell.alignment = font, Alignment(wrap_text=True, vertical="center")
        ws.merge_cells(f"A{row}:{last}{row}")
        per_line = max(1.0, room * 11 / font.size * 1.1)
        ws.row_dimensions[row].height = font.size * 1.45 * math.ceil(len(text) / per_line) + 4


def _header(ws, titles: list[str]) -> None:
    for col, text in enumerate(titles, start=1):
        cell = text_cell(ws.cell(row=HEADER_ROW, column=col), text)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.row_dimensions[HEADER_ROW].height = 32


def _print_setup(ws: Worksheet, report: BudgetReport, *, one_page: bool = False) -> None:
    """A4 landscape, fitted to the page width (and height, for a one-page sheet); titles and header repeated on
    every page; a footer saying which sheet, which page, as of when."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1 if one_page else 0
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    if not one_page:
        ws.print_title_rows = f"1:{HEADER_ROW}"
    as_of = report.as_of.isoformat() if report.as_of else "all recorded facts"
    ws.oddFooter.left.text = "&A"
    ws.oddFooter.center.text = "Page &P of &N"
    ws.oddFooter.right.text = f"{report.programme_id} · as of {as_of}"


def _column_of(section: Section, title: str) -> str:
    for index, column in enumerate(section.columns, start=1):
        if column.title == title:
            return get_column_letter(index)
    raise KeyError(title)


def _data_sheet(wb: Workbook, report: BudgetReport, section: Section, produced_on: date | None) -> tuple[str, int]:
    """Write one breakdown sheet; returns (sheet name, last data row)."""
    name = SHEET_NAMES[section.key]
    ws = wb.create_sheet(name)
    # wide enough for the figures; a long title wraps in its two-line header instead of widening the column
    widths = [max(column.width, min(len(column.title) + 2, 16)) for column in section.columns]
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = width
    _titles(ws, report, SHEET_TITLES[section.key], produced_on, widths)
    _header(ws, [c.title for c in section.columns])
    kinds = [c.kind for c in section.columns]
    wrapped = {i for i, c in enumerate(section.columns, start=1) if c.kind == TEXT and c.width >= 20}
    dates = {i for i, c in enumerate(section.columns, start=1) if c.title == "Awarded"}
    for r, row in enumerate(section.rows, start=FIRST_DATA_ROW):
        for c, (value, kind) in enumerate(zip(row, kinds), start=1):
            if c in dates and value:
                value = date.fromisoformat(value)
            if kind == MONEY:
                _money(ws, r, c, value).alignment = _TOP
                continue
            # text from staff and applicants (titles, organisations) is never a formula
            cell = (
                text_cell(ws.cell(row=r, column=c), value)
                if isinstance(value, str)
                else ws.cell(row=r, column=c, value=value)
            )
            cell.alignment = _TOP
            if kind == INT:
                cell.number_format = INT_FORMAT
            elif isinstance(value, date):
                cell.number_format = DATE_FORMAT
            elif c in wrapped:
                cell.alignment = _WRAP
        # wrapped texts take lines: the row is as tall as its longest (a reader opening the file sees them whole)
        lines = max((math.ceil(len(str(row[c - 1] or "")) / (widths[c - 1] * 1.15)) for c in wrapped), default=1)
        ws.row_dimensions[r].height = 15 * max(1, lines)
    last = FIRST_DATA_ROW + len(section.rows) - 1
    if section.key != "grants" and section.totals:
        total_row = last + 1
        for c, kind in enumerate(kinds, start=1):
            letter = get_column_letter(c)
            if c == 1:
                value = "Total"
            elif kind in (MONEY, INT):
                value = f"=SUM({letter}{FIRST_DATA_ROW}:{letter}{last})" if section.rows else 0
            else:
                value = None
            cell = ws.cell(row=total_row, column=c, value=value)
            cell.font = _TOTAL_FONT
            cell.border = _TOTAL_BORDER
            if kind == MONEY:
                cell.number_format = EUR_FORMAT
            elif kind == INT:
                cell.number_format = INT_FORMAT
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=2 if section.key == "grants" else 1)
    if section.rows:
        ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(section.columns))}{last}"
    # technical columns (the grant id) stay in the file, off the printed page
    printed = [c for c in section.columns if c.title != "Grant id"]
    ws.print_area = f"A1:{get_column_letter(len(printed))}{max(last + 1, HEADER_ROW)}"
    _print_setup(ws, report)
    return name, last


def _sum(sheet: str, column: str, last: int) -> str:
    if last < FIRST_DATA_ROW:
        return "0"
    return f"SUM({_ref(sheet)}!{column}{FIRST_DATA_ROW}:{column}{last})"


def _figures(ws, rows: list[tuple], first_row: int) -> dict[str, str]:
    """Label / value rows from `first_row`; returns label -> the value's cell reference."""
    cells = {}
    for r, (label, value, kind) in enumerate(rows, start=first_row):
        text_cell(ws.cell(row=r, column=1), label)
        if value is None:
            continue
        cell = _money(ws, r, 2, value) if isinstance(value, Decimal) else ws.cell(row=r, column=2, value=value)
        cell.number_format = {MONEY: EUR_FORMAT, RATE: RATE_FORMAT, INT: INT_FORMAT}.get(kind, cell.number_format)
        cells[label] = f"B{r}"
    return cells


def build_workbook(
    report: BudgetReport, *, with_chart: bool = True, produced_on: date | None = None, extra_sections=()
) -> Workbook:
    """The workbook, its charts (exports/chart.py) on the Summary sheet unless `with_chart` is false.
    `produced_on` dates a report of everything recorded (no as-of date). `extra_sections` (expenditure lines,
    results) get a sheet each after the breakdowns."""
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    last, by_key = {}, {}
    for section in report_sections(report):
        _, last_row = _data_sheet(wb, report, section, produced_on)
        last[section.key], by_key[section.key] = last_row, section
    for section in extra_sections:
        _data_sheet(wb, report, section, produced_on)

    summary_widths = [46, 22, 4, 14, 14, 14, 14, 14]  # the figures in A:B, the chart under them across A:H
    for c, width in enumerate(summary_widths, start=1):
        summary.column_dimensions[get_column_letter(c)].width = width
    _titles(summary, report, "EC budget report", produced_on, summary_widths)
    _header(summary, ["Item", "Amount"])
    win, hdg, grt = last["windows"], last["headings"], last["grants"]
    windows, grants, headings = by_key["windows"], by_key["grants"], by_key["headings"]
    w_committed, w_disbursed = _column_of(windows, "Committed EUR"), _column_of(windows, "Disbursed EUR")
    g_committed = _column_of(grants, "EC contribution committed EUR")
    g_contracted = _column_of(grants, "Contracted")
    contracted = (
        f"SUMIFS(Grants!{g_committed}{FIRST_DATA_ROW}:{g_committed}{grt},"
        f'Grants!{g_contracted}{FIRST_DATA_ROW}:{g_contracted}{grt},"Yes")'
        if grt >= FIRST_DATA_ROW
        else "0"
    )
    cells = _figures(
        summary,
        [
            ("Envelope (EC contribution)", report.envelope, MONEY),
            ("Committed (awards: EC contribution)", f"={_sum('Windows', w_committed, win)}", MONEY),
            ("Contracted", f"={contracted}", MONEY),
            ("Disbursed (tranches paid)", f"={_sum('Windows', w_disbursed, win)}", MONEY),
            ("Remaining (envelope − committed)", "=B5-B6", MONEY),
            ("Absorption rate (disbursed / committed)", "=IF(B6=0,0,ROUND(B8/B6,4))", RATE),
            (
                "Reported expenditure (accepted reports)",
                f"={_sum('Headings', _column_of(headings, 'Reported expenditure EUR'), hdg)}",
                MONEY,
            ),
            ("Proposals received", report.counts.proposals, INT),
            ("Eligible proposals", report.counts.eligible_proposals, INT),
            ("Awards", f"={_sum('Windows', _column_of(windows, 'Grants'), win)}", INT),
            # B15, B16, B17: the awarded grants' Annex III budgets, the EC's part and the consortia's apart
            (
                "Total eligible costs of the awarded grants",
                f"={_sum('Grants', _column_of(grants, 'Total eligible costs EUR'), grt)}",
                MONEY,
            ),
            ("of which EC contribution", "=B15-B17", MONEY),
            (
                "of which co-financing (by the consortia)",
                f"={_sum('Grants', _column_of(grants, 'Co-financing EUR'), grt)}",
                MONEY,
            ),
        ],
        FIRST_DATA_ROW,
    )
    summary.freeze_panes = f"A{FIRST_DATA_ROW}"
    chart_row = FIRST_DATA_ROW + 15
    bottom = chart_row
    if with_chart:
        bottom = add_charts(
            summary, chart_row, _breakdown(wb, windows, win), _breakdown(wb, by_key["years"], last["years"])
        )
    # the print area holds the figures and the whole chart: one A4 landscape page
    summary.print_area = f"A1:H{bottom}"
    _print_setup(summary, report, one_page=True)

    _checks_sheet(wb, report, produced_on, cells, by_key, last)
    wb.properties.title = clean_text(f"{report.programme_name} — EC budget report")
    wb.properties.subject = report.budget_line
    wb.properties.creator = "JMDI reporting service"
    return wb


def _breakdown(wb: Workbook, section: Section, last_row: int) -> Breakdown:
    """The committed and disbursed columns of a breakdown sheet, for its chart."""
    return Breakdown(
        wb[SHEET_NAMES[section.key]],
        HEADER_ROW,
        FIRST_DATA_ROW,
        last_row,
        1,
        column_index_from_string(_column_of(section, "Committed EUR")),
        column_index_from_string(_column_of(section, "Disbursed EUR")),
    )


def _checks_sheet(
    wb: Workbook, report: BudgetReport, produced_on: date | None, cells: dict, by_key: dict, last: dict
) -> None:
    """The cross-checks of the figures (each must read 0.00): for the one who prepares the report, not the cover."""
    ws = wb.create_sheet("Checks")
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 46, 22
    _titles(ws, report, "Internal checks (each must read 0.00)", produced_on, [46, 22])
    _header(ws, ["Check", "Difference"])
    committed, disbursed = (
        f"Summary!{cells['Committed (awards: EC contribution)']}",
        f"Summary!{cells['Disbursed (tranches paid)']}",
    )
    countries, years, grants = by_key["countries"], by_key["years"], by_key["grants"]
    rows = [
        (
            "Committed by country − by window",
            f"={_sum('Countries', _column_of(countries, 'Committed EUR'), last['countries'])}-{committed}",
        ),
        (
            "Committed by year − by window",
            f"={_sum('Years', _column_of(years, 'Committed EUR'), last['years'])}-{committed}",
        ),
        (
            "Committed over grants − by window",
            f"={_sum('Grants', _column_of(grants, 'EC contribution committed EUR'), last['grants'])}-{committed}",
        ),
        (
            "Disbursed by country − by window",
            f"={_sum('Countries', _column_of(countries, 'Disbursed EUR'), last['countries'])}-{disbursed}",
        ),
        (
            "Disbursed by year − by window",
            f"={_sum('Years', _column_of(years, 'Disbursed EUR'), last['years'])}-{disbursed}",
        ),
        (
            "Paid over grants − disbursed",
            f"={_sum('Grants', _column_of(grants, 'Paid EUR'), last['grants'])}-{disbursed}",
        ),
    ]
    for r, (label, formula) in enumerate(rows, start=FIRST_DATA_ROW):
        ws.cell(row=r, column=1, value=label)
        ws.cell(row=r, column=2, value=formula).number_format = EUR_FORMAT
    ws.freeze_panes = f"A{FIRST_DATA_ROW}"
    _print_setup(ws, report, one_page=True)


def write_xlsx(
    report: BudgetReport, out, *, with_chart: bool = True, produced_on: date | None = None, extra_sections=()
) -> None:
    """Save the workbook to a path or a binary stream (its charts unless `with_chart` is false)."""
    wb = build_workbook(report, with_chart=with_chart, produced_on=produced_on, extra_sections=extra_sections)
    wb.save(str(out) if isinstance(out, Path) else out)


def xlsx_bytes(report: BudgetReport, **kwargs) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(report, buffer, **kwargs)
    return buffer.getvalue()
