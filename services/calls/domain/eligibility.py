"""Eligibility of a proposal against its call and programme: every failed rule, not just the first.

An applicant (and the administrative check) needs the whole list to fix a proposal in one go, so nothing here
raises for a rule; `ensure_eligible` turns a non-empty list into one Conflict for callers that must refuse.
Comparisons are exact Decimal arithmetic (no rounding of caps; the cap rule is services/common/values/annex.py's,
which grants applies to amended budgets): 5% of 100,000.01 is 5,000.0005, so 5,000.01 of contingency is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from services.common.values.annex import cap_breaches
from services.common.values.errors import Conflict
from services.common.values.logframe import completeness
from services.common.values.money import money_str

from . import _parse as p
from .call import Call, CallStatus, PartnerScope
from .profile import Stage
from .programme import Programme
from .proposal import Proposal, Role


@dataclass(frozen=True)
class Violation:
    rule: str
    field: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def check_eligibility(
    call: Call, programme: Programme, proposal: Proposal, now: datetime, stage: Stage = Stage.CONCEPT_NOTE
) -> list[Violation]:
    """Every rule the proposal fails. `stage` is the furthest stage the submission is checked for: a concept
    note alone needs no logframe; a full application needs it (`check_full_application`). The calls service
    takes one submission that is scored at both stages, so it checks the full application's rules at submission
    whenever the call's profile scores a full application."""
    now = p.require_aware(now)
    found: list[Violation] = []

    def fail(rule: str, field: str, message: str) -> None:
        found.append(Violation(rule, field, message))

    # -- the call -----------------------------------------------------------------------------------------------
    if call.status is not CallStatus.OPEN:
        fail("call.not_open", "call_id", f"call {call.id!r} is {call.status.value}, not open")
    if now > call.deadline:
        fail(
            "call.deadline_passed",
            "submitted_at",
            f"submitted {now.isoformat()}, after the deadline {call.deadline.isoformat()}",
        )
    if proposal.call_id is not None and proposal.call_id != call.id:
        fail("proposal.wrong_call", "call_id", f"proposal is for call {proposal.call_id!r}, not {call.id!r}")
    if not call.has_window(proposal.window):
        fail(
            "proposal.window_not_in_call",
            "window",
            f"window {proposal.window!r} is not open in this call (windows: {', '.join(call.window_codes)})",
        )

    # -- amount, share, duration --------------------------------------------------------------------------------
    ec = proposal.ec_amount_requested
    if ec < call.min_grant:
        fail(
            "proposal.amount_below_minimum",
            "ec_amount_requested",
            f"{money_str(ec)} is below the minimum grant {money_str(call.min_grant)}",
        )
    if ec > call.max_grant:
        fail(
            "proposal.amount_above_maximum",
            "ec_amount_requested",
            f"{money_str(ec)} is above the maximum grant {money_str(call.max_grant)}",
        )
    budget = proposal.budget
    eligible = budget.total_eligible
    if eligible <= 0:
        fail("budget.empty", "budget", "total eligible costs (line 11) must be positive")
    elif ec > call.max_ec_share * eligible:
        fail(
            "proposal.ec_share_above_cap",
            "ec_amount_requested",
            f"EC share {(ec / eligible * 100):.2f}% of eligible costs is above the cap {call.max_ec_share * 100:.2f}%",
        )
    if call.min_duration_months is not None and proposal.duration_months < call.min_duration_months:
        fail(
            "proposal.duration_too_short",
            "duration_months",
            f"{proposal.duration_months} months is shorter than {call.min_duration_months}",
        )
    if call.max_duration_months is not None and proposal.duration_months > call.max_duration_months:
        fail(
            "proposal.duration_too_long",
            "duration_months",
            f"{proposal.duration_months} months is longer than {call.max_duration_months}",
        )

    # -- budget (Annex III) -------------------------------------------------------------------------------------
    for heading, _amount, _limit in cap_breaches(
        budget.subtotal_direct, budget.total_direct, budget.contingency, budget.indirect_costs, call.caps
    ):
        if heading == "contingency":
            fail(
                "budget.contingency_above_cap",
                "budget.contingency",
                f"contingency {money_str(budget.contingency)} is above {call.contingency_cap * 100:.0f}% of the "
                f"direct-cost subtotal (line 7) {money_str(budget.subtotal_direct)}",
            )
        else:
            fail(
                "budget.indirect_above_cap",
                "budget.indirect_costs",
                f"indirect costs {money_str(budget.indirect_costs)} are above {call.indirect_cap * 100:.0f}% of "
                f"total direct costs (line 9) {money_str(budget.total_direct)}",
            )
    if proposal.total_eligible_cost != eligible:
        fail(
            "budget.total_mismatch",
            "total_eligible_cost",
            f"declared total eligible cost {money_str(proposal.total_eligible_cost)} differs from budget "
            f"line 11 {money_str(eligible)}",
        )
    if ec + proposal.co_financing != eligible:
        fail(
            "budget.funding_mismatch",
            "co_financing",
            f"EC amount {money_str(ec)} plus co-financing {money_str(proposal.co_financing)} differs from "
            f"total eligible costs {money_str(eligible)}",
        )

    # -- where and who ------------------------------------------------------------------------------------------
    if not programme.is_eligible_country(proposal.target_country):
        fail(
            "proposal.country_not_eligible",
            "target_country",
            f"{proposal.target_country} is not an eligible country of {programme.id}",
        )
    for i, applicant in enumerate(proposal.applicants):
        if applicant.type not in call.eligible_applicant_types:
            fail(
                "applicant.type_not_eligible",
                f"applicants.{i}.type",
                f"{applicant.name}: applicant type {applicant.type.value!r} is not eligible in this call",
            )
    found.extend(_consortium(call, programme, proposal))
    if Stage(stage) is Stage.FULL_APPLICATION:
        found.extend(check_full_application(proposal))
    return found


