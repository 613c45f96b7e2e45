"""When a grantee's financial reports are due: the one definition the grants service (which holds the contract) and
the notifications service (which reminds) both use.

The grant contract's calendar: an interim report 60 days after each 12-month period of the action except the last,
the final report 3 months after the end of the action (e.g. start 2009-03-01, 36 months: interim reports due
2010-04-29 and 2011-04-29, the final one for the period ending 2012-02-29 due 2012-05-31).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import NamedTuple

INTERIM_DAYS = 60
FINAL_MONTHS = 3


class DueReport(NamedTuple):
    kind: str  # interim | final
    number: int
    period_end: date
    due_date: date


def add_months(day: date, count: int) -> date:
    """Same day `count` months later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + count
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_end(start: date, months_after: int) -> date:
    """Last day (inclusive) of the period of `months_after` months starting on `start`."""
    return add_months(start, months_after) - timedelta(days=1)


def report_periods(duration_months: int) -> int:
    """How many 12-month reporting periods an action of that many months has (the last may be shorter)."""
    return (duration_months + 11) // 12


def report_due_dates(start: date, duration_months: int) -> list[DueReport]:
    """Every report of an action in order: the interim ones, then the final one."""
    dues = []
    for n in range(1, report_periods(duration_months)):
        end = period_end(start, 12 * n)
        dues.append(DueReport("interim", n, end, end + timedelta(days=INTERIM_DAYS)))
    dues.append(
        DueReport("final", 1, period_end(start, duration_months), period_end(start, duration_months + FINAL_MONTHS))
    )
    return dues
