"""The budget report as an Excel workbook a programme officer can send to the EC.

Sheets: Summary (totals as formulas over the other sheets, envelope, remaining, absorption rate, checks that
must read 0, the chart), then Windows, Countries, Headings, Years, Applicant types and Grants. Every sheet
opens with two title rows (programme name, budget line "Migration and Asylum", currency and as-of date), a blank
row and a frozen header row (row 4); data starts in row 5 and the breakdown sheets end with a Total row of SUM
formulas. Amounts carry the number format '#,##0.00 "€"' and are written with their exact decimal digits:
openpyxl would write a Decimal through "%.16g" (a float), which turns 810554.19 into 810554.1899999999, so
money cells are stored as numeric cells whose text is the Decimal's own digits (see `_money`).

openpyxl does not calculate formulas: Excel and LibreOffice do on opening. The data cells under them are the
report's exact figures, so a reader that ignores formulas still sees every amount.
"""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.drawing.image import Image
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from services.common.money import money_str

from ..budget_report import BUDGET_LINE_FR, BudgetReport
from .sections import INT, MONEY, RATE, Section, report_sections

EUR_FORMAT = '#,##0.00 "€"'
RATE_FORMAT = "0.00%"
INT_FORMAT = "#,##0"
DATE_FORMAT = "yyyy-mm-dd"
HEADER_ROW = 4
FIRST_DATA_ROW = 5

SHEET_NAMES = {
    "windows": "Windows", "countries": "Countries", "headings": "Headings", "years": "Years",
    "applicant_types": "Applicant types", "grants": "Grants",
}
SHEET_TITLES = {
    "windows": "Commitments and disbursements by call window",
    "countries": "Commitments and disbursements by country",
    "headings": "Annex III budget and reported expenditure by heading",
    "years": "Commitments (award date) and disbursements (value date) by year",
    "applicant_types": "Commitments and disbursements by applicant type",
    "grants": "Grants awarded",
}

_TITLE_FONT = Font(bold=True, size=14, color="1F4E79")
_SUBTITLE_FONT = Font(italic=True, size=10, color="404040")
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
_TOTAL_FONT = Font(bold=True)
_TOTAL_BORDER = Border(top=Side(style="thin"), bottom=Side(style="double"))


def _money(ws, row: int, column: int, value: Decimal):
    """A numeric cell holding exactly the Decimal's digits ("810554.19") in the file."""
    cell = ws.cell(row=row, column=column, value=money_str(value))
    cell.data_type = "n"  # a number in the file, its text written verbatim
    cell.number_format = EUR_FORMAT
    return cell


def _ref(sheet: str) -> str:
    return f"'{sheet}'" if " " in sheet else sheet


def _titles(ws, report: BudgetReport, title: str, width_cols: int) -> None:
    as_of = report.as_of.isoformat() if report.as_of else "all recorded facts"
    ws["A1"] = f"{report.programme_name} — {title}"
    ws["A1"].font = _TITLE_FONT
    ws["A2"] = (f"EC budget line: {report.budget_line} ({BUDGET_LINE_FR}) · Programme {report.programme_id} · "
                f"Amounts in {report.currency} · As of {as_of}")
    ws["A2"].font = _SUBTITLE_FONT


def _header(ws, titles: list[str]) -> None:
    for col, text in enumerate(titles, start=1):
        cell = ws.cell(row=HEADER_ROW, column=col, value=text)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.row_dimensions[HEADER_ROW].height = 30


def _data_sheet(wb: Workbook, report: BudgetReport, section: Section) -> tuple[str, int]:
    """Write one breakdown sheet; returns (sheet name, last data row)."""
    name = SHEET_NAMES[section.key]
    ws = wb.create_sheet(name)
    _titles(ws, report, SHEET_TITLES[section.key], len(section.columns))
    _header(ws, [c.title for c in section.columns])
    kinds = [c.kind for c in section.columns]
    is_grants = section.key == "grants"
    for r, row in enumerate(section.rows, start=FIRST_DATA_ROW):
        for c, (value, kind) in enumerate(zip(row, kinds), start=1):
            if is_grants and c == 7 and value:
                value = date.fromisoformat(value)
            if kind == MONEY:
                _money(ws, r, c, value)
                continue
            cell = ws.cell(row=r, column=c, value=value)
            if kind == INT:
                cell.number_format = INT_FORMAT
            elif isinstance(value, date):
                cell.number_format = DATE_FORMAT
    last = FIRST_DATA_ROW + len(section.rows) - 1
    if not is_grants:
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
    for c, column in enumerate(section.columns, start=1):
        ws.column_dimensions[get_column_letter(c)].width = max(column.width, len(column.title) + 2)
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=2 if is_grants else 1)
    if section.rows:
        ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(section.columns))}{last}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    return name, last


