"""Expenditure in local currency, converted to EUR the way the programme's rule profile says.

Grantees spend in dirhams, CFA francs, Egyptian pounds, pesos…; payments and every EC figure are in EUR. Staff load
the EC's monthly accounting rates (InforEuro: how many units of a currency one EUR buys in a month) or, for a UNDP
programme, the UN operational rates of exchange, into a rates table; each rate is kept with its month, its kind
and its source, and is never changed once published (a report converted with it can always be re-derived).

The conversion rules (one per programme, from its rule profile):

- ``ec_monthly`` (EC PRAG, the default): a cost is converted at the InforEuro rate of the month it was incurred;
- ``ec_prefinancing`` (EC PRAG, the other option of the general conditions): every cost at the InforEuro rate of
  the month the first pre-financing was paid (the rate at which the pre-financing was converted);
- ``undp_monthly`` (UNDP): the UN operational rate of exchange of the month the cost was incurred.

Each line is converted and rounded to the cent (half up) on its own; a report's EUR figures are the sums of its
lines. A missing rate is a refusal naming the currency and the month, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Callable

from services.common.values.errors import Conflict, InvalidInput
from services.common.values.money import MoneyError, money_str, round_money, to_money

EUR = "EUR"
RATE_PLACES = 6  # InforEuro publishes at most 4-6 decimals
MAX_RATE = Decimal("1e9")
MAX_LINES = 2000
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_DATA = Path(__file__).resolve().parent.parent / "data" / "iso4217.txt"


class ConversionRule(str, Enum):
    EC_MONTHLY = "ec_monthly"
    EC_PREFINANCING = "ec_prefinancing"
    UNDP_MONTHLY = "undp_monthly"


class RateType(str, Enum):
    INFOREURO = "inforeuro"  # the EC's monthly accounting rates
    UN_OPERATIONAL = "un_operational"  # the UN operational rates of exchange


RATE_TYPE_OF = {
    ConversionRule.EC_MONTHLY: RateType.INFOREURO,
    ConversionRule.EC_PREFINANCING: RateType.INFOREURO,
    ConversionRule.UNDP_MONTHLY: RateType.UN_OPERATIONAL,
}
# the rule of a profile that does not name one (and of calls opened before profiles named it)
DEFAULT_RULES = {"ec_prag": ConversionRule.EC_MONTHLY, "undp": ConversionRule.UNDP_MONTHLY}


def conversion_rule(value: str | None, profile: str | None = None) -> ConversionRule:
    """The rule named, or the profile's default (EC monthly for anything not UNDP)."""
    if value:
        try:
            return ConversionRule(value)
        except ValueError:
            raise InvalidInput(
                {"currency_conversion": [f"must be one of {[r.value for r in ConversionRule]}"]}
            ) from None
    return DEFAULT_RULES.get(profile or "", ConversionRule.EC_MONTHLY)


@cache
def currencies() -> frozenset[str]:
    codes = set()
    for line in _DATA.read_text(encoding="utf-8").splitlines():
        codes.update(line.split("#", 1)[0].split())
    return frozenset(codes)


def currency(value, field: str = "currency") -> str:
    """An ISO 4217 code of a currency in circulation, upper case."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput({field: ["is required (an ISO 4217 code such as MAD)"]})
    code = value.strip().upper()
    if code not in currencies():
        raise InvalidInput({field: [f"{value[:10]!r} is not an ISO 4217 currency code"]})
    return code


def month(value, field: str = "month") -> str:
    """A calendar month as 'YYYY-MM' (a date gives its month)."""
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}"
    if not isinstance(value, str) or not _MONTH.match(value.strip()):
        raise InvalidInput({field: ["must be a month as YYYY-MM"]})
    return value.strip()


def rate(value, field: str = "rate") -> Decimal:
    """Units of the currency one EUR buys: a positive decimal string (never a float), at most 6 decimals."""
    if isinstance(value, (bool, float)):
        raise InvalidInput({field: ["must be a decimal string such as '10.8655', not a float"]})
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput({field: ["not a decimal number"]}) from None
    if not number.is_finite() or number <= 0:
        raise InvalidInput({field: ["must be above zero"]})
    if number >= MAX_RATE:
        raise InvalidInput({field: ["is out of range"]})
    if int(number.as_tuple().exponent) < -RATE_PLACES and number != round(number, RATE_PLACES):
        raise InvalidInput({field: [f"has more than {RATE_PLACES} decimal places"]})
    return number


def rate_str(value: Decimal) -> str:
    """A rate's wire form, without exponent."""
    return format(Decimal(value), "f")


