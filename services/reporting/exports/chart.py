"""PNG chart of the budget report (matplotlib, Agg backend, no display needed).

Left: committed vs disbursed by window (grouped bars). Right: cumulative disbursements over time (by month of
value date) against cumulative commitments. Amounts are converted to float only to be drawn; no figure read
off the chart is used as money.
"""
from __future__ import annotations

import io
from itertools import accumulate

import matplotlib

matplotlib.use("Agg")  # before pyplot: never open a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from ..budget_report import BudgetReport  # noqa: E402


def _eur(value, _pos=None) -> str:
    if abs(value) >= 1_000_000:
        return f"€{value / 1_000_000:,.1f}M"
    if abs(value) >= 1_000:
        return f"€{value / 1_000:,.0f}k"
    return f"€{value:,.0f}"


def _continuous_months(report: BudgetReport) -> tuple[list[str], list[float], list[float]]:
    """Every month from the first fact to the last, months without facts included (flat line there)."""
    if not report.by_month:
        return [], [], []
    by = {m.month: m for m in report.by_month}
    year, month = map(int, report.by_month[0].month.split("-"))
    last = report.by_month[-1].month
    months, committed, disbursed = [], [], []
    while True:
        key = f"{year:04d}-{month:02d}"
        line = by.get(key)
        months.append(key)
        committed.append(float(line.committed) if line else 0.0)
        disbursed.append(float(line.disbursed) if line else 0.0)
        if key >= last:
            return months, committed, disbursed
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def render_chart(report: BudgetReport, *, dpi: int = 100, width_in: float = 11.0, height_in: float = 4.5) -> bytes:
    """The chart as PNG bytes."""
    fig, (bars, line) = plt.subplots(1, 2, figsize=(width_in, height_in), dpi=dpi,
                                     gridspec_kw={"width_ratios": [1.15, 1]})
    try:
        labels = [w.name if len(w.name) <= 24 else w.name[:23] + "…" for w in report.by_window]
        x = range(len(labels))
        width = 0.38
        bars.bar([i - width / 2 for i in x], [float(w.committed) for w in report.by_window], width,
                 label="Committed", color="#1f4e79")
        bars.bar([i + width / 2 for i in x], [float(w.disbursed) for w in report.by_window], width,
                 label="Disbursed", color="#f0a30a")
        bars.set_xticks(list(x), labels, rotation=15, ha="right", fontsize=8)
        bars.yaxis.set_major_formatter(FuncFormatter(_eur))
        bars.set_title("Committed vs disbursed by window", fontsize=10)
        bars.legend(fontsize=8)
        bars.grid(axis="y", alpha=0.3)

        months, committed_m, disbursed_m = _continuous_months(report)
        if months:
            disbursed = list(accumulate(disbursed_m))
            committed = list(accumulate(committed_m))
            line.plot(months, committed, label="Committed (cumulative)", color="#1f4e79", linestyle="--")
            line.plot(months, disbursed, label="Disbursed (cumulative)", color="#f0a30a", marker=".")
            step = max(1, len(months) // 8)
            line.set_xticks(months[::step], months[::step], rotation=30, ha="right", fontsize=8)
        line.yaxis.set_major_formatter(FuncFormatter(_eur))
        line.set_title("Disbursed over time", fontsize=10)
        if months:
            line.legend(fontsize=8, loc="upper left")
        line.grid(alpha=0.3)

        as_of = report.as_of.isoformat() if report.as_of else "all recorded facts"
        fig.suptitle(f"{report.programme_name} — {report.budget_line} — as of {as_of}", fontsize=11)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
