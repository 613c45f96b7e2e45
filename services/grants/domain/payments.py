"""Payments of tranches: the 70% rule, the order and conditions of tranches, and the four-eyes approval.

A finance officer requests a payment with a client idempotency key (asking twice with the same key is one
request); a finance approver — never the same person — approves it; the bank's confirmation marks it paid.
A request still awaiting approval may be cancelled, with a reason, by the person who made it or by a finance
approver (no second pair of eyes: cancelling moves no money). The cancelled request keeps its key, so the key
cannot name another request, and frees its tranche for a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from services.common.security.identity import require_second_person, same_person
from services.common.values.errors import Conflict, InvalidInput, NotAllowed, NotFound
from services.common.values.money import money_str

from ._values import ZERO, a_date, aware, money, text
from .schedule import Tranche

SPEND_THRESHOLD = Decimal("0.70")


def next_payment_amount(
    planned, previous_payment, spent_of_previous, remaining_award=None, threshold: Decimal = SPEND_THRESHOLD
) -> Decimal:
    """The 70% rule: if less than 70% of the previous payment was spent, the next tranche is reduced by the
    unspent amount (previous − spent). Never negative; never above the remaining award when it is given.

    Exactly 70% spent means no reduction (the rule is "less than").
    """
    planned = money(planned, "planned")
    previous = money(previous_payment, "previous_payment")
    spent = money(spent_of_previous, "spent_of_previous")
    amount = planned
    if spent < previous * threshold:
        amount = planned - (previous - spent)
    amount = max(amount, ZERO)
    if remaining_award is not None:
        amount = min(amount, max(money(remaining_award, "remaining_award"), ZERO))
    return amount


class PaymentStatus(str, Enum):
    REQUESTED = "requested"
    APPROVED = "approved"
    PAID = "paid"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PaymentRequest:
    key: str  # the client's idempotency key; also the payment_id on events
    grant: str
    tranche_number: int
    amount: Decimal
    requested_by: str
    requested_at: datetime
    status: PaymentStatus = PaymentStatus.REQUESTED
    approved_by: str | None = None
    approved_at: datetime | None = None
    value_date: date | None = None
    bank_reference: str | None = None
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "key", text(self.key, "key", 60))
        object.__setattr__(self, "requested_by", text(self.requested_by, "requested_by"))
        object.__setattr__(self, "amount", money(self.amount, "amount", positive=True))
        if isinstance(self.tranche_number, bool) or not isinstance(self.tranche_number, int) or self.tranche_number < 1:
            raise InvalidInput({"tranche_number": ["must be a tranche number (1, 2, ...)"]})
        aware(self.requested_at, "requested_at")

    @property
    def pending(self) -> bool:
        """Holds its tranche: neither paid nor cancelled."""
        return self.status in (PaymentStatus.REQUESTED, PaymentStatus.APPROVED)

    def same_request(self, other: "PaymentRequest") -> bool:
        """True when `other` repeats this request (same key and same content): the retry is a no-op."""
        return (self.key, self.grant, self.tranche_number, self.amount, self.requested_by) == (
            other.key,
            other.grant,
            other.tranche_number,
            other.amount,
            other.requested_by,
        )


def approve(request: PaymentRequest, approver: str, approved_at: datetime) -> PaymentRequest:
    """Four eyes: the approver is never the person who requested the payment."""
    approver = text(approver, "approver")
    if request.status != PaymentStatus.REQUESTED:
        raise Conflict("payment.not_pending", f"payment {request.key} is {request.status.value}, not requested")
    require_second_person(
        "payment.four_eyes",
        request.requested_by,
        approver,
        f"{approver} requested payment {request.key} and may not approve it",
        [{"requested_by": request.requested_by, "approver": approver}],
    )
    return replace(
        request, status=PaymentStatus.APPROVED, approved_by=approver, approved_at=aware(approved_at, "approved_at")
    )


def cancel(
    request: PaymentRequest, by: str, reason: str, cancelled_at: datetime, *, finance_approver: bool
) -> PaymentRequest:
    """Withdraw a request awaiting approval: its requester, or any finance approver, with a reason."""
    by = text(by, "cancelled_by")
    reason = text(reason, "reason", 2000)
    if request.status != PaymentStatus.REQUESTED:
        raise Conflict(
            "payment.not_pending",
            f"payment {request.key} is {request.status.value}: only a request awaiting approval can be cancelled",
        )
    if not finance_approver and not same_person(by, request.requested_by):
        raise NotAllowed(
            f"{by} did not request payment {request.key}: only its requester "
            f"({request.requested_by}) or a finance approver may cancel it"
        )
    return replace(
        request,
        status=PaymentStatus.CANCELLED,
        cancelled_by=by,
        cancelled_at=aware(cancelled_at, "cancelled_at"),
        cancel_reason=reason,
    )


def mark_paid(request: PaymentRequest, value_date: date, bank_reference: str) -> PaymentRequest:
    if request.status != PaymentStatus.APPROVED:
        raise Conflict("payment.not_approved", f"payment {request.key} is {request.status.value}, not approved")
    return replace(
        request,
        status=PaymentStatus.PAID,
        value_date=a_date(value_date, "value_date"),
        bank_reference=text(bank_reference, "bank_reference", 100),
    )


@dataclass(frozen=True)
class PaymentState:
    """What check_payment needs to know about a grant (Grant.payment_state() builds it).

    `paid` maps tranche number -> amount paid; `pending` the tranche numbers with a request not yet paid;
    `accepted_reports` the accepted report conditions ('interim_report:1', 'final_report'); `payable` the
    amount each tranche may carry now (after the 70% rule), when known.
    """

    award: Decimal
    schedule: tuple[Tranche, ...]
    paid: dict = field(default_factory=dict)
    pending: frozenset = frozenset()
    accepted_reports: frozenset = frozenset()
    contract_signed: bool = False
    account_validated: bool = False
    payable: dict = field(default_factory=dict)

    @property
    def paid_total(self) -> Decimal:
        return sum(self.paid.values(), ZERO)


def check_payment(grant_state: PaymentState, tranche_number: int, amount, *, ignore_pending: bool = False) -> None:
    """Refuse a payment the contract does not allow; the first rule broken names the Conflict."""
    amount = money(amount, "amount", positive=True)
    state = grant_state
    if not state.contract_signed:
        raise Conflict("payment.contract_not_signed", "no payment before the contract is signed")
    if not state.account_validated:
        raise Conflict("payment.no_validated_account", "the organisation has no validated bank account")
    tranche = next((t for t in state.schedule if t.number == tranche_number), None)
    if tranche is None:
        raise NotFound("tranche", tranche_number)
    if tranche_number in state.paid:
        raise Conflict(
            "payment.already_paid",
            f"tranche {tranche_number} is already paid",
            [{"tranche_number": tranche_number, "paid": money_str(state.paid[tranche_number])}],
        )
    if tranche_number in state.pending and not ignore_pending:
        raise Conflict("payment.already_requested", f"tranche {tranche_number} already has a payment request")
    # the award is the absolute ceiling: named before the rules that only say "not yet"
    if state.paid_total + amount > state.award:
        raise Conflict(
            "payment.exceeds_award",
            f"{money_str(state.paid_total)} paid + {money_str(amount)} is above the award {money_str(state.award)}",
            [{"paid": money_str(state.paid_total), "amount": money_str(amount), "award": money_str(state.award)}],
        )
    unpaid_before = [t.number for t in state.schedule if t.number < tranche_number and t.number not in state.paid]
    if unpaid_before:
        raise Conflict(
            "payment.out_of_order",
            f"tranche {tranche_number} cannot be paid before tranche(s) {', '.join(map(str, unpaid_before))}",
            [{"unpaid_tranches": unpaid_before}],
        )
    if tranche.condition is not None and tranche.condition not in state.accepted_reports:
        raise Conflict(
            "payment.report_required",
            f"tranche {tranche_number} needs the {tranche.condition} accepted first",
            [{"condition": tranche.condition}],
        )
    payable = state.payable.get(tranche_number)
    if payable is not None and amount > payable:
        raise Conflict(
            "payment.above_tranche",
            f"{money_str(amount)} is above the {money_str(payable)} tranche {tranche_number} may carry",
            [{"amount": money_str(amount), "payable": money_str(payable)}],
        )
