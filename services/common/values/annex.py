"""The Annex III budget headings of the PRAG grant contract: the one list every service uses (proposals in calls, the
grant's budget in grants, event contracts, the EC budget report). Plain Python, importable anywhere.

Lines 1-6 are the direct headings (line 7 is their subtotal), 8 the contingency reserve, 10 the indirect costs; 9
(total direct costs) and 11 (total eligible costs) are derived, so they are not headings of their own.

Lines 8 and 10 are capped by the call's rule profile (`BudgetCaps`): calls checks a proposal against them and
grants an amended or reallocated budget, with the same comparison (`cap_breaches`) and the caps call_opened carries.
"""

from decimal import Decimal
from typing import NamedTuple

DIRECT_HEADINGS = (
    "human_resources",
    "travel",
    "equipment_supplies",
    "local_office",
    "other_costs_services",
    "other",
)
HEADINGS = DIRECT_HEADINGS + ("contingency", "indirect_costs")
HEADING_LABELS = {
    "human_resources": "1. Human resources",
    "travel": "2. Travel",
    "equipment_supplies": "3. Equipment and supplies",
    "local_office": "4. Local office",
    "other_costs_services": "5. Other costs, services",
    "other": "6. Other",
    "contingency": "8. Contingency reserve",
    "indirect_costs": "10. Indirect (administrative) costs",
}


class BudgetCaps(NamedTuple):
    """Contingency (line 8) at most `contingency` × line 7, indirect costs (line 10) at most `indirect` × line 9."""

    contingency: Decimal
    indirect: Decimal


# EC PRAG's caps: also those of a call announced before call_opened carried its own
PRAG_CAPS = BudgetCaps(Decimal("0.05"), Decimal("0.07"))


def cap_breaches(
    subtotal_direct: Decimal, total_direct: Decimal, contingency: Decimal, indirect_costs: Decimal, caps: BudgetCaps
) -> list[tuple[str, Decimal, Decimal]]:
    """(heading, amount, limit) for each capped heading above its cap. Exact Decimal arithmetic, the limit not
    rounded: 5% of 100,000.01 is 5,000.0005, so 5,000.01 of contingency is above it."""
    breaches = []
    if contingency > caps.contingency * subtotal_direct:
        breaches.append(("contingency", contingency, caps.contingency * subtotal_direct))
    if indirect_costs > caps.indirect * total_direct:
        breaches.append(("indirect_costs", indirect_costs, caps.indirect * total_direct))
    return breaches
