"""Decommitments in the EC report and its exports: committed = awards - decommitments from the closure date on,
a decommitted column by window, country and year, a negative IATI commitment, 360Giving commitment transactions,
and reconciliation on the decommitted amount — all to the cent, before and after the closure."""

import csv
import dataclasses
import io
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from lxml import etree

from services.reporting.domain.budget_report import DecommitmentFact, ReportError, build_budget_report, report_to_json
from services.reporting.exports import csv_export, giving360, iati, xlsx_export
from services.reporting.exports.sections import report_sections, summary_rows
from services.reporting.domain.reconciliation import compare

D = Decimal
GENERATED = datetime(2011, 7, 1, 9, 30, tzinfo=timezone.utc)
CLOSED_ON = date(2011, 3, 15)
# G1 (remittances, Morocco, awarded 150,000.00 in 2009) closes having earned what it was paid: 136,000.10
GIVEN_BACK = DecommitmentFact("G1", D("13999.90"), CLOSED_ON)


def closed(small):
    programme, grants, tranches, expenditures, counts = small
    grants = [dataclasses.replace(g, closed=True) if g.grant_id == "G1" else g for g in grants]
    return programme, grants, tranches, expenditures, counts


def report_of(small, as_of=None, decommitments=(GIVEN_BACK,)):
    programme, grants, tranches, expenditures, counts = closed(small)
    return build_budget_report(
        programme, grants, tranches, expenditures, counts, as_of=as_of, decommitments=list(decommitments)
    )


def _sum(values):
    return sum(values, D("0.00"))


def test_from_its_closure_date_the_grant_commits_only_its_final_amount(small):
    before = report_of(small, as_of=date(2011, 3, 14))
    after = report_of(small, as_of=CLOSED_ON)
    assert (before.committed, before.decommitted) == (D("400000.00"), D("0.00"))
    assert (after.committed, after.decommitted) == (D("386000.10"), D("13999.90"))
    assert after.remaining == before.remaining + D("13999.90")
    g1 = next(g for g in after.grants if g.grant_id == "G1")
    assert (g1.committed, g1.decommitted, g1.awarded, g1.paid, g1.outstanding) == (
        D("136000.10"),
        D("13999.90"),
        D("150000.00"),
        D("136000.10"),
        D("0.00"),
    )
    windows = {w.window: w for w in after.by_window}
    assert (windows["remittances"].committed, windows["remittances"].decommitted, windows["remittances"].available) == (
        D("136000.10"),
        D("13999.90"),
        D("3613999.90"),
    )
    countries = {c.country: c for c in after.by_country}
    assert (countries["MA"].committed, countries["MA"].decommitted) == (D("136000.10"), D("13999.90"))
    # the award counts in 2009, the decommitment in 2011: the years still add up to what is committed
    assert [(y.year, y.committed, y.decommitted) for y in after.by_year] == [
        (2009, D("200000.01"), D("0.00")),
        (2010, D("199999.99"), D("0.00")),
        (2011, D("-13999.90"), D("13999.90")),
    ]
    for field in ("committed", "decommitted", "disbursed"):
        for lines in (after.by_window, after.by_country, after.by_year, after.by_month, after.by_applicant_type):
            assert _sum(getattr(line, field) for line in lines) == getattr(after, field), (field, lines)
    assert _sum(g.committed for g in after.grants) == after.committed
    assert _sum(g.decommitted for g in after.grants) == after.decommitted


def test_the_json_carries_the_decommitted_amounts_as_decimal_strings(small):
    data = report_to_json(report_of(small))
    assert (data["committed_eur"], data["decommitted_eur"]) == ("386000.10", "13999.90")
    assert {w["window"]: w["decommitted_eur"] for w in data["windows"]}["remittances"] == "13999.90"
    assert {c["country"]: c["decommitted_eur"] for c in data["countries"]}["MA"] == "13999.90"
    assert {y["year"]: y["decommitted_eur"] for y in data["years"]}[2011] == "13999.90"
    assert {m["month"]: m["committed_eur"] for m in data["months"]}["2011-03"] == "-13999.90"
    g1 = next(g for g in data["grants"] if g["grant_id"] == "G1")
    assert (g1["committed_eur"], g1["decommitted_eur"], g1["closed"]) == ("136000.10", "13999.90", True)


def test_a_decommitment_the_report_cannot_attribute_or_above_the_commitment_is_refused(small):
    with pytest.raises(ReportError):
        report_of(small, decommitments=[DecommitmentFact("G9", D("1.00"), CLOSED_ON)])
    with pytest.raises(ReportError):  # G1 was awarded in 2009: a decommitment before that belongs to no grant
        report_of(small, as_of=date(2009, 6, 30), decommitments=[DecommitmentFact("G1", D("1.00"), date(2009, 6, 1))])
    with pytest.raises(ReportError):
        report_of(small, decommitments=[DecommitmentFact("G1", D("150000.01"), CLOSED_ON)])


