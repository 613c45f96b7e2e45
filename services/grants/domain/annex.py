"""The Annex III budget of a grant (design.md §2): eight headings, two caps, the EC share.

Lines 1–6 are the direct headings (line 7 = their subtotal), 8 contingency (≤ 5% of line 7), 9 total direct
costs (7 + 8), 10 indirect costs (≤ 7% of line 9), 11 total eligible costs (9 + 10). A budget is a plain
mapping heading -> Decimal with every heading present (missing ones read as 0.00).
"""
from __future__ import annotations

from decimal import Decimal

from services.common.values.annex import DIRECT_HEADINGS as DIRECT_HEADINGS  # the one list of headings
from services.common.values.annex import HEADINGS as HEADINGS
from services.common.values.errors import Conflict, InvalidInput
from services.common.values.money import money_str, round_money

from ._values import ZERO, money

CONTINGENCY_CAP = Decimal("0.05")
INDIRECT_CAP = Decimal("0.07")


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


def check_caps(budget: dict, contingency_cap: Decimal = CONTINGENCY_CAP,
               indirect_cap: Decimal = INDIRECT_CAP) -> None:
    """Contingency ≤ 5% of line 7 and indirect costs ≤ 7% of line 9 (caps rounded to the cent, half up)."""
    limit = round_money(direct_subtotal(budget) * contingency_cap)
    if budget["contingency"] > limit:
        raise Conflict("budget.contingency_cap", f"contingency {money_str(budget['contingency'])} is above "
                       f"{contingency_cap:%} of the direct costs subtotal ({money_str(limit)})",
                       [{"heading": "contingency", "amount": money_str(budget["contingency"]),
                         "limit": money_str(limit)}])
    limit = round_money(total_direct(budget) * indirect_cap)
    if budget["indirect_costs"] > limit:
        raise Conflict("budget.indirect_cap", f"indirect costs {money_str(budget['indirect_costs'])} are above "
                       f"{indirect_cap:%} of the total direct costs ({money_str(limit)})",
                       [{"heading": "indirect_costs", "amount": money_str(budget["indirect_costs"]),
                         "limit": money_str(limit)}])


def ec_share_of(award: Decimal, budget: dict) -> Decimal:
    """The EC share of eligible costs: award / line 11 (the rest is co-financing)."""
    total = total_eligible(budget)
    if total <= 0:
        raise InvalidInput({"budget": ["total eligible costs must be above zero"]})
    if award > total:
        raise InvalidInput({"amount": [f"the award {money_str(award)} is above the total eligible costs "
                                       f"{money_str(total)}"]})
    return award / total
