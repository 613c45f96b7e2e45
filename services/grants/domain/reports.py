"""Narrative-free financial reports: interim after each 12-month period, final after the end of the action.

Contract deadlines: an interim report within 60 days after each 12-month period (there is none for the last
period: the final report covers it), the final report within 3 months after the end. Each report states the
expenditure of its own period by Annex III heading; staff accept it (it then counts and unlocks the tranche it
conditions) or return it with a reason (the consortium submits a corrected one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from services.common.values.errors import Conflict, InvalidInput

from services.common.values.report_calendar import add_months
from services.common.values.report_calendar import report_due_dates as contract_due_dates

from ._values import ZERO, a_date, aware, months, text
from .annex import normalise_budget


class ReportKind(str, Enum):
    INTERIM = "interim"
    FINAL = "final"


class ReportStatus(str, Enum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"


class ReportDue(NamedTuple):
    kind: str
    period_end: date
    due_date: date


@dataclass(frozen=True)
class ReportingPeriod:
    """A period a report covers: interim n = months 12(n-1)+1 .. 12n; the final one = the last period."""

    kind: str
    number: int
    start: date
    end: date
    due_date: date

    @property
    def condition(self) -> str:
        """The name tranches use for this report: 'interim_report:<n>' or 'final_report'."""
        return "final_report" if self.kind == ReportKind.FINAL.value else f"interim_report:{self.number}"


def reporting_periods(start_date: date, duration_months: int) -> list[ReportingPeriod]:
    """The contract's reporting periods and their due dates (services/common/values/report_calendar.py)."""
    start = a_date(start_date, "start_date")
    dues = contract_due_dates(start, months(duration_months))
    # the n-th period (interim ones first, then the final one) starts 12 * (n - 1) months after the start
    return [
        ReportingPeriod(due.kind, due.number, add_months(start, 12 * index), due.period_end, due.due_date)
        for index, due in enumerate(dues)
    ]


def report_due_dates(start_date: date, duration_months: int) -> list[ReportDue]:
    """[(kind, period_end, due_date)] in order (services/common/values/report_calendar.py)."""
    return [ReportDue(p.kind, p.end, p.due_date) for p in reporting_periods(start_date, duration_months)]


@dataclass(frozen=True)
class FinancialReport:
    report_id: str
    grant: str
    kind: ReportKind
    number: int
    period_start: date
    period_end: date
    expenditure: dict
    submitted_at: datetime
    status: ReportStatus = ReportStatus.SUBMITTED
    reason: str = ""
    decided_at: datetime | None = None
    lines: tuple = ()  # ExpenditureLine (currencies.py), converted: the expenditure is their EUR sums
    actuals: tuple = ()  # {code, value, comment}: the logframe's indicators over the period

    def __post_init__(self):
        object.__setattr__(self, "kind", ReportKind(self.kind))
        object.__setattr__(self, "expenditure", normalise_budget(self.expenditure, "expenditure"))
        aware(self.submitted_at, "submitted_at")
        if self.period_end < self.period_start:
            raise InvalidInput({"period_end": ["must not be before period_start"]})

    @property
    def total(self) -> Decimal:
        return sum(self.expenditure.values(), ZERO)

    @property
    def condition(self) -> str:
        return "final_report" if self.kind == ReportKind.FINAL else f"interim_report:{self.number}"


def accept(report: FinancialReport, decided_at: datetime) -> FinancialReport:
    _pending(report)
    return replace(report, status=ReportStatus.ACCEPTED, decided_at=aware(decided_at, "decided_at"))


def return_report(report: FinancialReport, reason: str, decided_at: datetime) -> FinancialReport:
    """Send a report back to the consortium; the reason is required (they must know what to correct)."""
    _pending(report)
    return replace(
        report,
        status=ReportStatus.RETURNED,
        reason=text(reason, "reason", 2000),
        decided_at=aware(decided_at, "decided_at"),
    )


def _pending(report: FinancialReport) -> None:
    if report.status != ReportStatus.SUBMITTED:
        raise Conflict("report.already_decided", f"report {report.report_id} is already {report.status.value}")