@dataclass(frozen=True)
class ExchangeRate:
    rate_type: RateType
    month: str
    currency: str
    rate: Decimal
    source: str


def rate_table(month_value, rate_type, source: str, rates) -> list[ExchangeRate]:
    """One month's rates of one kind, validated entry by entry (every problem named by its position)."""
    errors: dict = {}
    try:
        the_month = month(month_value)
    except InvalidInput as exc:
        errors.update(exc.errors)
        the_month = None
    try:
        kind = RateType(rate_type or RateType.INFOREURO.value)
    except ValueError:
        errors["rate_type"] = [f"must be one of {[t.value for t in RateType]}"]
        kind = None
    if not isinstance(source, str) or not source.strip() or len(source) > 300 or not source.isprintable():
        errors["source"] = ["is required: where the rates come from (at most 300 printable characters)"]
    if not isinstance(rates, list) or not rates:
        errors["rates"] = ["give at least one rate"]
        rates = []
    if len(rates) > 500:
        errors["rates"] = ["at most 500 rates in one month"]
        rates = []
    table: list = []
    seen: dict = {}
    for i, entry in enumerate(rates):
        if not isinstance(entry, dict):
            errors[f"rates.{i}"] = ["must be an object with currency and rate"]
            continue
        try:
            code = currency(entry.get("currency"), f"rates.{i}.currency")
            if code == EUR:
                raise InvalidInput({f"rates.{i}.currency": ["EUR is the base of every rate (1 EUR = 1 EUR)"]})
            if code in seen:
                raise InvalidInput({f"rates.{i}.currency": [f"{code} is given twice (also at rates.{seen[code]})"]})
            seen[code] = i
            value = rate(entry.get("rate"), f"rates.{i}.rate")
        except InvalidInput as exc:
            errors.update(exc.errors)
            continue
        if the_month and kind:
            table.append(ExchangeRate(kind, the_month, code, value, source.strip()))
    if errors:
        raise InvalidInput(errors)
    return table


@dataclass(frozen=True)
class ExpenditureLine:
    """One cost as the grantee reports it, and (once converted) its EUR value and the rate used."""

    heading: str
    amount: Decimal
    currency: str
    incurred_on: date
    description: str = ""
    rate: Decimal = Decimal(1)
    rate_type: str | None = None  # None for a line in EUR
    rate_month: str | None = None
    amount_eur: Decimal | None = None

    def to_data(self) -> dict:
        if self.amount_eur is None:
            raise ValueError("an expenditure line is stored once converted to EUR")
        return {
            "heading": self.heading,
            "amount": money_str(self.amount),
            "currency": self.currency,
            "incurred_on": self.incurred_on.isoformat(),
            "description": self.description,
            "rate": rate_str(self.rate),
            "rate_type": self.rate_type,
            "rate_month": self.rate_month,
            "amount_eur": money_str(self.amount_eur),
        }

    @classmethod
    def from_data(cls, data: dict) -> "ExpenditureLine":
        incurred = data["incurred_on"]
        return cls(
            data["heading"],
            Decimal(str(data["amount"])),
            data["currency"],
            incurred if isinstance(incurred, date) else date.fromisoformat(incurred),
            data.get("description") or "",
            Decimal(str(data.get("rate") or 1)),
            data.get("rate_type"),
            data.get("rate_month"),
            Decimal(str(data["amount_eur"])),
        )


