"""CSV of the budget report's tables, for a finance officer who opens them in Excel.

Two shapes:
- a directory: one CSV per table (summary.csv, windows.csv, countries.csv, headings.csv, years.csv,
  applicant_types.csv, grants.csv), each UTF-8 with a byte-order mark so Excel shows accents correctly, one
  header row, and (except grants and summary) a final "Total" row. This is the shape to open in Excel: each
  file is one clean table that sorts and filters.
- a text stream: the same tables in one file, each preceded by a "# <title>" line and separated by a blank
  line (the stream's encoding is the caller's; no BOM is written).

Money is written as a decimal string with two places and a point ("1234.56"), never a float and without
thousands separators, so it round-trips exactly; the absorption rate as "0.4567".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from services.common.values.inert import inert_text

from ..domain.budget_report import BudgetReport
from .sections import column_totals, period_covered, plain, report_sections, summary_rows

FILES = ("summary", "windows", "countries", "headings", "years", "applicant_types", "grants")


def csv_tables(report: BudgetReport) -> dict[str, list[list[str]]]:
    """Each table as rows of strings (header first), keyed by file name without extension."""
    as_of = report.as_of.isoformat() if report.as_of else ""
    tables = {
        "summary": [
            ["Item", "Value"],
            ["Programme", report.programme_name],
            ["Budget line", report.budget_line],
            ["Currency", report.currency],
            ["Period covered", period_covered(report)],
            ["As of", as_of],
        ]
        + [[label, plain(value, kind)] for label, value, kind in summary_rows(report)]
    }
    for section in report_sections(report):
        kinds = [c.kind for c in section.columns]
        rows = [[c.title for c in section.columns]]
        rows += [[plain(v, k) for v, k in zip(row, kinds)] for row in section.rows]
        if section.key != "grants":
            rows.append([plain(v, k) for v, k in zip(column_totals(section), kinds)])
        tables[section.key] = rows
    return tables


def inert_rows(rows: list[list]) -> list[list]:
    """Every cell as a spreadsheet reads it as text: no control character, no formula (services/common/values/inert.py)."""
    return [[inert_text(value) for value in row] for row in rows]


def write_csv(report: BudgetReport, out) -> list[Path] | None:
    """Write the tables: to a directory (a str or Path; created if missing), one file per table, returning
    the paths written; or to an open text stream, one file with sections, returning None."""
    tables = {name: inert_rows(rows) for name, rows in csv_tables(report).items()}
    if isinstance(out, (str, Path)):
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in FILES:
            path = directory / f"{name}.csv"
            with path.open("w", encoding="utf-8-sig", newline="") as fh:
                csv.writer(fh).writerows(tables[name])
            paths.append(path)
        return paths
    writer = csv.writer(out)
    for i, name in enumerate(FILES):
        if i:
            writer.writerow([])
        writer.writerow([f"# {name}"])
        writer.writerows(tables[name])
    return None


def csv_text(report: BudgetReport) -> str:
    """The one-file form as a string."""
    buffer = io.StringIO(newline="")
    write_csv(report, buffer)
    return buffer.getvalue()
