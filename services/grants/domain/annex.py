"""The Annex III budget of a grant (design.md §2): eight headings, two caps, the EC share.

Lines 1–6 are the direct headings (line 7 = their subtotal), 8 contingency (EC PRAG: ≤ 5% of line 7), 9 total
direct costs (7 + 8), 10 indirect costs (EC PRAG: ≤ 7% of line 9), 11 total eligible costs (9 + 10). The caps are
the call's, from its rule profile, carried by call_opened. A budget is a plain mapping heading -> Decimal with every
heading present (missing ones read as 0.00).
"""

from __future__ import annotations

from decimal import Decimal

from services.common.values.annex import DIRECT_HEADINGS as DIRECT_HEADINGS  # the one list of headings
from services.common.values.annex import HEADINGS as HEADINGS
from services.common.values.annex import BudgetCaps, cap_breaches
from services.common.values.errors import Conflict, InvalidInput
from services.common.values.money import money_str, round_money

from ._values import ZERO, money


def normalise_budget(mapping, field: str = "budget") -> dict[str, Decimal]:
    """Every Annex III heading mapped to a non-negative EUR amount; unknown headings are refused."""
    if not isinstance(mapping, dict):
        raise InvalidInput({field: ["must map Annex III headings to amounts"]})
    errors = {}
    unknown = sorted(set(mapping) - set(HEADINGS))
    for key in unknown:
        errors[f"{field}.{key}"] = [f"unknown heading (expected one of {', '.join(HEADINGS)})"]
    budget = {}
    for heading in HEADINGS:
        try:
            budget[heading] = money(mapping.get(heading, ZERO), f"{field}.{heading}")
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    return budget


def direct_subtotal(budget: dict) -> Decimal:
    """Line 7."""
    return sum((budget[h] for h in DIRECT_HEADINGS), ZERO)


def total_direct(budget: dict) -> Decimal:
    """Line 9 = line 7 + contingency."""
    return direct_subtotal(budget) + budget["contingency"]


def total_eligible(budget: dict) -> Decimal:
    """Line 11 = line 9 + indirect costs."""
    return total_direct(budget) + budget["indirect_costs"]


_CAP_RULES = {  # heading -> (rule, how the message names the heading and its base)
    "contingency": ("budget.contingency_cap", "contingency {amount} is above {share} of the direct costs subtotal"),
    "indirect_costs": ("budget.indirect_cap", "indirect costs {amount} are above {share} of the total direct costs"),
}


def _exact(value: Decimal) -> str:
    """A limit as computed (not rounded, as it is compared): 11140.00, or 5000.0005 where cents do not hold it."""
    return money_str(value) if value == round_money(value) else f"{value.normalize():f}"


def check_caps(budget: dict, caps: BudgetCaps) -> None:
    """The call's caps on contingency (line 8) and indirect costs (line 10), compared as calls compares a proposal
    (services/common/values/annex.py: exact, the limit not rounded)."""
    breaches = cap_breaches(
        direct_subtotal(budget), total_direct(budget), budget["contingency"], budget["indirect_costs"], caps
    )
    if breaches:
        heading, amount, limit = breaches[0]
        rule, message = _CAP_RULES[heading]
        share = caps.contingency if heading == "contingency" else caps.indirect
        raise Conflict(
            rule,
            message.format(amount=money_str(amount), share=f"{share:%}") + f" ({_exact(limit)})",
            [{"heading": h, "amount": money_str(a), "limit": _exact(lim)} for h, a, lim in breaches],
        )


def ec_share_of(award: Decimal, budget: dict) -> Decimal:
    """The EC share of eligible costs: award / line 11 (the rest is co-financing)."""
    total = total_eligible(budget)
    if total <= 0:
        raise InvalidInput({"budget": ["total eligible costs must be above zero"]})
    if award > total:
        raise InvalidInput(
            {"amount": [f"the award {money_str(award)} is above the total eligible costs {money_str(total)}"]}
        )
    return award / total
