"""Reporting periods of the EC reports: months ("2026-10"), quarters ("2026-Q3") and single days for
on-demand reports ("2026-11-14"). A period's report shows the programme as of the period's last day."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

KINDS = ("monthly", "quarterly", "on_demand")
SCHEDULED_KINDS = ("monthly", "quarterly")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    kind: str
    label: str
    start: date
    end: date  # the report is as of this day

    def has_ended(self, today: date) -> bool:
        return self.end < today


def _month_end(year: int, month: int) -> date:
    first_next = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return first_next - timedelta(days=1)


def month(year: int, number: int) -> Period:
    return Period("monthly", f"{year:04d}-{number:02d}", date(year, number, 1), _month_end(year, number))


def quarter(year: int, number: int) -> Period:
    first = 3 * (number - 1) + 1
    return Period("quarterly", f"{year:04d}-Q{number}", date(year, first, 1), _month_end(year, first + 2))


def parse_period(kind: str, label: str) -> Period:
    """The period a label names, for its kind; PeriodError says what the label should look like."""
    if kind == "monthly":
        match = _MONTH.match(label)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise PeriodError("a monthly period is YYYY-MM, e.g. 2026-10")
        return month(int(match.group(1)), int(match.group(2)))
    if kind == "quarterly":
        match = _QUARTER.match(label)
        if not match:
            raise PeriodError("a quarterly period is YYYY-Qn, e.g. 2026-Q3")
        return quarter(int(match.group(1)), int(match.group(2)))
    if kind == "on_demand":
        try:
            day = date.fromisoformat(label)
        except ValueError:
            raise PeriodError("an on-demand period is the as-of date YYYY-MM-DD") from None
        if len(label) != 10:
            raise PeriodError("an on-demand period is the as-of date YYYY-MM-DD")
        return Period("on_demand", day.isoformat(), day, day)
    raise PeriodError(f"kind must be one of {', '.join(KINDS)}")


def last_completed(kind: str, today: date) -> Period:
    """The latest period of the kind that ended before `today` (the one a scheduled run reports)."""
    if kind == "monthly":
        previous = today.replace(day=1) - timedelta(days=1)
        return month(previous.year, previous.month)
    if kind == "quarterly":
        current = (today.month - 1) // 3 + 1
        return quarter(today.year, current - 1) if current > 1 else quarter(today.year - 1, 4)
    raise PeriodError(f"{kind} reports are not scheduled")