def check_full_application(proposal: Proposal) -> list[Violation]:
    """What a full application needs beyond the concept note: its logframe, with at least one outcome and one
    output (each with indicators: the shape is checked at submission)."""
    return [Violation(rule, field, message) for rule, field, message in completeness(proposal.logframe)]


def _consortium(call: Call, programme: Programme, proposal: Proposal) -> list[Violation]:
    rule = call.consortium
    result = []
    leads = [a for a in proposal.applicants if a.role is Role.LEAD]
    if len(leads) != 1:
        result.append(
            Violation(
                "consortium.one_lead", "applicants", f"a consortium has exactly one lead applicant, found {len(leads)}"
            )
        )
    co_applicants = len(proposal.applicants) - len(leads)
    if rule.max_co_applicants is not None and co_applicants > rule.max_co_applicants:
        result.append(
            Violation(
                "consortium.too_many_co_applicants",
                "applicants",
                f"{co_applicants} co-applicants, at most {rule.max_co_applicants}",
            )
        )
    countries = {a.country for a in proposal.applicants}
    if rule.require_eu_partner and not any(programme.is_eu_member_state(c) for c in countries):
        result.append(
            Violation(
                "consortium.no_eu_partner",
                "applicants",
                "the consortium needs at least one member in an EU member state",
            )
        )
    if rule.require_target_country_partner:
        if rule.partner_scope is PartnerScope.TARGET_COUNTRY:
            ok = proposal.target_country in countries
            where = f"the target country {proposal.target_country}"
        else:
            ok = any(programme.is_eligible_country(c) for c in countries)
            where = f"an eligible country of {programme.id}"
        if not ok:
            result.append(
                Violation(
                    "consortium.no_target_country_partner",
                    "applicants",
                    f"the consortium needs at least one member in {where}",
                )
            )
    return result


def ensure_eligible(call: Call, programme: Programme, proposal: Proposal, now: datetime) -> None:
    """For callers that must refuse outright: one Conflict listing every violation."""
    violations = check_eligibility(call, programme, proposal, now)
    if violations:
        raise Conflict(
            "proposal.not_eligible", f"{len(violations)} eligibility rule(s) failed", [v.to_dict() for v in violations]
        )


def ec_share(proposal: Proposal) -> Decimal | None:
    """EC amount as a fraction of line 11 (None when the budget is empty), for display and reports."""
    eligible = proposal.budget.total_eligible
    return None if eligible <= 0 else proposal.ec_amount_requested / eligible
