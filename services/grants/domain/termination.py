"""Early termination of a grant: the contract ends before its planned end (General Conditions of EC grant
contracts, termination by the Contracting Authority or by mutual agreement).

What termination does, as EC practice has it:
- it is dated: the effective date is the day the action stops; costs incurred after it are not eligible. It is
  not before the contract started, not after the action's planned end (then the action simply ended: its final
  report is due), not after today, within the programme period, and after the last period already reported
  (an accepted interim report's period cannot be reopened);
- it stops further pre-financing: no tranche other than the balance is paid afterwards;
- the consortium's final report covers everything not yet reported, up to the effective date, and may be
  submitted at once (the period has ended); interim periods not reported are folded into it;
- money moves only as today at closure: the final amount is min(award, EC share × accepted eligible costs);
  what was paid above it is recovered (a recovery order), what the award keeps above it is decommitted. So
  termination itself decommits nothing and the commitment stays until closure — the EC report shows the grant
  committed until its final amount is known.

Four eyes: termination ends the commitment the contract made, and leads to the decommitment at closure, so the
programme manager who terminates may not be the one who signed the contract (rule `termination.four_eyes`).
A contract whose signer was not recorded (signed before it was) is not checked, as other bounds this service was
never told.

Pending work blocks termination instead of being silently undone (each a Conflict naming its rule): a payment
request awaiting approval (`termination.payment_pending`: approve or cancel it first — the approver or the
requester decides, with a reason, so nothing is lost), a report awaiting a decision (`termination.report_pending`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.common.security.identity import require_second_person
from services.common.values.errors import Conflict
from services.common.values.report_calendar import FINAL_MONTHS

from ._values import a_date, add_months, aware, text
from .reports import ReportingPeriod


@dataclass(frozen=True)
class Termination:
    effective_date: date
    reason: str
    terminated_by: str
    terminated_at: datetime


def check_termination(
    *,
    effective_date,
    reason,
    terminated_by: str,
    terminated_at: datetime,
    start_date: date,
    end_date: date,
    today: date,
    signed_by: str | None,
    reported_until: date | None,
    programme_start: date | None,
    programme_end: date | None,
    pending_payments: list[str],
    pending_reports: list[str],
) -> Termination:
    """Every rule of termination on a contracted grant; returns the termination or raises the first rule broken."""
    effective = a_date(effective_date, "effective_date")
    reason = text(reason, "reason", 2000)
    by = text(terminated_by, "terminated_by")
    aware(terminated_at, "terminated_at")
    require_second_person(
        "termination.four_eyes",
        signed_by,
        by,
        f"{by} signed this grant's contract and may not terminate it: another programme manager decides",
        [{"signed_by": signed_by, "terminated_by": by}],
    )
    if effective > today:
        raise Conflict(
            "termination.effective_date_in_future",
            f"the effective date {effective} is after today ({today})",
            [{"effective_date": effective.isoformat(), "today": today.isoformat()}],
        )
    if effective < start_date:
        raise Conflict(
            "termination.before_contract_start",
            f"the effective date {effective} is before the "
            f"contract started ({start_date}); a grant whose action has not started is declined, not "
            f"terminated",
            [{"effective_date": effective.isoformat(), "start_date": start_date.isoformat()}],
        )
    if (programme_start is not None and effective < programme_start) or (
        programme_end is not None and effective > programme_end
    ):
        raise Conflict(
            "termination.outside_programme_period",
            f"the effective date {effective} is outside the "
            f"programme period {programme_start or '…'} to {programme_end or '…'}",
            [{"effective_date": effective.isoformat()}],
        )
    if effective > end_date:
        raise Conflict(
            "termination.after_action_end",
            f"the action ended on {end_date}: submit its final report and close it",
            [{"effective_date": effective.isoformat(), "end_date": end_date.isoformat()}],
        )
    if reported_until is not None and effective <= reported_until:
        raise Conflict(
            "termination.within_reported_period",
            f"the effective date {effective} falls in a period already reported (until {reported_until})",
            [{"effective_date": effective.isoformat(), "reported_until": reported_until.isoformat()}],
        )
    if pending_payments:
        raise Conflict(
            "termination.payment_pending",
            "a payment request awaits approval: approve or cancel it before terminating",
            [{"payment_ids": pending_payments}],
        )
    if pending_reports:
        raise Conflict(
            "termination.report_pending",
            "a report awaits a decision: accept or return it before terminating",
            [{"report_ids": pending_reports}],
        )
    return Termination(effective, reason, by, terminated_at)


def periods_after_termination(
    periods: list[ReportingPeriod], accepted: set[str], effective_date: date, start_date: date
) -> list[ReportingPeriod]:
    """The reports a terminated grant owes: the interim reports already accepted, then one final report from the
    end of the last of them to the effective date, due 3 months after it (as the final report after an action's
    planned end)."""
    kept = [p for p in periods if p.kind == "interim" and p.condition in accepted]
    final_start = add_months(start_date, 12 * len(kept))
    return kept + [ReportingPeriod("final", 1, final_start, effective_date, add_months(effective_date, FINAL_MONTHS))]
