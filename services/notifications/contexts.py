"""Template variables of each message, from an event's data and what the service knows (pure functions).

`proposal` and `grant` are anything with the attributes of models.Proposal / models.Grant. Values stay Python
(Decimal, date, datetime); the planner stores them in wire form, which the template filters read as well.
The recipient's name and the language are added per recipient by the planner.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

from .domain.schedule import period_end

REPORT_TITLES = {
    "en": {"monthly": "monthly report", "quarterly": "quarterly report", "on_demand": "programme report"},
    "fr": {"monthly": "rapport mensuel", "quarterly": "rapport trimestriel", "on_demand": "rapport du programme"},
}


def submission_receipt(d: dict) -> dict:
    return {
        "organisation": d["lead_organisation"],
        "call_reference": d["call_id"],
        "proposal_reference": d["reference"],
        "proposal_title": d["title"],
        "submitted_at": d["submitted_at"],
    }


def _about_proposal(d: dict, proposal) -> dict:
    return {"proposal_reference": d["reference"], "proposal_title": proposal.title}


def screening_result(d: dict, proposal) -> dict:
    """An applicant never reads the exclusion lists' own entries — which list, why an entity is on it: those are
    internal. A possible match names the consortium's member to clarify; an exclusion gives the officer's
    decision text, the reason staff wrote for the applicant."""
    outcome = d["outcome"]
    flagged = outcome == "flagged"
    members = list(dict.fromkeys(hit["applicant"] for hit in d.get("hits", []))) if flagged else []
    reasons = [d["reason"]] if outcome == "excluded" and d.get("reason") else []
    return {
        **_about_proposal(d, proposal),
        "eligible": outcome in ("clear", "cleared"),
        "flagged": flagged,
        "members": members,
        "reasons": reasons,
    }


def evaluation_result(d: dict, proposal) -> dict:
    return {
        **_about_proposal(d, proposal),
        "stage": d["stage"],
        "score": d["score"],
        "max_score": d["max_score"],
        "threshold": d["threshold"],
        "passed": d["passed"],
    }


def award(d: dict, proposal) -> dict:
    return {
        **_about_proposal(d, proposal),
        "organisation": d["lead_organisation"],
        "grant_reference": d["reference"],
        "amount": d["amount_eur"],
        "duration_months": proposal.duration_months,
    }


def rejection(d: dict, proposal) -> dict:
    return {**_about_proposal(d, proposal), "reasons": list(d["reasons"])}


def _about_grant(grant) -> dict:
    return {"grant_reference": grant.reference, "project_title": grant.title}


def contract_signed(d: dict, grant) -> dict:
    schedule = [
        {"number": t["number"], "amount": t["planned_amount_eur"], "expected_date": t.get("due_date")}
        for t in d["schedule"]
    ]
    return {
        **_about_grant(grant),
        "signed_on": d["signed_at"].date(),
        "start_date": d["start_date"],
        "end_date": d["end_date"],
        "amount": d["amount_eur"],
        "schedule": schedule,
    }


def tranche_paid(d: dict, grant) -> dict:
    return {
        **_about_grant(grant),
        "tranche_number": d["tranche_number"],
        "amount": d["amount_eur"],
        "value_date": d["value_date"],
        "total_paid": grant.paid,
        "award_amount": grant.amount,
    }


def payment_requested(d: dict, grant) -> dict:
    return {
        **_about_grant(grant),
        "organisation": grant.lead_organisation,
        "tranche_number": d["tranche_number"],
        "amount": d["amount_eur"],
        "requested_by": d["requested_by"],
        "requested_at": d["requested_at"],
    }


def payment_cancelled(d: dict, grant) -> dict:
    return {
        **_about_grant(grant),
        "organisation": grant.lead_organisation,
        "tranche_number": d["tranche_number"],
        "amount": d["amount_eur"],
        "requested_by": d["requested_by"],
        "cancelled_by": d["cancelled_by"],
        "cancelled_at": d["cancelled_at"],
        "reason": d["reason"],
    }


def report_due(grant, kind: str, due_date: date, today: date) -> dict:
    return {**_about_grant(grant), "report_kind": kind, "due_date": due_date, "days_before": (due_date - today).days}


def next_tranche_amount(schedule: list, number: int | None) -> Decimal | None:
    """The planned pre-financing tranche an accepted interim report unlocks (the contract's `condition`), if the
    schedule names one."""
    for tranche in schedule or ():
        if number and tranche.get("condition") == f"interim_report:{number}":
            return Decimal(str(tranche["planned_amount_eur"]))
    return None


def report_accepted(d: dict, grant, number: int | None) -> dict:
    """An accepted interim report quotes the tranche it unlocks. A final report quotes no figure: the balance is
    what closure establishes from the accepted expenditure (the grant_closed message gives it), not the
    contract's planned last tranche."""
    context = {**_about_grant(grant), "report_kind": d["kind"], "accepted_on": d["decided_at"].date()}
    amount = next_tranche_amount(grant.schedule, number) if d["kind"] == "interim" else None
    if amount:
        context["next_tranche_amount"] = amount
    return context


def report_returned(d: dict, grant, resubmit_days: int) -> dict:
    return {
        **_about_grant(grant),
        "report_kind": d["kind"],
        "reason": d["reason"] or "-",
        "resubmit_by": d["decided_at"].date() + timedelta(days=resubmit_days),
    }


def grant_amended(d: dict, grant, previous_amount: Decimal, previous_end: date | None, effective: datetime) -> dict:
    """`grant` already amended; the previous amount and end date tell what the amendment changed."""
    context = {
        **_about_grant(grant),
        "amendment_number": grant.amendments,
        "effective_date": effective.date(),
        "changes": [d["reason"]] if d.get("reason") else [],
    }
    if d["amount_eur"] != previous_amount:
        context["new_amount"] = d["amount_eur"]
    if grant.end_date is not None and grant.end_date != previous_end:
        context["new_end_date"] = grant.end_date
    return context


def grant_terminated(d: dict, grant) -> dict:
    return {
        **_about_grant(grant),
        "effective_date": d["effective_date"],
        "reason": d["reason"],
        "award_amount": d["amount_eur"],
        "total_paid": d["paid_eur"],
        "final_report_period_start": d["final_report_period_start"],
        "final_report_due": d["final_report_due"],
    }


def grant_closed(d: dict, grant) -> dict:
    context = {
        **_about_grant(grant),
        "closed_on": d["closed_at"].date(),
        "award_amount": grant.amount,
        "total_paid": d["paid_eur"],
    }
    if d["recovery_eur"] > 0:
        context["recovery_amount"] = d["recovery_eur"]
    return context


def ec_report(d: dict, language: str) -> dict:
    start, end = report_period(d["period"], d["generated_at"].date())
    titles = REPORT_TITLES.get(language, REPORT_TITLES["en"])
    return {
        "report_title": titles.get(d["kind"], d["kind"]),
        "period_start": start,
        "period_end": end,
        "generated_at": d["generated_at"],
        "file_name": d["filename"],
    }


_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.I)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*(?:/|\.\.|_to_| to )\s*(\d{4}-\d{2}-\d{2})$")


def report_period(period: str, fallback: date) -> tuple[date, date]:
    """First and last day of a report period: "2010-Q1", "2010-03", "2010", "2010-03-31" (as of a day) or
    "2010-01-01/2010-03-31".

    An unrecognised label falls back to the generation date (the message still goes out, with that date).
    """
    text = period.strip()
    if match := _QUARTER.match(text):
        start = date(int(match[1]), 3 * int(match[2]) - 2, 1)
        return start, period_end(start, 3)
    if match := _MONTH.match(text):
        if 1 <= int(match[2]) <= 12:
            start = date(int(match[1]), int(match[2]), 1)
            return start, period_end(start, 1)
    if match := _YEAR.match(text):
        return date(int(match[1]), 1, 1), date(int(match[1]), 12, 31)
    if _DAY.match(text):  # an on-demand report: the programme as of that day
        try:
            return date.fromisoformat(text), date.fromisoformat(text)
        except ValueError:
            pass
    if match := _RANGE.match(text):
        try:
            return date.fromisoformat(match[1]), date.fromisoformat(match[2])
        except ValueError:
            pass
    return fallback, fallback
