"""The report's tables in one tabular form, shared by the terminal table, the CSV and the XLSX exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.common.values.money import money_str

from ..domain.budget_report import BudgetReport, country_name

MONEY = "money"
INT = "int"
TEXT = "text"
RATE = "rate"


@dataclass(frozen=True)
class Column:
    title: str
    kind: str = TEXT  # money | int | text | rate
    width: int = 12


@dataclass(frozen=True)
class Section:
    key: str  # file / sheet name: windows, countries, ...
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple]
    totals: bool = True  # a total row sums its money and int columns


def period_covered(report: BudgetReport, produced_on: date | None = None) -> str:
    """ "2026-12-01 to 2027-03-31": from the programme's start (else the first fact) to the as-of date (else the
    day the report was produced)."""
    end = report.as_of or produced_on
    start = report.covers_from
    if start is None:
        return f"up to {end}" if end else "everything recorded"
    return f"{start} to {end}" if end else f"from {start}"


def as_of_text(report: BudgetReport, produced_on: date | None = None) -> str:
    if report.as_of:
        return f"{report.as_of} (what was recorded by the end of that day)"
    if produced_on:
        return f"{produced_on} (everything recorded when the report was produced)"
    return "everything recorded"


def summary_rows(report: BudgetReport) -> list[tuple[str, object, str]]:
    """(label, value, kind) for the summary block."""
    return [
        ("Envelope (EC contribution)", report.envelope, MONEY),
        ("Committed (awards)", report.committed, MONEY),  # less what closed grants gave back
        ("Decommitted (given back at closure)", report.decommitted, MONEY),
        ("Contracted", report.contracted, MONEY),
        ("Disbursed (tranches paid)", report.disbursed, MONEY),
        ("Remaining (envelope - committed)", report.remaining, MONEY),
        ("Absorption rate (disbursed / committed)", report.absorption_rate, RATE),
        ("Reported expenditure (accepted reports)", report.reported_expenditure, MONEY),
        ("Proposals received", report.counts.proposals, INT),
        ("Eligible proposals", report.counts.eligible_proposals, INT),
        ("Awards", report.counts.awards, INT),
    ]


def report_sections(report: BudgetReport, *, include_grants: bool = True) -> list[Section]:
    sections = [
        Section(
            "windows",
            "Commitments and disbursements by window",
            (
                Column("Window", TEXT, 22),
                Column("Name", TEXT, 44),
                Column("Allocation EUR", MONEY, 18),
                Column("Committed EUR", MONEY, 18),
                Column("Disbursed EUR", MONEY, 18),
                Column("Grants", INT, 8),
                Column("Available EUR", MONEY, 18),
                Column("Decommitted EUR", MONEY, 18),
            ),
            [
                (w.window, w.name, w.allocation, w.committed, w.disbursed, w.grants, w.available, w.decommitted)
                for w in report.by_window
            ],
        ),
        Section(
            "countries",
            "Commitments and disbursements by country",
            (
                Column("Country", TEXT, 8),
                Column("Name", TEXT, 18),
                Column("Committed EUR", MONEY, 18),
                Column("Disbursed EUR", MONEY, 18),
                Column("Grants", INT, 8),
                Column("Decommitted EUR", MONEY, 18),
            ),
            [
                (c.country, country_name(c.country), c.committed, c.disbursed, c.grants, c.decommitted)
                for c in report.by_country
            ],
        ),
        Section(
            "headings",
            "Budget and reported expenditure by Annex III heading",
            (
                Column("Heading", TEXT, 22),
                Column("Label", TEXT, 36),
                Column("Total eligible costs EUR", MONEY, 18),
                Column("EC contribution EUR", MONEY, 18),
                Column("Co-financing EUR", MONEY, 18),
                Column("Reported expenditure EUR", MONEY, 18),
            ),
            [
                (h.heading, h.label, h.budgeted, h.ec_contribution, h.co_financing, h.reported_expenditure)
                for h in report.by_heading
            ],
        ),
        Section(
            "years",
            "Commitments (award date) and disbursements (value date) by year",
            (
                Column("Year", TEXT, 10),
                Column("Committed EUR", MONEY, 18),
                Column("Disbursed EUR", MONEY, 18),
                Column("Decommitted EUR", MONEY, 18),
            ),
            [(str(y.year), y.committed, y.disbursed, y.decommitted) for y in report.by_year],
        ),
        Section(
            "applicant_types",
            "Commitments and disbursements by applicant type",
            (
                Column("Applicant type", TEXT, 22),
                Column("Committed EUR", MONEY, 18),
                Column("Disbursed EUR", MONEY, 18),
                Column("Grants", INT, 8),
            ),
            [(a.applicant_type, a.committed, a.disbursed, a.grants) for a in report.by_applicant_type],
        ),
    ]
    if include_grants:
        sections.append(
            Section(
                "grants",
                "Grants",
                GRANT_COLUMNS,
                [
                    (
                        g.reference,
                        g.title,
                        g.window,
                        g.country,
                        g.lead_organisation,
                        g.awarded_at.isoformat() if g.awarded_at else "",
                        "Yes" if g.contracted else "No",
                        g.committed,
                        g.co_financing,
                        g.total_eligible,
                        g.paid,
                        g.outstanding,
                        g.decommitted,
                        g.grant_id,
                    )
                    for g in report.grants
                ],
            )
        )
    return sections


# the grants table: what a desk officer reads first, the EC's money and the consortium's apart, the id last
GRANT_COLUMNS = (
    Column("Reference", TEXT, 20),
    Column("Title", TEXT, 44),
    Column("Window", TEXT, 20),
    Column("Country", TEXT, 8),
    Column("Lead organisation", TEXT, 34),
    Column("Awarded", TEXT, 11),
    Column("Contracted", TEXT, 10),
    Column("EC contribution committed EUR", MONEY, 16),
    Column("Co-financing EUR", MONEY, 15),
    Column("Total eligible costs EUR", MONEY, 16),
    Column("Paid EUR", MONEY, 15),
    Column("Outstanding EUR", MONEY, 15),
    Column("Decommitted EUR", MONEY, 15),
    Column("Grant id", TEXT, 38),
)


def column_totals(section: Section) -> tuple:
    """The total row: 'Total' in the first column, sums under money and int columns, blanks elsewhere."""
    out: list[object] = []
    for i, col in enumerate(section.columns):
        if i == 0:
            out.append("Total")
        elif col.kind == MONEY:
            out.append(sum((row[i] for row in section.rows), Decimal("0.00")))
        elif col.kind == INT:
            out.append(sum(row[i] for row in section.rows))
        else:
            out.append("")
    return tuple(out)


def plain(value, kind: str) -> str:
    """Machine form: money as "1234.56", rate as "0.4567"."""
    if kind == MONEY:
        return money_str(value)
    return "" if value is None else str(value)