def _sum(sheet: str, column: str, last: int) -> str:
    if last < FIRST_DATA_ROW:
        return "0"
    return f"SUM({_ref(sheet)}!{column}{FIRST_DATA_ROW}:{column}{last})"


def build_workbook(report: BudgetReport, *, chart_png: bytes | None = None) -> Workbook:
    """The workbook; `chart_png` (e.g. exports.chart.render_chart(report)) is embedded on the Summary sheet."""
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    last = {}
    for section in report_sections(report):
        name, last_row = _data_sheet(wb, report, section)
        last[section.key] = last_row

    _titles(summary, report, "EC budget report", 2)
    _header(summary, ["Item", "Amount"])
    win, cty, hdg, yrs, grt = (last["windows"], last["countries"], last["headings"], last["years"],
                               last["grants"])
    contracted = (f'SUMIFS(Grants!I{FIRST_DATA_ROW}:I{grt},Grants!H{FIRST_DATA_ROW}:H{grt},"Yes")'
                  if grt >= FIRST_DATA_ROW else "0")
    rows = [
        # (label, value or formula, kind); row numbers: B5 envelope, B6 committed, B8 disbursed
        ("Envelope (EC contribution)", report.envelope, MONEY),
        ("Committed (awards)", f"={_sum('Windows', 'D', win)}", MONEY),
        ("Contracted", f"={contracted}", MONEY),
        ("Disbursed (tranches paid)", f"={_sum('Windows', 'E', win)}", MONEY),
        ("Remaining (envelope − committed)", "=B5-B6", MONEY),
        ("Absorption rate (disbursed / committed)", "=IF(B6=0,0,ROUND(B8/B6,4))", RATE),
        ("Reported expenditure (accepted reports)", f"={_sum('Headings', 'D', hdg)}", MONEY),
        ("Proposals received", report.counts.proposals, INT),
        ("Eligible proposals", report.counts.eligible_proposals, INT),
        ("Awards", f"={_sum('Windows', 'F', win)}", INT),
        (None, None, None),
        ("Checks (each must read 0.00)", None, None),
        ("Committed by country − by window", f"={_sum('Countries', 'C', cty)}-B6", MONEY),
        ("Committed by year − by window", f"={_sum('Years', 'B', yrs)}-B6", MONEY),
        ("Committed over grants − by window", f"={_sum('Grants', 'I', grt)}-B6", MONEY),
        ("Disbursed by country − by window", f"={_sum('Countries', 'D', cty)}-B8", MONEY),
        ("Disbursed by year − by window", f"={_sum('Years', 'C', yrs)}-B8", MONEY),
        ("Paid over grants − disbursed", f"={_sum('Grants', 'J', grt)}-B8", MONEY),
    ]
    for r, (label, value, kind) in enumerate(rows, start=FIRST_DATA_ROW):
        summary.cell(row=r, column=1, value=label)
        cell = (_money(summary, r, 2, value) if isinstance(value, Decimal)
                else summary.cell(row=r, column=2, value=value))
        if kind == MONEY:
            cell.number_format = EUR_FORMAT
        elif kind == RATE:
            cell.number_format = RATE_FORMAT
        elif kind == INT:
            cell.number_format = INT_FORMAT
        if label and label.startswith("Checks"):
            summary.cell(row=r, column=1).font = _TOTAL_FONT
    summary.column_dimensions["A"].width = 44
    summary.column_dimensions["B"].width = 20
    summary.freeze_panes = f"A{FIRST_DATA_ROW}"
    summary.page_setup.orientation = "landscape"
    if chart_png:
        image = Image(io.BytesIO(chart_png))
        scale = 620 / image.width if image.width > 620 else 1
        image.width, image.height = int(image.width * scale), int(image.height * scale)
        summary.add_image(image, "D4")

    wb.properties.title = f"{report.programme_name} — EC budget report"
    wb.properties.subject = report.budget_line
    wb.properties.creator = "JMDI reporting service"
    return wb


def write_xlsx(report: BudgetReport, out, *, chart_png: bytes | None = None, with_chart: bool = True) -> None:
    """Save the workbook to a path or a binary stream; the chart is rendered unless given or disabled."""
    if chart_png is None and with_chart:
        from .chart import render_chart
        chart_png = render_chart(report)
    wb = build_workbook(report, chart_png=chart_png)
    wb.save(str(out) if isinstance(out, Path) else out)


def xlsx_bytes(report: BudgetReport, **kwargs) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(report, buffer, **kwargs)
    return buffer.getvalue()
