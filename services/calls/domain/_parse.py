"""Shared parsing for data files and RPC dicts: every problem is collected, then raised once as InvalidInput.

Collecting (rather than failing on the first bad field) lets a programme manager fix a data file in one pass.
Field names are dotted paths ("windows.2.allocation"), the shape InvalidInput already prints.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from services.common.values.errors import InvalidInput
from services.common.values.money import MoneyError, to_money

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_MISSING = object()
T = TypeVar("T")


@lru_cache(maxsize=1)
def iso_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from a data file so the list is reviewed like any other data."""
    codes = set()
    for line in (DATA_DIR / "iso3166-1-alpha2.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            codes.add(line.split("\t", 1)[0].strip())
    return frozenset(codes)


class Errors:
    """Accumulates field -> [messages]; `raise_if_any` turns them into one InvalidInput."""

    def __init__(self):
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self, message: str | None = None) -> None:
        if self.errors:
            raise InvalidInput(self.errors, message)


def checked(value: T | None) -> T:
    """A required value after `raise_if_any` passed: its parser recorded an error instead of returning None."""
    assert value is not None, "a required field parsed to None without an error"
    return value


def unchecked(value: object) -> Any:
    """A raw value handed to a constructor that validates its fields (naming any missing or wrong one): the
    field types say what the fields hold once checked."""
    return value


def get(data: dict, key: str, errors: Errors, field: str | None = None, required: bool = True, default=None):
    if not isinstance(data, dict) or key not in data or data[key] is None:
        if required:
            errors.add(field or key, "is required")
        return default
    return data[key]


def text(value, field: str, errors: Errors, required: bool = True) -> str | None:
    if value is None:
        if required:
            errors.add(field, "is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        errors.add(field, "must be a non-empty string")
        return None
    return value.strip()


def code(value, field: str, errors: Errors) -> str | None:
    value = text(value, field, errors)
    if value is not None and not CODE_RE.match(value):
        errors.add(field, f"{value!r} is not a lower_snake_case code")
        return None
    return value


def money(value, field: str, errors: Errors, minimum: Decimal | None = Decimal("0")) -> Decimal | None:
    if value is None:
        errors.add(field, "is required")
        return None
    try:
        amount = to_money(value)
    except MoneyError as exc:
        errors.add(field, str(exc))
        return None
    if minimum is not None and amount < minimum:
        errors.add(field, f"must be at least {minimum}")
        return None
    return amount


def decimal(
    value, field: str, errors: Errors, low: Decimal | None = None, high: Decimal | None = None
) -> Decimal | None:
    """A ratio or a number of points; floats are refused for the same reason money refuses them."""
    if value is None:
        errors.add(field, "is required")
        return None
    if isinstance(value, (bool, float)):
        errors.add(field, "must be a quoted decimal string such as '0.90', not a float")
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        errors.add(field, "is not a decimal number")
        return None
    if not number.is_finite():
        errors.add(field, "must be finite")
        return None
    if (low is not None and number < low) or (high is not None and number > high):
        errors.add(field, f"must be between {low} and {high}")
        return None
    return number


def integer(
    value, field: str, errors: Errors, low: int | None = None, high: int | None = None, required: bool = True
) -> int | None:
    if value is None:
        if required:
            errors.add(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field, "must be an integer")
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        errors.add(field, f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
        return None
    return value


def a_date(value, field: str, errors: Errors) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors.add(field, "must be an ISO date (YYYY-MM-DD)")
    return None


def utc_datetime(value, field: str, errors: Errors) -> datetime | None:
    """Deadlines and timestamps must be timezone-aware; a naive time is ambiguous across 16 countries."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            errors.add(field, "must be an ISO 8601 date-time with a UTC offset")
            return None
    if not isinstance(value, datetime):
        errors.add(field, "must be a date-time")
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        errors.add(field, "must be timezone-aware (UTC)")
        return None
    return value.astimezone(timezone.utc)


def require_aware(now: datetime, field: str = "now") -> datetime:
    errors = Errors()
    value = utc_datetime(now, field, errors)
    errors.raise_if_any()
    return checked(value)


def country(value, field: str, errors: Errors) -> str | None:
    value = text(value, field, errors)
    if value is None:
        return None
    upper = value.upper()
    if upper not in iso_countries():
        errors.add(field, f"unknown ISO 3166-1 alpha-2 country code {value!r}")
        return None
    return upper


def country_list(values, field: str, errors: Errors, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(values, (list, tuple)):
        errors.add(field, "must be a list of ISO 3166-1 alpha-2 codes")
        return ()
    if not values and not allow_empty:
        errors.add(field, "must not be empty")
    seen: list[str] = []
    for i, raw in enumerate(values):
        c = country(raw, f"{field}.{i}", errors)
        if c is None:
            continue
        if c in seen:
            errors.add(f"{field}.{i}", f"duplicate country {c!r}")
            continue
        seen.append(c)
    return tuple(seen)
