"""Import exchange rates from an InforEuro-style file (CSV or XLSX): every row validated first, then one
`grants.set_rates` per month — or nothing.

The EC publishes its monthly accounting rates (InforEuro) as a table of currencies: a currency code column and a
rate column (units of the currency one EUR buys). Accepted headers (case-insensitive): the code in `iso code`,
`code`, `currency code`, `iso` or `currency`; the rate in `rate`, `conversion rate`, `value`, `euro rate` or
`amount`; the month in `month` (YYYY-MM) or a `date`/`start date` column (its month), or for the whole file with
`--month`. A file holding several months (the demo's year of rates) publishes each month on its own. Rates already
published with the same value are left as they are, so loading a file again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from services.common.values.errors import Conflict, InvalidInput, NotFound

from . import failures
from .importer import problems_of, read_rows

CODE_COLUMNS = ("iso code", "code", "currency code", "iso", "currency", "iso 4217")
RATE_COLUMNS = ("rate", "conversion rate", "value", "euro rate", "amount", "rate per eur")
MONTH_COLUMNS = ("month",)
DATE_COLUMNS = ("date", "start date", "valid from", "from")


@dataclass
class RatesImport:
    rows: int = 0
    months: dict = field(default_factory=dict)  # month -> [rate entries]
    errors: list = field(default_factory=list)  # {"row", "field", "message"}
    published: list = field(default_factory=list)  # {"month", "published", "unchanged"}
    checked_only: bool = False

    @property
    def exit_code(self) -> int:
        return failures.INVALID_INPUT if self.errors else 0

    def summary(self) -> dict:
        return {
            "rows": self.rows,
            "months": sorted(self.months),
            "errors": len(self.errors),
            "published": sum(len(p["published"]) for p in self.published),
            "unchanged": sum(len(p["unchanged"]) for p in self.published),
            "outcome": "nothing published: fix the rows listed"
            if self.errors and not self.published
            else "checked, nothing published"
            if self.checked_only
            else "some months were refused"
            if self.errors
            else "rates published",
        }


def _column(row: dict, names) -> str | None:
    for name in names:
        if name in row:
            return name
    return None


def parse(rows: list[dict], month: str | None) -> RatesImport:
    """Group the rows by month, checking each (the row number counts the header as row 1)."""
    from services.grants.domain import currencies as fx

    result = RatesImport(rows=len(rows))
    seen: dict = {}
    for number, row in enumerate(rows, start=2):
        code_col, rate_col = _column(row, CODE_COLUMNS), _column(row, RATE_COLUMNS)
        if code_col is None or rate_col is None:
            result.errors.append(
                {
                    "row": number,
                    "field": "(header)",
                    "message": "needs a currency code column "
                    f"({', '.join(CODE_COLUMNS)}) and a rate column ({', '.join(RATE_COLUMNS)})",
                }
            )
            break
        problems = {}
        row_month = month
        month_col, date_col = _column(row, MONTH_COLUMNS), _column(row, DATE_COLUMNS)
        raw_month = row.get(month_col) if month_col else (row.get(date_col) or "")[:7] if date_col else None
        if raw_month:
            try:
                row_month = fx.month(raw_month, month_col or date_col or "month")
            except InvalidInput as exc:
                problems.update(exc.errors)
            if month and row_month != month:
                problems[month_col or date_col] = [f"{row_month} is not the month {month} given"]
        elif not month:
            problems["month"] = ["no month: give --month YYYY-MM or a month column"]
        try:
            code = fx.currency(row.get(code_col), code_col)
            if code == fx.EUR:
                raise InvalidInput({code_col: ["EUR is the base of every rate"]})
        except InvalidInput as exc:
            problems.update(exc.errors)
            code = None
        try:
            value = fx.rate(row.get(rate_col), rate_col)
        except InvalidInput as exc:
            problems.update(exc.errors)
            value = None
        if code and row_month and (row_month, code) in seen:
            problems[code_col] = [f"{code} of {row_month} is also on row {seen[(row_month, code)]}"]
        for name, messages in problems.items():
            result.errors.append({"row": number, "field": name, "message": failures._join(messages)})
        if not problems and value is not None:  # no problems: month, code and rate all parsed
            seen[(row_month, code)] = number
            result.months.setdefault(row_month, []).append({"currency": code, "rate": fx.rate_str(value)})
    return result


def import_rates(
    connection,
    path: Path,
    source: str,
    month: str | None = None,
    rate_type: str = "inforeuro",
    check_only: bool = False,
    quiet: bool = False,
) -> RatesImport:
    from rich.progress import Progress

    from .output import _console

    result = parse(read_rows(Path(path)), month)
    result.checked_only = check_only
    if result.errors or check_only:
        return result
    with Progress(console=_console(stderr=True), transient=True, disable=quiet) as progress:
        task = progress.add_task(f"publishing {rate_type} rates", total=len(result.months))
        for the_month in sorted(result.months):
            try:
                answer = connection.call(
                    "grants",
                    "set_rates",
                    {"month": the_month, "rate_type": rate_type, "source": source, "rates": result.months[the_month]},
                )
                result.published.append(
                    {"month": the_month, "published": answer["published"], "unchanged": answer["unchanged"]}
                )
            except (InvalidInput, Conflict, NotFound) as exc:
                result.errors += [
                    {"row": f"month {the_month}", "field": name, "message": failures._join(messages)}
                    for name, messages in problems_of(exc).items()
                ]
            progress.advance(task)
    return result
