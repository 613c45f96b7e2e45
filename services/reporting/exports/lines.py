"""Expenditure lines in their own currencies beside their EUR values: the sheet that lets the EC re-derive each
converted figure (amount ÷ rate, rounded to the cent per line). Built from the reporting service's own facts
(report_submitted's lines, counted once the report is accepted), beside the budget report, not inside it."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, select

from services.common.values.inert import clean_text, inert_text
from services.common.values.money import money_str

from ..models import ExpenditureLineRow, GrantReportRow, GrantRow
from .sections import MONEY, TEXT, Column, Section, column_totals, plain

LINE_COLUMNS = (
    Column("Reference", TEXT, 20),
    Column("Country", TEXT, 8),
    Column("Report", TEXT, 12),
    Column("Heading", TEXT, 20),
    Column("Incurred on", TEXT, 11),
    Column("Description", TEXT, 30),
    Column("Amount", TEXT, 16),
    Column("Currency", TEXT, 8),
    Column("Rate per EUR", TEXT, 12),
    Column("Rate (month, kind)", TEXT, 22),
    Column("EUR", MONEY, 15),
)


def accepted_lines(session, programme_id: str | None, as_of: date | None) -> list[tuple]:
    """(line, grant) of the reports accepted by `as_of` (everything accepted when None)."""
    accepted = [GrantReportRow.report_id == ExpenditureLineRow.report_id, GrantReportRow.status == "accepted"]
    if as_of is not None:
        accepted.append(GrantReportRow.decided_on <= as_of)
    query = (
        select(ExpenditureLineRow, GrantRow, GrantReportRow.kind)
        .join(GrantRow, GrantRow.grant_id == ExpenditureLineRow.grant_id)
        .join(GrantReportRow, and_(*accepted))
        .order_by(GrantRow.reference, ExpenditureLineRow.report_id, ExpenditureLineRow.line_no)
    )
    if programme_id:
        query = query.where(GrantRow.programme_id == programme_id)
    seen, rows = set(), []
    for line, grant, kind in session.execute(query).all():
        if (line.report_id, line.line_no) not in seen:  # one accepted fact per report
            seen.add((line.report_id, line.line_no))
            rows.append((line, grant, kind))
    return rows


def _rate(value) -> str:
    return format(Decimal(value).normalize(), "f")


def lines_section(session, programme_id: str | None, as_of: date | None) -> Section:
    rows = [
        (
            grant.reference,
            grant.country,
            kind,
            line.heading,
            line.incurred_on.isoformat(),
            line.description,
            money_str(line.amount),
            line.currency,
            _rate(line.rate),
            f"{line.rate_month} {line.rate_type}" if line.rate_month else "",
            line.amount_eur,
        )
        for line, grant, kind in accepted_lines(session, programme_id, as_of)
    ]
    return Section("expenditure_lines", "Expenditure lines in their currencies (accepted reports)", LINE_COLUMNS, rows)


def _key(title: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_").replace("__", "_")


def section_json(section: Section) -> list[dict]:
    """The section's rows as objects keyed by its column titles (money as "1234.56")."""
    keys = [_key(c.title) for c in section.columns]
    return [
        {k: plain(v, c.kind) if c.kind == MONEY else clean_text(v) for k, c, v in zip(keys, section.columns, row)}
        for row in section.rows
    ]


def section_csv(section: Section) -> str:
    """The section as one more table of the one-file CSV ("# <key>" then header and rows, totals if any)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    kinds = [c.kind for c in section.columns]
    writer.writerow([])
    writer.writerow([f"# {section.key}"])
    writer.writerow([c.title for c in section.columns])
    # a grantee's description is text for a spreadsheet: inert (services/common/values/inert.py)
    writer.writerows([inert_text(plain(v, k)) for v, k in zip(row, kinds)] for row in section.rows)
    if section.totals:
        writer.writerow([inert_text(plain(v, k)) for v, k in zip(column_totals(section), kinds)])
    return buffer.getvalue()
