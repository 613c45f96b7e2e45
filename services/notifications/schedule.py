"""Pure rules of the notifications service: when reports are due, which reminder is due today, and what to do
after a failed delivery attempt.

Report deadlines follow the grant contract as grants computes them (services/grants/domain/reports.py; a unit
test keeps the two in step): an interim report 60 days after each 12-month period except the last, the final
report 3 months after the end of the action.
"""
from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from .delivery import backoff_delays

INTERIM_DAYS = 60
FINAL_MONTHS = 3
# deterministic ids for reminders, which have no source event: the same reminder always gets the same id
REMINDER_NAMESPACE = uuid.UUID("5b0f6a52-8d0e-4f55-9a53-0b7c3b1f7a11")


class DueReport(NamedTuple):
    kind: str  # interim | final
    number: int
    period_end: date
    due_date: date


def add_months(day: date, count: int) -> date:
    """Same day `count` months later, clamped to the month's last day."""
    month_index = day.month - 1 + count
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_end(start: date, months_after: int) -> date:
    return add_months(start, months_after) - timedelta(days=1)


def report_due_dates(start: date, duration_months: int) -> list[DueReport]:
    periods = (duration_months + 11) // 12
    dues = []
    for n in range(1, periods):
        end = period_end(start, 12 * n)
        dues.append(DueReport("interim", n, end, end + timedelta(days=INTERIM_DAYS)))
    dues.append(DueReport("final", 1, period_end(start, duration_months),
                          period_end(start, duration_months + FINAL_MONTHS)))
    return dues


def parse_reminder_days(text) -> tuple[int, ...]:
    """"30,7" -> (30, 7, 0): the days before a due date reminders go out; the due date itself always."""
    days = {0}
    for part in str(text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"REPORT_REMINDER_DAYS must be whole days separated by commas, not {text!r}")
        days.add(int(part))
    return tuple(sorted(days, reverse=True))


def reminder_stage(due_date: date, today: date, reminder_days: tuple[int, ...]) -> int | None:
    """The reminder due today for a report: the closest stage (days before) already reached, or None.

    With (30, 7, 0): nothing until 30 days before; the 30-day reminder from then; the 7-day one from 7 days
    before; the last one on the day. A service that was down on the exact day sends the stage it is in, once
    (a missed 30-day reminder is not sent together with the 7-day one); nothing after the due date.
    """
    days_left = (due_date - today).days
    if days_left < 0:
        return None
    reached = [d for d in reminder_days if d >= days_left]
    return min(reached) if reached else None


def reminder_key(grant_id: str, kind: str, number: int, due_date: date, stage: int) -> str:
    """The reminder's stand-in for a source event id (a UUID, stable): a changed due date is a new reminder."""
    return str(uuid.uuid5(REMINDER_NAMESPACE, f"report_due:{grant_id}:{kind}:{number}:{due_date}:{stage}"))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff of failed deliveries: base, base*factor, ... capped; max_attempts in all."""

    max_attempts: int = 8
    base_seconds: float = 60.0
    cap_seconds: float = 3600.0
    factor: float = 2.0

    def __post_init__(self):
        backoff_delays(self.base_seconds, self.factor, self.max_attempts, self.cap_seconds)  # refuses nonsense

    def after_failure(self, attempts: int, temporary: bool) -> float | None:
        """Seconds to wait before the next attempt after `attempts` failed ones; None: give up (mark failed)."""
        if not temporary or attempts >= self.max_attempts:
            return None
        return backoff_delays(self.base_seconds, self.factor, self.max_attempts, self.cap_seconds)[attempts - 1]
