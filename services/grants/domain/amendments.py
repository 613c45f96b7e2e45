"""Budget reallocation without an amendment, and amendments (budget, duration, amount).

Reallocation rule, precisely: for each Annex III heading, |new − original| ≤ 15% of that heading's ORIGINAL
amount (so a heading budgeted at 0.00 cannot receive anything without an amendment), the total is unchanged,
and the contingency (≤ 5%) and indirect (≤ 7%) caps still hold. Anything more needs an amendment.
An amendment never raises the award above the call maximum, nor beyond what remains of the window allocation
and the programme contribution; it never lowers it below what is already paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from services.common.values.annex import BudgetCaps
from services.common.values.errors import Conflict, InvalidInput
from services.common.values.money import money_str, round_money

from ._values import money, months, text
from .annex import HEADINGS, check_caps, normalise_budget, total_eligible
from .budget import CallLimits, ProgrammeBudget, WindowBudget

REALLOCATION_LIMIT = Decimal("0.15")


def reallocation_changes(current_budget, new_budget, limit: Decimal = REALLOCATION_LIMIT) -> list[dict]:
    """Per heading: original, new, change and the allowed change (15% of the original), as decimal strings."""
    current = normalise_budget(current_budget, "current_budget")
    new = normalise_budget(new_budget, "new_budget")
    rows = []
    for heading in HEADINGS:
        change = new[heading] - current[heading]
        allowed = round_money(current[heading] * limit)
        rows.append(
            {
                "heading": heading,
                "original": money_str(current[heading]),
                "new": money_str(new[heading]),
                "change": money_str(change),
                "allowed": money_str(allowed),
                "within_limit": abs(change) <= allowed,
            }
        )
    return rows


def check_reallocation(current_budget, new_budget, caps: BudgetCaps, limit: Decimal = REALLOCATION_LIMIT) -> list[dict]:
    """Allow a reallocation that needs no amendment; raise Conflict("reallocation.amendment_required") with the
    headings over the limit (or the changed total) otherwise. Returns the per-heading changes."""
    rows = reallocation_changes(current_budget, new_budget, limit)
    current, new = normalise_budget(current_budget), normalise_budget(new_budget)
    over = [row for row in rows if not row["within_limit"]]
    if total_eligible(new) != total_eligible(current):
        over.append(
            {
                "heading": "total",
                "original": money_str(total_eligible(current)),
                "new": money_str(total_eligible(new)),
                "change": money_str(total_eligible(new) - total_eligible(current)),
                "allowed": "0.00",
                "within_limit": False,
            }
        )
    if over:
        names = ", ".join(row["heading"] for row in over)
        raise Conflict(
            "reallocation.amendment_required",
            f"changes beyond {limit:%} of a heading or of the total need an amendment: {names}",
            over,
        )
    check_caps(new, caps)
    return rows


class AmendmentKind(str, Enum):
    BUDGET = "budget"
    DURATION = "duration"
    AMOUNT = "amount"
    TARGETS = "targets"  # the logframe's indicator targets (value and date)


@dataclass(frozen=True)
class Amendment:
    """A signed addendum to the contract. Only the field its kind changes is required: new_budget (budget),
    new_duration_months (duration), new_amount (amount; optionally with new_budget and new_annual_budgets)."""

    amendment_id: str
    kind: AmendmentKind
    reason: str = ""
    new_budget: dict | None = None
    new_duration_months: int | None = None
    new_amount: Decimal | None = None
    new_annual_budgets: tuple | None = None
    new_targets: list | None = None  # [{code, target_value, target_date?}] for a targets amendment

    def __post_init__(self):
        object.__setattr__(self, "amendment_id", text(self.amendment_id, "amendment_id", 60))
        object.__setattr__(self, "kind", AmendmentKind(self.kind))
        if self.kind == AmendmentKind.BUDGET and self.new_budget is None:
            raise InvalidInput({"new_budget": ["is required for a budget amendment"]})
        if self.kind == AmendmentKind.DURATION:
            months(self.new_duration_months, "new_duration_months")
        if self.kind == AmendmentKind.AMOUNT:
            if self.new_amount is None:
                raise InvalidInput({"new_amount": ["is required for an amount amendment"]})
            object.__setattr__(self, "new_amount", money(self.new_amount, "new_amount", positive=True))
        if self.kind == AmendmentKind.TARGETS and not self.new_targets:
            raise InvalidInput({"new_targets": ["is required for a targets amendment"]})
        if self.new_budget is not None:
            object.__setattr__(self, "new_budget", normalise_budget(self.new_budget, "new_budget"))


def targets_of(logframe) -> dict:
    """Indicator code -> {target_value, target_date}: what a targets amendment changes (for its audit)."""
    return {
        result_ind["code"]: {"target_value": result_ind["target_value"], "target_date": result_ind["target_date"]}
        for result in logframe or ()
        for result_ind in result["indicators"]
    }


def check_amendment_amount(
    current_award: Decimal,
    new_amount: Decimal,
    paid_total: Decimal,
    call_limits: CallLimits,
    window_budget: WindowBudget,
    programme_budget: ProgrammeBudget,
) -> None:
    """The rules an amount amendment must keep (a decrease frees commitment; an increase must fit)."""
    if new_amount > call_limits.max_grant:
        raise Conflict(
            "amendment.above_call_max",
            f"{money_str(new_amount)} is above the call maximum {money_str(call_limits.max_grant)}",
            [{"amount": money_str(new_amount), "limit": money_str(call_limits.max_grant)}],
        )
    if new_amount < paid_total:
        raise Conflict(
            "amendment.below_paid", f"{money_str(new_amount)} is below the {money_str(paid_total)} already paid"
        )
    increase = new_amount - current_award
    if increase > window_budget.remaining:
        raise Conflict(
            "amendment.window_allocation_exceeded",
            f"the increase {money_str(increase)} is above what "
            f"remains of window {window_budget.window} ({money_str(window_budget.remaining)})",
        )
    if increase > programme_budget.remaining:
        raise Conflict(
            "amendment.programme_contribution_exceeded",
            f"the increase {money_str(increase)} is above "
            f"what remains of the programme ({money_str(programme_budget.remaining)})",
        )


def check_ec_share(
    award: Decimal, budget: dict, call_limits: CallLimits, rule: str = "amendment.ec_share_exceeded"
) -> Decimal:
    """The EC share (award / total eligible costs) must stay within the cap; returns it. `rule` names the
    refusal after the operation (an award or an amendment)."""
    total = total_eligible(budget)
    if total <= 0 or award > total:
        raise Conflict(rule, f"the award {money_str(award)} is above the total eligible costs {money_str(total)}")
    share = award / total
    if share > call_limits.max_ec_share:
        raise Conflict(
            rule,
            f"the EC share {share:.2%} is above the cap {call_limits.max_ec_share:%}",
            [{"share": f"{share:.4f}", "cap": str(call_limits.max_ec_share)}],
        )
    return share