def test_the_tables_have_a_decommitted_column_whose_totals_agree(small):
    report = report_of(small)
    sections = {s.key: s for s in report_sections(report)}
    for key in ("windows", "countries", "years", "grants"):
        titles = [c.title for c in sections[key].columns]
        assert "Decommitted EUR" in titles, key
        column = titles.index("Decommitted EUR")
        assert _sum(row[column] for row in sections[key].rows) == report.decommitted == D("13999.90"), key
    assert ("Decommitted (given back at closure)", D("13999.90"), "money") in summary_rows(report)
    windows = list(
        csv.DictReader(io.StringIO("\n".join(",".join(row) for row in csv_export.csv_tables(report)["windows"])))
    )
    assert (windows[-1]["Window"], windows[-1]["Decommitted EUR"], windows[-1]["Committed EUR"]) == (
        "Total",
        "13999.90",
        "386000.10",
    )
    sheet = xlsx_export.build_workbook(report)["Windows"]
    header = [c.value for c in sheet[xlsx_export.HEADER_ROW]]
    column = header.index("Decommitted EUR") + 1
    cells = [sheet.cell(row=r, column=column).value for r in range(xlsx_export.FIRST_DATA_ROW, sheet.max_row)]
    assert _sum(D(v) for v in cells) == D("13999.90")  # the data cells, then a SUM formula under them
    assert str(sheet.cell(row=sheet.max_row, column=column).value).startswith("=SUM(")


def test_the_iati_file_corrects_the_commitment_with_a_negative_one_and_stays_valid(small, iati_schema_dir):
    before, after = report_of(small, as_of=date(2011, 3, 14)), report_of(small)
    for report in (before, after):
        xml = iati.build_iati(report, generated_at=GENERATED)
        assert iati.validate_iati(xml, iati_schema_dir) == []
        assert iati.totals(xml)["2"] == report.committed and iati.totals(xml)["3"] == report.disbursed
    activity = etree.fromstring(iati.build_iati(after, generated_at=GENERATED)).find(
        "iati-activity[iati-identifier='XM-DAC-41114-JMDI-2008-0001']"
    )
    commitments = [
        (t.get("ref"), t.find("transaction-date").get("iso-date"), t.findtext("value"))
        for t in activity.findall("transaction")
        if t.find("transaction-type").get("code") == "2"
    ]
    assert commitments == [
        ("G1-commitment", "2009-07-01", "150000.00"),
        ("G1-decommitment-1", "2011-03-15", "-13999.90"),
    ]
    assert activity.find("activity-status").get("code") == "4"  # closed
    assert activity.find("budget/value").text == "150000.00"  # the original budget: the award
    still_open = etree.fromstring(iati.build_iati(before, generated_at=GENERATED)).find(
        "iati-activity[iati-identifier='XM-DAC-41114-JMDI-2008-0001']"
    )
    assert [
        t.findtext("value") for t in still_open.findall("transaction") if t.find("transaction-type").get("code") == "2"
    ] == ["150000.00"]


def test_360giving_awards_what_the_grant_commits_and_lists_the_commitment_transactions(small):
    data = giving360.loads(giving360.giving360_json(report_of(small)))
    g1 = next(g for g in data["grants"] if g["id"] == "360G-JMDI-2008-0001")
    assert g1["amountAwarded"] == D("136000.10")
    assert [(t["transactionDate"], t["value"]) for t in g1["commitmentTransaction"]] == [
        ("2009-07-01", D("150000.00")),
        ("2011-03-15", D("-13999.90")),
    ]
    assert sum(t["value"] for t in g1["commitmentTransaction"]) == g1["amountAwarded"]
    assert sum(g["amountAwarded"] for g in data["grants"]) == D("386000.10")
    assert all("commitmentTransaction" not in g for g in data["grants"] if g is not g1)


def test_reconciliation_compares_the_decommitted_amounts():
    mine = {
        "G1": {
            "reference": "R",
            "committed_eur": D("136000.10"),
            "paid_eur": D("136000.10"),
            "recovery_eur": D("0.00"),
            "decommitted_eur": D("13999.90"),
        }
    }
    books = [
        {
            "grant_id": "G1",
            "reference": "R",
            "committed_eur": "136000.10",
            "paid_eur": "136000.10",
            "recovery_eur": "0.00",
            "decommitted_eur": "13999.90",
        }
    ]
    agreed = compare(mine, books)
    assert agreed["clean"] and agreed["totals"]["grants"]["decommitted_eur"] == D("13999.90")
    books[0].update(committed_eur="150000.00", decommitted_eur="0.00")  # the ledger missed the closure
    kinds = {d["kind"] for d in compare(mine, books)["differences"]}
    assert kinds == {"committed_differs", "decommitted_differs"}