def expenditure_lines(raw, headings, period_start: date, period_end: date) -> list[ExpenditureLine]:
    """Validate the lines a report gives: heading, positive amount (two places), currency, the date the cost was
    incurred (within the report's period), an optional description. Every problem is named `lines.<i>.<field>`."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput({"lines": ["give at least one expenditure line"]})
    if len(raw) > MAX_LINES:
        raise InvalidInput({"lines": [f"at most {MAX_LINES} lines in one report"]})
    errors: dict = {}
    lines = []
    for i, item in enumerate(raw):
        where = f"lines.{i}"
        if not isinstance(item, dict):
            errors[where] = ["must be an object"]
            continue
        found = {}
        heading = item.get("heading")
        if heading not in headings:
            found[f"{where}.heading"] = [f"must be an Annex III heading ({', '.join(headings)})"]
        try:
            amount = to_money(item.get("amount"))
            if amount <= 0:
                found[f"{where}.amount"] = ["must be above zero"]
        except MoneyError as exc:
            found[f"{where}.amount"] = [str(exc)]
            amount = None
        try:
            code = currency(item.get("currency"), f"{where}.currency")
        except InvalidInput as exc:
            found.update(exc.errors)
            code = None
        incurred = item.get("incurred_on")
        if isinstance(incurred, str):
            try:
                incurred = date.fromisoformat(incurred)
            except ValueError:
                incurred = None
        if not isinstance(incurred, date):
            found[f"{where}.incurred_on"] = ["must be the date the cost was incurred (YYYY-MM-DD)"]
        elif not period_start <= incurred <= period_end:
            found[f"{where}.incurred_on"] = [
                f"{incurred.isoformat()} is outside the report's period "
                f"{period_start.isoformat()} to {period_end.isoformat()}"
            ]
        description = item.get("description") or ""
        if not isinstance(description, str) or len(description) > 300 or not description.isprintable():
            found[f"{where}.description"] = ["at most 300 printable characters"]
        if found:
            errors.update(found)
            continue
        # nothing found wrong: each was checked above
        assert isinstance(heading, str) and amount is not None and code is not None and isinstance(incurred, date)
        lines.append(ExpenditureLine(heading, amount, code, incurred, description.strip()))
    if errors:
        raise InvalidInput(errors)
    return lines


RateLookup = Callable[[RateType, str, str], "ExchangeRate | None"]


def convert(
    lines, rule: ConversionRule, lookup: RateLookup, prefinancing_month: str | None = None
) -> list[ExpenditureLine]:
    """Convert each line to EUR under `rule`, rounding each to the cent. `lookup(rate_type, month, currency)` finds
    a published rate. Every missing rate is named (currency and month) in one Conflict; nothing is guessed."""
    rule = ConversionRule(rule)
    kind = RATE_TYPE_OF[rule]
    if (
        rule == ConversionRule.EC_PREFINANCING
        and prefinancing_month is None
        and any(line.currency != EUR for line in lines)
    ):
        raise Conflict(
            "conversion.no_prefinancing",
            "the programme converts at the rate of the pre-financing, and no pre-financing of this grant is paid yet",
        )
    converted: list = []
    missing: dict = {}
    for line in lines:
        if line.currency == EUR:
            converted.append(_with(line, Decimal(1), None, None, line.amount))
            continue
        the_month = prefinancing_month if rule == ConversionRule.EC_PREFINANCING else month(line.incurred_on)
        assert the_month is not None  # no pre-financing month, no line in another currency: refused above
        found = lookup(kind, the_month, line.currency)
        if found is None:
            missing.setdefault((line.currency, the_month), 0)
            missing[(line.currency, the_month)] += 1
            continue
        converted.append(_with(line, found.rate, kind.value, the_month, round_money(line.amount / found.rate)))
    if missing:
        named = ", ".join(f"{c} in {m}" for c, m in sorted(missing))
        raise Conflict(
            "conversion.rate_missing",
            f"no {kind.value} rate published for {named}: load the month's rates first",
            [{"currency": c, "month": m, "rate_type": kind.value, "lines": n} for (c, m), n in sorted(missing.items())],
        )
    return converted


def by_heading(lines) -> dict:
    """The EUR expenditure per heading: the sum of the lines' rounded EUR values."""
    totals: dict = {}
    for line in lines:
        totals[line.heading] = totals.get(line.heading, Decimal("0.00")) + line.amount_eur
    return totals


def _with(line: ExpenditureLine, the_rate, kind, the_month, eur) -> ExpenditureLine:
    return ExpenditureLine(
        line.heading, line.amount, line.currency, line.incurred_on, line.description, the_rate, kind, the_month, eur
    )
