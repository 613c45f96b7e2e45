"""Small value helpers of the grants domain: money and dates as the rules need them, errors as InvalidInput.

Kept private to the package: the public names live in the concern modules.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from services.common.values.errors import InvalidInput
from services.common.values.money import MoneyError, money_str, to_money
from services.common.values.report_calendar import add_months as add_months  # the contract's calendar: one definition
from services.common.values.report_calendar import period_end as period_end

ZERO = Decimal("0.00")


def money(value, field: str, *, positive: bool = False, allow_zero: bool = True) -> Decimal:
    """Parse an EUR amount (decimal string, int or Decimal; never a float) or raise InvalidInput on `field`."""
    try:
        amount = to_money(value)
    except MoneyError as exc:
        raise InvalidInput({field: [str(exc)]}) from None
    if amount < 0:
        raise InvalidInput({field: ["must not be negative"]})
    if (positive or not allow_zero) and amount == 0:
        raise InvalidInput({field: ["must be above zero"]})
    return amount


def ratio(value, field: str) -> Decimal:
    """A share between 0 and 1 (e.g. the EC share 0.80); floats are refused like for money."""
    if isinstance(value, (bool, float)):
        raise InvalidInput({field: ["must be a decimal string such as '0.80', not a float"]})
    try:
        share = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except Exception:
        raise InvalidInput({field: ["not a decimal number"]}) from None
    if not share.is_finite() or share <= 0 or share > 1:
        raise InvalidInput({field: ["must be above 0 and at most 1"]})
    return share


def text(value, field: str, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput({field: ["is required"]})
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInput({field: [f"must be at most {max_length} characters"]})
    return value


def aware(value, field: str) -> datetime:
    """A timestamp with a time zone: events carry ISO 8601 with an offset, so a naive datetime is refused."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput({field: ["must be a datetime with a time zone"]})
    return value


def a_date(value, field: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput({field: ["must be a date"]})
    return value


def months(value, field: str = "duration_months") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput({field: ["must be a whole number of months, at least 1"]})
    return value


def m(value: Decimal) -> str:
    """Money on the wire: "150000.00"."""
    return money_str(value)
