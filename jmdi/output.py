"""Showing results: rich tables for people, `--json` for scripts (money stays a decimal string either way)."""

import json
import sys

from rich.console import Console
from rich.table import Table

from services.common.values.inert import clean_text


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # piped or captured output keeps whole lines (scripts grep it); a terminal gets its own width
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, soft_wrap=False, highlight=False)


def print_json(value) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def error_line(message: str) -> None:
    """One line however long (scripts read the first line; a wrapped path or message would split it)."""
    _console(stderr=True).print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    """Progress and hints go to stderr so stdout stays the result."""
    _console(stderr=True).print(_escape(message))


def _escape(text: str) -> str:
    """Text from the system as the terminal shows it: rich markup escaped, control characters dropped (an escape
    sequence in stored text, such as a forged token's user name in the audit trail, would drive the terminal)."""
    from rich.markup import escape

    return escape(clean_text(str(text)))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def _scalar_keys(rows: list[dict]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in keys and not isinstance(value, (dict, list)):
                keys.append(key)
    return keys


def table(rows: list[dict], columns: list[str] | None = None, title: str | None = None) -> Table:
    columns = [c for c in (columns or _scalar_keys(rows)) if any(c in r for r in rows)] or _scalar_keys(rows)
    out = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        numeric = column.endswith("_eur") or column in ("score", "total", "rank", "position", "count")
        out.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        out.add_row(*(_escape(_cell(row.get(c))) for c in columns))
    return out


def show(result, as_json: bool = False, columns: list[str] | None = None, title: str | None = None) -> None:
    if as_json:
        print_json(result)
        return
    console = _console()
    if isinstance(result, list):
        if result and all(isinstance(r, dict) for r in result):
            console.print(table(result, columns, title))
        elif result:
            for item in result:
                console.print(_escape(_cell(item)))
        else:
            console.print("(none)")
        return
    if isinstance(result, dict):
        details = Table(title=title, show_header=False, box=None, padding=(0, 2))
        details.add_column("field", style="bold")
        details.add_column("value", overflow="fold")
        nested = []
        for key, value in result.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                nested.append((key, value))
            else:
                details.add_row(_escape(key), _escape(_cell(value)))
        console.print(details)
        for key, rows in nested:
            console.print(table(rows, title=key))
        return
    console.print(_escape(_cell(result)))
