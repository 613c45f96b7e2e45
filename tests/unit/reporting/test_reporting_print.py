"""The EC budget workbook as it prints: converted to PDF by LibreOffice (headless), every page is A4 landscape,
the cover holds the period, the as-of date and the whole of both charts on one page, and the internal checks are not on
it. The charts are the workbook's own (openpyxl.chart): LibreOffice draws them as text and lines, so the test reads
where their titles, axes and categories are drawn.

LibreOffice comes from the distribution (.ci/run installs Debian's libreoffice-calc-nogui); pypdf reads the PDF.
"""

import shutil
import subprocess
from datetime import date

import pytest
from pypdf import PdfReader

from services.reporting.exports import xlsx_export

A4_LANDSCAPE = (841.89, 595.28)  # points


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        pytest.fail("LibreOffice is needed to print the EC workbook: apt-get install libreoffice-calc-nogui")
    return found


@pytest.fixture(scope="module")
def printed(report, tmp_path_factory):
    folder = tmp_path_factory.mktemp("print")
    workbook = folder / "budget.xlsx"
    xlsx_export.write_xlsx(report, workbook, produced_on=date(2011, 7, 1))
    # a profile of its own: another LibreOffice running on the machine must not lock this one out
    profile = (folder / "profile").as_uri()
    subprocess.run(
        [
            soffice(),
            f"-env:UserInstallation={profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(folder),
            str(workbook),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return PdfReader(folder / "budget.pdf")


def texts_drawn(page) -> list[tuple[str, float, float]]:
    """(text, x, y) of each piece of text the page draws."""
    found = []

    def visit(text, cm, tm, _font, _size):
        if text.strip():
            found.append((text.strip(), tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]))

    page.extract_text(visitor_text=visit)
    return found


def test_every_page_is_a4_landscape(printed):
    assert len(printed.pages) >= 8  # the cover, six breakdowns, the checks
    for page in printed.pages:
        size = (float(page.mediabox.width), float(page.mediabox.height))
        assert size == pytest.approx(A4_LANDSCAPE, abs=1), size


def test_the_cover_holds_the_period_the_as_of_date_and_the_whole_chart(printed, report):
    cover = printed.pages[0]
    text = cover.extract_text()
    assert "EC budget report" in text and f"Period covered: {report.covers_from} to 2011-06-30" in text
    assert "As of 2011-06-30" in text
    assert "of which co-financing (by the consortia)" in text
    assert "must read 0.00" not in text and "Committed by country" not in text  # the checks have their sheet
    for page in printed.pages[1:]:
        assert "Committed and disbursed by" not in page.extract_text(), "the charts are on the cover, and only there"
    drawn = texts_drawn(cover)
    width, height = float(cover.mediabox.width), float(cover.mediabox.height)
    titles = [(x, y) for text, x, y in drawn if text.startswith("Committed and disbursed")]
    assert len(titles) == 2, drawn
    (left, _), (right, _) = sorted(titles)
    assert right - left > width / 3, "the two charts side by side, each big enough to read"
    figures = min(y for text, x, y in drawn if text.startswith("of which co-financing"))  # the last figure
    years = [(x, y) for text, x, y in drawn if text in {str(line.year) for line in report.by_year}]
    assert len(years) == len(report.by_year)  # the categories of the chart by year
    windows = [(x, y) for text, x, y in drawn if text in {line.window for line in report.by_window}]
    assert len(windows) == len(report.by_window)  # the categories of the chart by window, level
    legends = [(x, y) for text, x, y in drawn if text in ("Committed EUR", "Disbursed EUR")]
    assert len(legends) == 4  # each chart's legend names its two series
    for x, y in titles + years + windows + legends:
        assert 0 <= x <= width and 0 <= y < figures, "the charts are drawn under the figures, inside the page"
    amounts = [(x, y) for text, x, y in drawn if text.endswith(" €") and text.replace(",", "")[:-2].isdigit()]
    across = [x for x, y in amounts if x < width / 2]  # the chart by window: amounts along the bottom
    up = [y for x, y in amounts if x >= width / 2]  # the chart by year: amounts up the side
    assert len(across) >= 3 and max(across) - min(across) > width / 8, "the charts are big enough to read"
    assert len(up) >= 3 and max(up) - min(up) > height / 10, "the charts are big enough to read"


def test_the_checks_and_every_breakdown_print_with_their_titles(printed):
    pages = [page.extract_text() for page in printed.pages]
    checks = [text for text in pages if "Internal checks (each must read 0.00)" in text]
    assert len(checks) == 1 and "Committed by country" in checks[0]
    grants = [text for text in pages if "Grants awarded" in text]
    assert grants and all("EC contribution" in text and "Co-financing" in text for text in grants)
    assert all("Period covered:" in text for text in pages)  # titles repeated on every page
