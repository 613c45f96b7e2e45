"""The dates of a grant's life must make sense: within the programme period, and in the order of its chain

    call closed (its deadline) ≤ award decision ≤ contract start ≤ payment requested ≤ value date

and nothing in the future beyond today, except what is a schedule (a contract may start later; tranches and
report deadlines are planned ahead). Each refusal is a Conflict naming its rule, so staff can tell a wrong date
from a failure. Grants learns the call's deadline and the programme period from call_opened; a bound it was never
told (an event from before they were carried) is not checked. Dates are business dates: compared by day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.common.values.errors import Conflict


@dataclass(frozen=True)
class ProgrammeCalendar:
    """What a grant's dates are measured against: its call's deadline and its programme's period."""

    call_deadline: datetime | None = None
    programme_start: date | None = None
    programme_end: date | None = None

    def _period(self) -> str:
        return f"{self.programme_start or '…'} to {self.programme_end or '…'}"

    def _outside(self, day: date) -> bool:
        return (self.programme_start is not None and day < self.programme_start) or (
            self.programme_end is not None and day > self.programme_end
        )

    def check_award_decision(self, decision_date: date, today: date) -> None:
        """The steering committee decides once the call has closed, within the programme, not in the future."""
        if decision_date > today:
            raise Conflict(
                "award.decision_in_future",
                f"the decision date {decision_date} is after today ({today})",
                [{"decision_date": decision_date.isoformat(), "today": today.isoformat()}],
            )
        if self.call_deadline is not None and decision_date < self.call_deadline.date():
            raise Conflict(
                "award.before_call_closed",
                f"the decision date {decision_date} is before the call closed at its deadline "
                f"({self.call_deadline.date()})",
                [{"decision_date": decision_date.isoformat(), "call_deadline": self.call_deadline.isoformat()}],
            )
        if self._outside(decision_date):
            raise Conflict(
                "award.outside_programme_period",
                f"the decision date {decision_date} is outside the programme period {self._period()}",
                [{"decision_date": decision_date.isoformat()}],
            )

    def check_contract(self, start_date: date, end_date: date, decision_date: date | None) -> None:
        """The action starts on or after the award decision and runs within the programme period (a start in the
        future is a plan, and allowed)."""
        if decision_date is not None and start_date < decision_date:
            raise Conflict(
                "contract.starts_before_award",
                f"the contract cannot start on {start_date}, before the award decision of {decision_date}",
                [{"start_date": start_date.isoformat(), "decision_date": decision_date.isoformat()}],
            )
        if self._outside(start_date):
            raise Conflict(
                "contract.outside_programme_period",
                f"the start date {start_date} is outside the programme period {self._period()}",
                [{"start_date": start_date.isoformat()}],
            )
        self.check_end(end_date, "contract.ends_after_programme")

    def check_end(self, end_date: date, rule: str) -> None:
        """The action (as contracted or amended) ends by the end of the programme."""
        if self.programme_end is not None and end_date > self.programme_end:
            raise Conflict(
                rule,
                f"the action would end on {end_date}, after the programme period ends ({self.programme_end})",
                [{"end_date": end_date.isoformat(), "programme_end": self.programme_end.isoformat()}],
            )


def check_value_date(value_date: date, requested_at: datetime, today: date) -> None:
    """A payment is paid after it was requested, and its value date is not in the future."""
    if value_date > today:
        raise Conflict(
            "payment.value_date_in_future",
            f"the value date {value_date} is after today ({today})",
            [{"value_date": value_date.isoformat(), "today": today.isoformat()}],
        )
    if value_date < requested_at.date():
        raise Conflict(
            "payment.value_date_before_request",
            f"the value date {value_date} is before the payment was requested ({requested_at.date()})",
            [{"value_date": value_date.isoformat(), "requested_on": requested_at.date().isoformat()}],
        )
