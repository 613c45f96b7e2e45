"""Text from staff and applicants reaches files for people: every export stays produced, valid and inert whatever
a title, an organisation's or a programme's name holds — formulas, control characters (a row stored before the
input refused them), right-to-left overrides, long strings."""

import csv
import io
import json
from dataclasses import replace
from datetime import date, datetime, timezone

from openpyxl import load_workbook

from services.common.values.inert import CONTROL_CHARACTERS, formula_like
from tests.support.report_facts import generate_facts
from services.reporting.exports import csv_export, giving360, iati, table, xlsx_export

HOSTILE = [
    '=HYPERLINK("http://evil.example","click")',
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3*cmd",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "Title\x0bwith a vertical tab",
    "bell\x07 escape\x1b[2J nul\x00",
    "\u202etxt.exe\u202c override",
    "x" * 10_000,
]


def hostile_facts():
    facts = generate_facts(seed=14, n_grants=len(HOSTILE) * 2, n_tranches=len(HOSTILE) * 4)
    for i, grant in enumerate(facts.grants):
        grant.title = HOSTILE[i % len(HOSTILE)]
        grant.lead_organisation = HOSTILE[(i + 3) % len(HOSTILE)]
    programme = replace(
        facts.programme,
        name='=HYPERLINK("http://evil")\x0b JMDI',
        windows={
            code: ("@" + name + "\x0c", allocation) for code, (name, allocation) in facts.programme.windows.items()
        },
    )
    return replace(facts, programme=programme)


def test_every_export_is_produced_valid_and_inert(tmp_path, iati_schema_dir):
    report = hostile_facts().report(as_of=date(2012, 12, 31))

    # XLSX: no text cell is a formula, no control character; the report's own formulas are still there
    path = tmp_path / "report.xlsx"
    path.write_bytes(xlsx_export.xlsx_bytes(report))  # with its chart, as the EC gets it
    book = load_workbook(path)
    formulas = texts = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    formulas += 1
                    # only the report's own formulas (totals, cross-checks), none from the data
                    assert (
                        "HYPERLINK" not in str(cell.value)
                        and "cmd" not in str(cell.value)
                        and "@" not in str(cell.value)
                    ), (sheet.title, cell.coordinate, cell.value)
                elif isinstance(cell.value, str):
                    texts += 1
                    assert not CONTROL_CHARACTERS.search(cell.value), (sheet.title, cell.coordinate)
                    assert cell.data_type == "s"
                    if formula_like(cell.value):
                        assert cell.quotePrefix, (sheet.title, cell.coordinate, cell.value[:40])
    assert formulas and texts
    grants = book["Grants"]
    titles = {c.value for row in grants.iter_rows(min_row=5) for c in row if isinstance(c.value, str)}
    assert "=cmd|' /C calc'!A0" in titles  # kept as the applicant wrote it, as text

    # CSV: a formula-like cell begins with a quote; numbers stay numbers
    rows = list(csv.reader(io.StringIO(csv_export.csv_text(report))))
    cells = [cell for row in rows for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'-2+3*cmd" in cells
    assert not [c for c in cells if formula_like(c)]
    assert not [c for c in cells if CONTROL_CHARACTERS.search(c)]
    assert str(report.committed) in cells  # money is a plain number, not quoted
    csv_export.write_csv(report, tmp_path / "csv")

    # IATI: produced and valid against the official schema
    xml = iati.build_iati(report, generated_at=datetime(2013, 1, 2, tzinfo=timezone.utc))
    assert iati.validate_iati(xml, iati.schema_path(iati_schema_dir)) == []
    assert b"\x0b" not in xml and b"\x1b" not in xml

    # 360Giving: JSON without control characters
    data = json.loads(giving360.giving360_json(report))
    text = json.dumps(data, ensure_ascii=False)
    assert not CONTROL_CHARACTERS.search(text.replace("\\u0000", "\x00"))
    assert "\\u000b" not in giving360.giving360_json(report)

    # the terminal table: no escape sequence reaches a terminal
    assert "\x1b" not in table.render_table(report)
