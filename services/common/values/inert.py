"""Text that reaches a file for people (CSV, XLSX, XML, JSON) must stay text.

- Control characters other than tab, LF and CR are refused at input (`CONTROL_CHARACTERS`, checked by the kit
  for every string of every operation) and removed by every exporter (`clean_text`), so a row stored before the
  input check cannot stop a programme's report (lxml refuses them in XML; Excel refuses the workbook).
- Spreadsheet formulas (OWASP "CSV injection"): a text cell beginning with `=`, `+`, `-`, `@`, tab or CR is a
  formula to Excel and LibreOffice. `inert_text` prefixes such text with a single quote for CSV; `text_cell`
  writes it into an XLSX cell as a string with the quote-prefix style, never a formula. Numbers stay numbers:
  a plain decimal ("-1234.56") is not text to defuse.
"""

import re

CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def clean_text(value):
    """The text without control characters other than tab, LF and CR; anything not a str unchanged."""
    return CONTROL_CHARACTERS.sub("", value) if isinstance(value, str) else value


def has_control_characters(value: str) -> bool:
    return bool(CONTROL_CHARACTERS.search(value))


def formula_like(value) -> bool:
    """Text a spreadsheet would read as a formula (a plain number is a number, not a formula)."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _NUMBER.match(value)


def inert_text(value):
    """For a CSV cell: control characters removed, a formula-like text prefixed with a single quote."""
    value = clean_text(value)
    return "'" + value if formula_like(value) else value


def text_cell(cell, value):
    """Write text into an openpyxl cell so that it is never a formula: control characters removed, stored as a
    string (data type 's'), with Excel's quote-prefix style when it looks like a formula. Returns the cell."""
    value = clean_text(value)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
        if formula_like(value):
            cell.quotePrefix = True
    return cell
