"""Export formats: terminal table, CSV, XLSX and its charts, IATI 2.03 (schema-valid), 360Giving JSON."""

import csv
import io
import json
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from lxml import etree
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from services.reporting.domain.budget_report import build_budget_report
from services.reporting.exports import csv_export, giving360, iati, table, xlsx_export
from tests.support.report_facts import generate_facts

D = Decimal


# ------------------------------------------------------------------------------------------------ table


def test_render_table_shows_totals_and_breakdowns(report):
    text = table.render_table(report)
    assert report.programme_name in text and "Migration and Asylum" in text and "2011-06-30" in text
    assert f"{report.committed:,.2f}" in text and f"{report.disbursed:,.2f}" in text
    for w in report.by_window:
        assert w.name[:20] in text
    for c in report.by_country:
        assert c.country in text
    assert "more grants" in text  # 55 grants, 20 shown by default
    everything = table.render_table(report, grant_rows=None)
    assert all(g.reference in everything for g in report.grants)
    assert "\nGrants\n" in text and "\nGrants\n" not in table.render_table(report, grant_rows=0)
    assert all(len(line) < 260 for line in text.splitlines())


# -------------------------------------------------------------------------------------------------- CSV


def test_csv_directory_one_file_per_table(report, tmp_path):
    paths = csv_export.write_csv(report, tmp_path / "out")
    assert [p.name for p in paths] == [f"{n}.csv" for n in csv_export.FILES]
    assert paths[0].read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8 accents
    with (tmp_path / "out" / "windows.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["Window"] == "Total"
    assert sum(D(r["Committed EUR"]) for r in rows[:-1]) == report.committed == D(rows[-1]["Committed EUR"])
    assert D(rows[-1]["Disbursed EUR"]) == report.disbursed
    with (tmp_path / "out" / "grants.csv").open(encoding="utf-8-sig", newline="") as fh:
        grants = list(csv.DictReader(fh))
    assert len(grants) == len(report.grants)
    assert sum(D(g["Paid EUR"]) for g in grants) == report.disbursed
    with (tmp_path / "out" / "summary.csv").open(encoding="utf-8-sig", newline="") as fh:
        summary = dict(csv.reader(fh))
    assert summary["Committed (awards)"] == str(report.committed)
    assert summary["As of"] == "2011-06-30"
    for path in paths:
        for row in csv.reader(path.open(encoding="utf-8-sig", newline="")):
            for cell in row:
                assert not re.fullmatch(r"-?\d+\.\d{5,}(e-?\d+)?", cell), cell  # no float noise


def test_csv_stream_has_sections(report):
    text = csv_export.csv_text(report)
    rows = list(csv.reader(io.StringIO(text)))
    titles = [r[0] for r in rows if r and r[0].startswith("# ")]
    assert titles == [f"# {n}" for n in csv_export.FILES]
    countries_at = rows.index(["# countries"])
    header = rows[countries_at + 1]
    assert header[:3] == ["Country", "Name", "Committed EUR"]
    total = next(r for r in rows[countries_at:] if r and r[0] == "Total")
    assert D(total[2]) == report.committed and D(total[3]) == report.disbursed


# ------------------------------------------------------------------------------------------------- XLSX


def _range_values(wb, ref):
    """Values of a range like Windows!D5:D8 or 'Applicant types'!B5:B9."""
    sheet, cells = ref.rsplit("!", 1)
    ws = wb[sheet.strip("'")]
    values = [row[0].value for row in ws[cells]] if ":" in cells else [ws[cells].value]
    # openpyxl reads numbers back as float; the file holds the Decimal's exact digits (checked below)
    return [D(str(v)) if isinstance(v, float) else v for v in values]


def _evaluate(wb, formula, sheet="Summary"):
    """Enough of Excel for the Summary and Checks sheets: SUM(range), SUMIFS, cell refs, + and -."""
    expr = formula.lstrip("=")
    ws = wb[sheet]

    def sumifs(match):
        values = _range_values(wb, match.group(1))
        criteria = _range_values(wb, match.group(2))
        return str(sum((D(v) for v, c in zip(values, criteria) if c == match.group(3)), D("0.00")))

    expr = re.sub(r'SUMIFS\(([^,]+),([^,]+),"([^"]+)"\)', sumifs, expr)
    expr = re.sub(
        r"SUM\(([^)]+)\)",
        lambda m: str(sum((D(v) for v in _range_values(wb, m.group(1)) if v is not None), D("0.00"))),
        expr,
    )
    summary = wb["Summary"]
    expr = re.sub(
        r"Summary!(B\d+)",
        lambda m: str(
            _evaluate(wb, summary[m.group(1)].value)
            if isinstance(summary[m.group(1)].value, str)
            else summary[m.group(1)].value
        ),
        expr,
    )
    expr = re.sub(
        r"\b(B\d+)\b",
        lambda m: str(
            _evaluate(wb, ws[m.group(1)].value, sheet)
            if isinstance(ws[m.group(1)].value, str)
            else ws[m.group(1)].value
        ),
        expr,
    )
    assert re.fullmatch(r"[-+0-9.() ]+", expr), expr
    total = D("0")
    for sign, number in re.findall(r"([-+]?)\s*\(?(-?[0-9.]+)\)?", expr):
        total += -D(number) if sign == "-" else D(number)
    return total


@pytest.fixture(scope="module")
def workbook(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("xlsx") / "report.xlsx"
    xlsx_export.write_xlsx(report, path)
    return load_workbook(path)


def test_xlsx_sheets_titles_and_frozen_headers(workbook, report):
    assert workbook.sheetnames == [
        "Summary",
        "Windows",
        "Countries",
        "Headings",
        "Years",
        "Applicant types",
        "Grants",
        "Checks",
    ]
    for ws in workbook.worksheets:
        assert report.programme_name in ws["A1"].value and ws["A1"].alignment.wrap_text
        assert "Migration and Asylum" in ws["A2"].value
        # the cover of every sheet: the period covered (from the first fact: no programme period here) and as-of
        assert ws["A3"].value.startswith(f"Period covered: {report.covers_from} to 2011-06-30 · As of 2011-06-30")
        assert ws.freeze_panes in ("A5", "B5")
        assert ws["A4"].font.bold
        assert ws.column_dimensions["A"].width >= 8
        # A4 landscape, fitted to the page width; every page repeats the titles and the header
        assert (int(ws.page_setup.paperSize), ws.page_setup.orientation) == (int(ws.PAPERSIZE_A4), "landscape")
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    for name in ("Windows", "Countries", "Headings", "Years", "Applicant types", "Grants"):
        assert workbook[name].print_title_rows == "$1:$4"
    assert workbook["Windows"]["A4"].value == "Window"
    assert workbook["Grants"].freeze_panes == "B5"
    assert workbook["Summary"].page_setup.fitToHeight == 1  # the cover, chart included, on one page


def test_xlsx_summary_totals_are_formulas_that_add_up(workbook, report):
    ws = workbook["Summary"]
    labels = {ws.cell(row=r, column=1).value: ws.cell(row=r, column=2) for r in range(5, ws.max_row + 1)}
    committed = labels["Committed (awards: EC contribution)"]
    assert committed.value == "=SUM(Windows!D5:D8)"
    assert labels["Disbursed (tranches paid)"].value == "=SUM(Windows!E5:E8)"
    assert labels["Remaining (envelope − committed)"].value == "=B5-B6"
    assert labels["Absorption rate (disbursed / committed)"].value.startswith("=IF(B6=0")
    assert labels["Envelope (EC contribution)"].value == report.envelope
    assert _evaluate(workbook, committed.value) == report.committed
    assert _evaluate(workbook, labels["Disbursed (tranches paid)"].value) == report.disbursed
    assert _evaluate(workbook, labels["Contracted"].value) == report.contracted
    assert _evaluate(workbook, labels["Remaining (envelope − committed)"].value) == report.remaining
    assert _evaluate(workbook, labels["Reported expenditure (accepted reports)"].value) == report.reported_expenditure
    assert _evaluate(workbook, labels["Awards"].value) == report.counts.awards
    # the EC's part and the consortia's co-financing of the awarded grants' eligible costs, apart
    eligible = sum((g.total_eligible for g in report.grants), D("0.00"))
    co_financing = sum((g.co_financing for g in report.grants), D("0.00"))
    assert _evaluate(workbook, labels["Total eligible costs of the awarded grants"].value) == eligible
    assert _evaluate(workbook, labels["of which co-financing (by the consortia)"].value) == co_financing
    assert _evaluate(workbook, labels["of which EC contribution"].value) == eligible - co_financing == report.committed
    # the internal checks are on their own sheet, not on the cover
    assert not any(label and label.startswith("Checks") for label in labels)
    checks = workbook["Checks"]
    rows = [(checks.cell(row=r, column=1).value, checks.cell(row=r, column=2).value) for r in range(5, 11)]
    assert [label for label, _ in rows][0] == "Committed by country − by window" and len(rows) == 6
    for label, formula in rows:
        assert _evaluate(workbook, formula, "Checks") == 0, (label, formula)
    for label in ("Committed (awards: EC contribution)", "Disbursed (tranches paid)", "Envelope (EC contribution)"):
        assert "€" in labels[label].number_format
    assert "%" in labels["Absorption rate (disbursed / committed)"].number_format
    assert len(ws._charts) == 2  # the charts


def test_xlsx_data_sheets_have_euro_formats_and_total_formulas(workbook, report):
    ws = workbook["Windows"]
    assert [ws.cell(row=r, column=1).value for r in range(5, 9)] == [w.window for w in report.by_window]
    assert ws["A9"].value == "Total" and ws["D9"].value == "=SUM(D5:D8)"
    assert ws["D5"].number_format == xlsx_export.EUR_FORMAT
    assert D(str(ws["D5"].value)) == report.by_window[0].committed
    grants = workbook["Grants"]
    assert grants.max_row == 4 + len(report.grants)
    titles = [c.value for c in grants[4]]
    assert titles[:2] == ["Reference", "Title"] and titles[-1] == "Grant id"  # what a person reads first
    assert titles[7:10] == ["EC contribution committed EUR", "Co-financing EUR", "Total eligible costs EUR"]
    assert grants["H5"].number_format == xlsx_export.EUR_FORMAT
    assert isinstance(grants["F5"].value, datetime)  # award date as a real date
    assert grants["B5"].alignment.wrap_text and grants.row_dimensions[5].height >= 15  # long titles wrap
    last_printed = get_column_letter(titles.index("Grant id"))  # the grant id (last) stays off the page
    assert grants.print_area.endswith(f"${last_printed}${len(report.grants) + 5}")
    headings = workbook["Headings"]
    assert [c.value for c in headings[4]][2:] == [
        "Total eligible costs EUR",
        "EC contribution EUR",
        "Co-financing EUR",
        "Reported expenditure EUR",
    ]
    for line, row in zip(report.by_heading, range(5, 5 + len(report.by_heading))):
        ec, co = D(str(headings.cell(row=row, column=4).value)), D(str(headings.cell(row=row, column=5).value))
        assert ec + co == D(str(headings.cell(row=row, column=3).value)) == line.budgeted
    countries = workbook["Countries"]
    last = 4 + len(report.by_country)
    assert countries.cell(row=last + 1, column=3).value == f"=SUM(C5:C{last})"


def test_xlsx_cells_hold_exact_decimal_digits(report, tmp_path):
    import zipfile

    path = tmp_path / "r.xlsx"
    xlsx_export.write_xlsx(report, path, with_chart=False)
    with zipfile.ZipFile(path) as zf:
        windows_xml = zf.read("xl/worksheets/sheet2.xml").decode()
    for w in report.by_window:
        assert f"<v>{w.committed}</v>" in windows_xml and f"<v>{w.disbursed}</v>" in windows_xml
    assert f"<v>{report.envelope}</v>" in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()


# ------------------------------------------------------------------------------------------------ chart


def _reference(chart_, index):
    return chart_.series[index].val.numRef.f


def test_the_charts_draw_the_windows_and_years_sheets_from_their_cells(workbook, report):
    by_window, by_year = workbook["Summary"]._charts
    rows = len(report.by_window)
    # committed and disbursed of each window, titled by their header cells (the Total row is not drawn)
    assert [_reference(by_window, i) for i in (0, 1)] == [
        f"'Windows'!$D$5:$D${4 + rows}",
        f"'Windows'!$E$5:$E${4 + rows}",
    ]
    assert by_window.series[0].tx.strRef.f == "'Windows'!D4"
    assert by_window.series[0].cat.numRef.f == f"'Windows'!$A$5:$A${4 + rows}"  # the windows' names
    assert _reference(by_year, 0).startswith("'Years'!")
    assert not by_window.x_axis.delete and not by_window.y_axis.delete  # the axes are drawn


def test_a_report_without_figures_has_no_chart_and_still_a_workbook(tmp_path):
    empty = build_budget_report(report_facts_programme(), [], [], [], None)
    path = tmp_path / "empty.xlsx"
    xlsx_export.write_xlsx(empty, path)
    assert load_workbook(path)["Summary"]["A1"].value


def report_facts_programme():
    return generate_facts(1, 0, 0).programme


# ------------------------------------------------------------------------------------------------- IATI

GENERATED = datetime(2011, 7, 1, 9, 30, tzinfo=timezone.utc)


def test_iati_file_validates_against_the_official_schema(report, iati_schema_dir):
    xml = iati.build_iati(report, generated_at=GENERATED)
    assert iati.validate_iati(xml, iati.schema_path(iati_schema_dir)) == []
    assert iati.validate_iati(xml, iati_schema_dir) == []  # the directory works too
    doc = etree.fromstring(xml)
    assert doc.get("version") == "2.03" and doc.get("generated-datetime") == "2011-07-01T09:30:00+00:00"
    activities = doc.findall("iati-activity")
    assert len(activities) == len(report.grants)
    first, grant = activities[0], report.grants[0]
    assert first.get("default-currency") == "EUR"
    assert first.findtext("iati-identifier") == f"XM-DAC-41114-JMDI-{grant.reference}"
    assert first.find("reporting-org").get("ref") == "XM-DAC-41114"
    assert first.find("reporting-org").get("type") == "40"
    roles = {p.get("role"): p for p in first.findall("participating-org")}
    assert roles["1"].get("ref") == "XI-IATI-EC_INTPA" and roles["4"].findtext("narrative") == grant.lead_organisation
    assert first.find("recipient-country").get("code") == grant.country
    assert first.find("sector").get("code") == "15190" and first.find("sector").get("vocabulary") == "1"
    assert first.find("activity-date[@type='1']").get("iso-date") == grant.awarded_at.isoformat()
    assert first.find("budget/value").text == str(grant.committed)
    types = [t.find("transaction-type").get("code") for t in first.findall("transaction")]
    assert types == ["2"] + ["3"] * len(grant.payments)


def test_iati_totals_equal_the_report(report, facts):
    totals = iati.totals(iati.build_iati(report, generated_at=GENERATED))
    assert totals["2"] == report.committed
    assert totals["3"] == report.disbursed
    everything = facts.report()
    totals = iati.totals(iati.build_iati(everything, generated_at=GENERATED))
    assert (totals["2"], totals["3"]) == (everything.committed, everything.disbursed)


def test_iati_validation_reports_errors(report, iati_schema_dir):
    xml = iati.build_iati(report, generated_at=GENERATED)
    doc = etree.fromstring(xml)
    doc[0].remove(doc[0].find("reporting-org"))
    errors = iati.validate_iati(etree.tostring(doc), iati_schema_dir)
    assert errors and any("reporting-org" in e for e in errors)
    assert iati.validate_iati(b"<not-closed>", iati_schema_dir)[0].startswith("not well-formed")
    with pytest.raises(iati.StandardMissing):
        iati.validate_iati(xml, iati_schema_dir / "missing.xsd")


def test_every_code_of_the_iati_file_is_on_its_shipped_codelist(report, iati_schema_dir):
    """The export's codes (organisation types, sector, transaction types, countries...) checked against the
    published codelists as mapping.xml directs: every codelist the file needs is shipped, every code is on it."""
    xml = iati.build_iati(report, generated_at=GENERATED)
    assert iati.codelist_errors(xml, iati_schema_dir / "codelists") == []
    doc = etree.fromstring(xml)
    doc[0].find("sector").set("code", "99999")
    doc[0].find("transaction/transaction-type").set("code", "42")
    errors = iati.codelist_errors(etree.tostring(doc), iati_schema_dir / "codelists")
    assert any("'99999' is not a code of the Sector codelist" in e for e in errors)
    assert any("'42' is not a code of the TransactionType codelist" in e for e in errors)


def test_a_code_whose_codelist_is_not_shipped_is_a_setup_problem_not_a_pass(report, iati_schema_dir, tmp_path):
    folder = tmp_path / "codelists"
    folder.mkdir()
    (folder / "mapping.xml").write_bytes((iati_schema_dir / "codelists" / "mapping.xml").read_bytes())
    with pytest.raises(iati.StandardMissing, match="codelist Version not found"):
        iati.codelist_errors(iati.build_iati(report, generated_at=GENERATED), folder)
    with pytest.raises(iati.StandardMissing, match="mapping not found"):
        iati.codelist_errors(iati.build_iati(report, generated_at=GENERATED), tmp_path / "nowhere")


def test_iati_identifiers_are_sanitised():
    assert iati.activity_identifier("MA/2008 01") == "XM-DAC-41114-JMDI-MA-2008-01"


# -------------------------------------------------------------------------------------------- 360Giving


def test_360giving_structure_and_exact_amounts(report):
    text = giving360.giving360_json(report)
    data = giving360.loads(text)
    assert set(data) == {"grants"} and len(data["grants"]) == len(report.grants)
    first, grant = data["grants"][0], report.grants[0]
    for key in (
        "id",
        "title",
        "description",
        "currency",
        "amountAwarded",
        "awardDate",
        "recipientOrganization",
        "fundingOrganization",
        "amountDisbursed",
        "beneficiaryLocation",
    ):
        assert key in first, key
    assert first["id"].startswith("360G-JMDI-") and first["currency"] == "EUR"
    assert first["amountAwarded"] == grant.committed and isinstance(first["amountAwarded"], Decimal)
    assert first["awardDate"] == grant.awarded_at.isoformat()
    assert first["recipientOrganization"][0]["name"] == grant.lead_organisation
    assert first["recipientOrganization"][0]["id"].startswith("360G-JMDI-ORG-")
    assert first["fundingOrganization"] == [{"id": "XI-IATI-EC_INTPA", "name": "European Commission"}]
    assert first["beneficiaryLocation"][0]["countryCode"] == grant.country
    assert sum(g["amountAwarded"] for g in data["grants"]) == report.committed
    assert sum(g["amountDisbursed"] for g in data["grants"]) == report.disbursed
    # amounts are JSON numbers written with their cents, not strings
    assert re.search(rf'"amountAwarded": {re.escape(str(grant.committed))},', text)
    plain = json.loads(text)
    assert isinstance(plain["grants"][0]["amountAwarded"], (int, float))
    assert len({g["id"] for g in data["grants"]}) == len(data["grants"])


def test_360giving_dumps_is_exact_json():
    value = {"a": D("0.10"), "b": [D("1e3"), 1, True, None, 'é"x'], "c": {}, "d": D("123456789012.35")}
    text = giving360.dumps(value, indent=None)
    assert text == '{"a": 0.10, "b": [1000.00, 1, true, null, "é\\"x"], "c": {}, "d": 123456789012.35}'
    assert giving360.loads(text)["d"] == D("123456789012.35")
    with pytest.raises(TypeError):
        giving360.dumps({"x": 0.1})
