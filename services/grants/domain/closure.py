"""Closing a grant: the final payment, or a recovery order when the consortium was paid more than its
accepted expenditure earns.

What the EC owes in the end = min(award, EC share × accepted expenditure), rounded to the cent. Paid less than
that: the balance is the final payment. Paid more: recovery = paid − that amount.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from services.common.money import round_money

from ._values import ZERO, money, ratio


class ClosureKind(str, Enum):
    FINAL_PAYMENT = "final_payment"
    RECOVERY = "recovery"


@dataclass(frozen=True)
class Closure:
    kind: ClosureKind
    final_payment: Decimal
    recovery_amount: Decimal
    eligible_amount: Decimal = ZERO   # the EC's final share: min(award, share × accepted expenditure)


def eligible_ec_amount(award, accepted_expenditure, ec_share) -> Decimal:
    award = money(award, "award")
    expenditure = money(accepted_expenditure, "accepted_expenditure")
    return min(award, round_money(expenditure * ratio(ec_share, "ec_share")))


def close_grant(award, paid_total, accepted_expenditure, ec_share) -> Closure:
    eligible = eligible_ec_amount(award, accepted_expenditure, ec_share)
    paid = money(paid_total, "paid_total")
    if paid > eligible:
        return Closure(ClosureKind.RECOVERY, ZERO, paid - eligible, eligible)
    return Closure(ClosureKind.FINAL_PAYMENT, eligible - paid, ZERO, eligible)
