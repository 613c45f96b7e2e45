from datetime import date
from decimal import Decimal as D

import pytest

from services.common.values.errors import Conflict, InvalidInput, NotFound
from services.grants.domain import (
    PaymentRequest,
    PaymentState,
    PaymentStatus,
    approve,
    check_payment,
    compute_schedule,
    mark_paid,
    next_payment_amount,
)

from grants_helpers import at

SCHEDULE = tuple(
    compute_schedule("ec_prag", D("200000.00"), 36, [D("70000.00"), D("70000.00"), D("60000.00")], date(2009, 3, 1))
)


# --- the 70% rule -------------------------------------------------------------------------------------------
def test_finance_officer_example_60_percent_spent():
    """56,000 paid, 60% (33,600) spent: the next 56,000 is reduced by the 22,400 unspent -> 33,600."""
    assert next_payment_amount(D("56000.00"), D("56000.00"), D("33600.00")) == D("33600.00")


def test_exactly_70_percent_spent_is_not_reduced():
    assert next_payment_amount(D("56000.00"), D("56000.00"), D("39200.00")) == D("56000.00")


def test_69_99_percent_spent_is_reduced_by_the_unspent_amount():
    spent = D("39194.40")  # 69.99% of 56,000.00
    assert next_payment_amount(D("56000.00"), D("56000.00"), spent) == D("56000.00") - (D("56000.00") - spent)
    assert next_payment_amount(D("56000.00"), D("56000.00"), spent) == D("39194.40")


def test_one_cent_under_70_percent():
    assert next_payment_amount(D("10000.00"), D("10000.00"), D("6999.99")) == D("6999.99")


def test_never_negative_and_never_above_remaining():
    assert next_payment_amount(D("10000.00"), D("56000.00"), D("0.00")) == D("0.00")
    assert next_payment_amount(D("56000.00"), D("56000.00"), D("50000.00"), remaining_award=D("12345.67")) == D(
        "12345.67"
    )


def test_spending_more_than_the_previous_payment_is_not_a_bonus():
    assert next_payment_amount(D("48000.00"), D("56000.00"), D("90000.00")) == D("48000.00")


def test_70_rule_refuses_floats():
    with pytest.raises(InvalidInput):
        next_payment_amount(56000.0, D("56000.00"), D("1.00"))


# --- requests and four eyes ---------------------------------------------------------------------------------
def _request(**kw):
    values = dict(
        key="k-1",
        grant="g-1",
        tranche_number=1,
        amount=D("56000.00"),
        requested_by="officer@undp.org",
        requested_at=at(2009, 3, 10),
    )
    values.update(kw)
    return PaymentRequest(**values)


def test_four_eyes():
    with pytest.raises(Conflict) as err:
        approve(_request(), "Officer@UNDP.org", at(2009, 3, 11))
    assert err.value.rule == "payment.four_eyes"
    approved = approve(_request(), "approver@undp.org", at(2009, 3, 11))
    assert approved.status == PaymentStatus.APPROVED and approved.approved_by == "approver@undp.org"
    with pytest.raises(Conflict) as err:
        approve(approved, "other@undp.org", at(2009, 3, 11))
    assert err.value.rule == "payment.not_pending"


def test_paid_only_when_approved():
    with pytest.raises(Conflict):
        mark_paid(_request(), date(2009, 3, 12), "BANK-1")
    paid = mark_paid(approve(_request(), "approver", at(2009, 3, 11)), date(2009, 3, 12), "BANK-1")
    assert paid.status == PaymentStatus.PAID


def test_request_validation():
    with pytest.raises(InvalidInput):
        _request(amount=D("0.00"))
    with pytest.raises(InvalidInput):
        _request(key="")
    with pytest.raises(InvalidInput):
        _request(requested_at=at(2009, 1, 1).replace(tzinfo=None))


# --- check_payment ------------------------------------------------------------------------------------------
def state(**kw):
    values = dict(award=D("200000.00"), schedule=SCHEDULE, contract_signed=True, account_validated=True)
    values.update(kw)
    return PaymentState(**values)


def rule(st, number, amount):
    with pytest.raises(Conflict) as err:
        check_payment(st, number, D(amount))
    return err.value.rule


def test_first_tranche_at_signature():
    check_payment(state(), 1, D("56000.00"))


def test_contract_and_account_first():
    assert rule(state(contract_signed=False), 1, "56000.00") == "payment.contract_not_signed"
    assert rule(state(account_validated=False), 1, "56000.00") == "payment.no_validated_account"


def test_order_report_and_already_paid():
    assert rule(state(), 2, "56000.00") == "payment.out_of_order"
    assert rule(state(paid={1: D("56000.00")}), 2, "56000.00") == "payment.report_required"
    check_payment(state(paid={1: D("56000.00")}, accepted_reports=frozenset({"interim_report:1"})), 2, D("56000.00"))
    assert rule(state(paid={1: D("56000.00")}), 1, "56000.00") == "payment.already_paid"
    assert rule(state(pending=frozenset({1})), 1, "56000.00") == "payment.already_requested"
    with pytest.raises(NotFound):
        check_payment(state(), 9, D("1.00"))


def test_never_above_the_award_to_the_cent():
    paid = {1: D("56000.00"), 2: D("56000.00"), 3: D("48000.00")}
    st = state(paid=paid, accepted_reports=frozenset({"interim_report:1", "interim_report:2", "final_report"}))
    check_payment(st, 4, D("40000.00"))
    assert rule(st, 4, "40000.01") == "payment.exceeds_award"


def test_above_what_the_tranche_may_carry():
    st = state(payable={1: D("56000.00")})
    assert rule(st, 1, "56000.01") == "payment.above_tranche"


def test_the_award_ceiling_is_named_before_a_missing_report():
    """Over the award is never payable; a missing report only says "not yet": the refusal names the ceiling."""
    st = state(
        award=D("90000.00"),
        schedule=tuple(compute_schedule("ec_prag", D("90000.00"), 24, None, date(2009, 3, 1))),
        paid={1: D("72000.00")},
    )
    assert rule(st, 2, "18000.01") == "payment.exceeds_award"
    assert rule(st, 2, "18000.00") == "payment.report_required"


def test_four_eyes_compares_canonical_user_ids():
    """`Ｏｆｆｉｃｅｒ@undp.org` (full width) and `officer@undp.org ` are the person who requested."""
    for same in ("Ｏｆｆｉｃｅｒ@undp.org", "officer@undp.org ", "OFFICER@UNDP.ORG"):
        with pytest.raises(Conflict) as err:
            approve(_request(), same, at(2009, 3, 11))
        assert err.value.rule == "payment.four_eyes"
    assert approve(_request(), "approver@undp.org", at(2009, 3, 11)).approved_by == "approver@undp.org"
