"""The budget report's charts, native to the workbook (openpyxl.chart): Excel and LibreOffice draw them from the
report's own cells, so the service needs no plotting library and the chart always shows the figures the sheets hold.

Left: committed and disbursed by call window (the Windows sheet; bars across, so the windows' names read level).
Right: committed (award date) and disbursed (value date) by year (the Years sheet). Both sit on the Summary sheet, under the headline figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from openpyxl.chart import BarChart, Reference
from openpyxl.worksheet.worksheet import Worksheet

COMMITTED_COLOUR, DISBURSED_COLOUR = "1F4E79", "F0A30A"
WIDTH_CM, HEIGHT_CM = 13.0, 9.0
ROWS_TALL = 19  # rows of the default height the charts cover


@dataclass(frozen=True)
class Breakdown:
    """Rows of a breakdown sheet: its labels and the committed and disbursed columns (1-based indices)."""

    sheet: Worksheet
    header_row: int
    first_row: int
    last_row: int  # the last data row (the Total row under it is not drawn)
    label_column: int
    committed_column: int
    disbursed_column: int


def bar_chart(title: str, rows: Breakdown, *, across: bool = False) -> BarChart | None:
    """Committed and disbursed side by side for each row (bars across, or columns); None without rows."""
    if rows.last_row < rows.first_row:
        return None
    chart = BarChart()
    chart.type, chart.grouping, chart.title, chart.style = "bar" if across else "col", "clustered", title, 10
    chart.width, chart.height = WIDTH_CM, HEIGHT_CM
    chart.y_axis.numFmt = '#,##0 "€"'
    chart.x_axis.delete = chart.y_axis.delete = False  # openpyxl hides the axes unless told
    for column, colour in ((rows.committed_column, COMMITTED_COLOUR), (rows.disbursed_column, DISBURSED_COLOUR)):
        chart.add_data(
            Reference(rows.sheet, min_col=column, min_row=rows.header_row, max_row=rows.last_row), titles_from_data=True
        )
        chart.series[-1].graphicalProperties.solidFill = colour
        chart.series[-1].graphicalProperties.line.solidFill = colour
    chart.set_categories(
        Reference(rows.sheet, min_col=rows.label_column, min_row=rows.first_row, max_row=rows.last_row)
    )
    chart.legend.position = "b"
    return chart


def add_charts(summary: Worksheet, row: int, by_window: Breakdown, by_year: Breakdown) -> int:
    """Place the charts on the Summary sheet from `row`; returns the last row they cover."""
    for anchor, chart in (
        (f"A{row}", bar_chart("Committed and disbursed by window", by_window, across=True)),
        (f"D{row}", bar_chart("Committed and disbursed by year", by_year)),
    ):
        if chart is not None:
            summary.add_chart(chart, anchor)
    return row + ROWS_TALL
