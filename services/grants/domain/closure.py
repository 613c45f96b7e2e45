"""Closing a grant: the final payment, or a recovery order when the consortium was paid more than its
accepted expenditure earns, and the decommitment of what the grant will never use.

The final amount (what the EC owes in the end) = min(award, EC share × accepted expenditure), rounded to the
cent. Paid less than that: the balance is the final payment. Paid more: recovery = paid − the final amount.
Either way the commitment is reduced to the final amount: award − final amount is decommitted (EC practice),
so the grant's commitment ends equal to what it keeps (paid − recovered, once the balance is paid).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from services.common.values.money import round_money

from ._values import ZERO, money, ratio


class ClosureKind(str, Enum):
    FINAL_PAYMENT = "final_payment"
    RECOVERY = "recovery"


@dataclass(frozen=True)
class Closure:
    kind: ClosureKind
    final_payment: Decimal
    recovery_amount: Decimal
    eligible_amount: Decimal = ZERO  # the final amount: min(award, share × accepted expenditure)
    decommitted: Decimal = ZERO  # award − final amount: given back to the window and the programme


def committed_amount(award, decommitted, declined: bool = False) -> Decimal:
    """What a grant commits: its award (as amended) less what closure decommitted; nothing once declined."""
    return ZERO if declined else money(award, "award") - money(decommitted or ZERO, "decommitted")


def eligible_ec_amount(award, accepted_expenditure, ec_share) -> Decimal:
    award = money(award, "award")
    expenditure = money(accepted_expenditure, "accepted_expenditure")
    return min(award, round_money(expenditure * ratio(ec_share, "ec_share")))


def close_grant(award, paid_total, accepted_expenditure, ec_share) -> Closure:
    eligible = eligible_ec_amount(award, accepted_expenditure, ec_share)
    paid = money(paid_total, "paid_total")
    unused = money(award, "award") - eligible
    if paid > eligible:
        return Closure(ClosureKind.RECOVERY, ZERO, paid - eligible, eligible, unused)
    return Closure(ClosureKind.FINAL_PAYMENT, eligible - paid, ZERO, eligible, unused)
