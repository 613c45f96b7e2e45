"""Pure rules of the notifications service: when reports are due, which reminder is due today, and what to do
after a failed delivery attempt.

Report deadlines follow the grant contract: the calendar is the kit's (services/common/values/report_calendar.py), the one
grants uses too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from services.common.values.report_calendar import DueReport as DueReport
from services.common.values.report_calendar import add_months as add_months
from services.common.values.report_calendar import period_end as period_end
from services.common.values.report_calendar import report_due_dates as report_due_dates
from services.common.values.retry import DELIVERY, backoff_delays

# deterministic ids for reminders, which have no source event: the same reminder always gets the same id
REMINDER_NAMESPACE = uuid.UUID("5b0f6a52-8d0e-4f55-9a53-0b7c3b1f7a11")


def parse_reminder_days(text) -> tuple[int, ...]:
    """ "30,7" -> (30, 7, 0): the days before a due date reminders go out; the due date itself always."""
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
    base_seconds: float = DELIVERY.base
    cap_seconds: float = DELIVERY.cap
    factor: float = 2.0

    def __post_init__(self):
        backoff_delays(self.base_seconds, self.factor, self.max_attempts, self.cap_seconds)  # refuses nonsense

    def after_failure(self, attempts: int, temporary: bool) -> float | None:
        """Seconds to wait before the next attempt after `attempts` failed ones; None: give up (mark failed)."""
        if not temporary or attempts >= self.max_attempts:
            return None
        return backoff_delays(self.base_seconds, self.factor, self.max_attempts, self.cap_seconds)[attempts - 1]
