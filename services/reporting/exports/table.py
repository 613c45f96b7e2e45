"""Plain fixed-width text of the budget report for a terminal (the CLI may wrap it with rich)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from services.common.values.inert import clean_text

from ..domain.budget_report import BudgetReport
from .sections import INT, MONEY, RATE, column_totals, period_covered, report_sections, summary_rows


def _fmt(value, kind: str) -> str:
    if kind == MONEY:
        return f"{Decimal(value):,.2f}"
    if kind == RATE:
        return f"{Decimal(value) * 100:.2f} %"
    if kind == INT:
        return f"{value:,}" if isinstance(value, int) else str(value)
    return "" if value is None else clean_text(str(value))  # no control character (escape sequence) to a terminal


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _table(
    title: str, headers: list[str], kinds: list[str], rows: list[list[str]], total: list[str] | None, max_text: int
) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows + ([total] if total else []):
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    widths = [w if kinds[i] in (MONEY, INT, RATE) else min(w, max_text) for i, w in enumerate(widths)]

    def line(cells):
        out = []
        for i, cell in enumerate(cells):
            if kinds[i] in (MONEY, INT, RATE):
                out.append(cell.rjust(widths[i]))
            else:
                out.append(_clip(cell, widths[i]).ljust(widths[i]))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [title, line(headers), rule]
    lines += [line(r) for r in rows]
    if total:
        lines += [rule, line(total)]
    return lines


def render_table(report: BudgetReport, *, grant_rows: int | None = 20, max_text: int = 40, produced_on=None) -> str:
    """The report as plain text: summary, then one table per breakdown, then the first `grant_rows` grants
    (0: none; None: all; their ids are in the other formats). Amounts in EUR with thousands separators,
    right-aligned."""
    as_of = report.as_of.isoformat() if report.as_of else "all recorded facts"
    out = [
        f"{report.programme_name} ({report.programme_id})",
        f"Budget line: {report.budget_line} · EUR · as of {as_of}",
        f"Period covered: {period_covered(report, produced_on)}",
        "",
    ]
    summary = [(label, _fmt(value, kind)) for label, value, kind in summary_rows(report)]
    label_width = max(len(label) for label, _ in summary)
    value_width = max(len(value) for _, value in summary)
    out += [f"{label.ljust(label_width)}  {value.rjust(value_width)}" for label, value in summary]

    for section in report_sections(report, include_grants=grant_rows != 0):
        if section.key == "grants":  # a terminal is narrow: ids and the eligible total (EC + co-financing) elsewhere
            shown = [
                i for i, c in enumerate(section.columns) if c.title not in ("Grant id", "Total eligible costs EUR")
            ]
            section = replace(
                section,
                columns=tuple(section.columns[i] for i in shown),
                rows=[tuple(row[i] for i in shown) for row in section.rows],
            )
        kinds = [c.kind for c in section.columns]
        rows = section.rows
        note = None
        if section.key == "grants":
            if grant_rows is not None and len(rows) > grant_rows:
                note = f"… and {len(rows) - grant_rows:,} more grants"
                rows = rows[:grant_rows]
            total = None
        else:
            total = [_fmt(v, k) for v, k in zip(column_totals(section), kinds)] if section.rows else None
        cells = [[_fmt(v, k) for v, k in zip(row, kinds)] for row in rows]
        out.append("")
        out += _table(section.title, [c.title for c in section.columns], kinds, cells, total, max_text)
        if note:
            out.append(note)
    return "\n".join(out) + "\n"
