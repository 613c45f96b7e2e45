from decimal import Decimal as D

import pytest

from services.common.values.annex import PRAG_CAPS, BudgetCaps, cap_breaches
from services.common.values.errors import Conflict, InvalidInput
from services.grants.domain import (
    Amendment,
    ClosureKind,
    check_amendment_amount,
    check_caps,
    check_reallocation,
    close_grant,
)

from grants_helpers import BUDGET_250K, LIMITS, budgets


def moved(**changes):
    new = dict(BUDGET_250K)
    for heading, delta in changes.items():
        new[heading] = new[heading] + D(delta)
    return new


# --- reallocation: |change| <= 15% of each heading's original amount, total unchanged ---------------------------
def test_exactly_15_percent_is_allowed():
    rows = check_reallocation(
        BUDGET_250K, moved(travel="-4500.00", human_resources="4500.00"), PRAG_CAPS
    )  # 15% of 30,000
    assert {r["heading"]: r["change"] for r in rows}["travel"] == "-4500.00"


def test_one_cent_over_15_percent_needs_an_amendment():
    with pytest.raises(Conflict) as err:
        check_reallocation(BUDGET_250K, moved(travel="-4500.01", human_resources="4500.01"), PRAG_CAPS)
    assert err.value.rule == "reallocation.amendment_required"
    assert [d["heading"] for d in err.value.details] == ["travel"]
    assert err.value.details[0]["allowed"] == "4500.00"


def test_a_heading_budgeted_at_zero_cannot_receive_without_amendment():
    budget = dict(BUDGET_250K, other=D("0.00"), human_resources=D("124000.00"))
    with pytest.raises(Conflict) as err:
        check_reallocation(budget, dict(budget, other=D("100.00"), human_resources=D("123900.00")), PRAG_CAPS)
    assert [d["heading"] for d in err.value.details] == ["other"]


def test_changing_the_total_is_not_a_reallocation():
    with pytest.raises(Conflict) as err:
        check_reallocation(BUDGET_250K, moved(travel="100.00"), PRAG_CAPS)
    assert err.value.details[-1]["heading"] == "total"


def test_caps_still_hold_after_a_reallocation():
    with pytest.raises(Conflict) as err:  # contingency 11,200 > 5% of the direct subtotal 222,800 (11,140)
        check_reallocation(BUDGET_250K, moved(contingency="1200.00", travel="-1200.00"), PRAG_CAPS)
    assert err.value.rule == "budget.contingency_cap"
    assert err.value.details == [{"heading": "contingency", "amount": "11200.00", "limit": "11140.00"}]


def test_the_caps_are_the_calls_a_profile_with_a_higher_contingency_cap_allows_the_same_move():
    generous = BudgetCaps(contingency=D("0.10"), indirect=D("0.07"))
    rows = check_reallocation(BUDGET_250K, moved(contingency="1200.00", travel="-1200.00"), generous)
    assert {r["heading"]: r["new"] for r in rows}["contingency"] == "11200.00"


def test_the_caps_compare_exactly_as_calls_does_at_submission():
    """5% of a direct subtotal of 100,000.10 is 5,000.005: 5,000.01 is above it, though it rounds to 5,000.01."""
    direct = dict.fromkeys(("travel", "equipment_supplies", "local_office", "other_costs_services", "other"), D("0.00"))
    budget = {**direct, "human_resources": D("100000.10"), "contingency": D("5000.01"), "indirect_costs": D("0.00")}
    with pytest.raises(Conflict) as err:
        check_caps(budget, PRAG_CAPS)
    assert err.value.details == [{"heading": "contingency", "amount": "5000.01", "limit": "5000.005"}]
    check_caps(dict(budget, contingency=D("5000.00")), PRAG_CAPS)
    # the same rule, the same figures, at submission (calls' eligibility): refused there too
    assert cap_breaches(D("100000.10"), D("105000.11"), D("5000.01"), D("0.00"), PRAG_CAPS) == [
        ("contingency", D("5000.01"), D("5000.0050"))
    ]


# --- amendments ----------------------------------------------------------------------------------------------
def test_amendment_needs_its_field():
    with pytest.raises(InvalidInput):
        Amendment("a-1", "amount")
    with pytest.raises(InvalidInput):
        Amendment("a-1", "duration", new_duration_months=0)
    with pytest.raises(ValueError):
        Amendment("a-1", "colour")


def test_amount_amendment_limits():
    window, programme = budgets(window_remaining="10000.00")
    check_amendment_amount(D("150000.00"), D("160000.00"), D("0.00"), LIMITS, window, programme)
    with pytest.raises(Conflict) as err:
        check_amendment_amount(D("150000.00"), D("200000.01"), D("0.00"), LIMITS, window, programme)
    assert err.value.rule == "amendment.above_call_max"
    with pytest.raises(Conflict) as err:
        check_amendment_amount(D("150000.00"), D("160000.01"), D("0.00"), LIMITS, window, programme)
    assert err.value.rule == "amendment.window_allocation_exceeded"
    window, programme = budgets(programme_remaining="5.00")
    with pytest.raises(Conflict) as err:
        check_amendment_amount(D("150000.00"), D("150005.01"), D("0.00"), LIMITS, window, programme)
    assert err.value.rule == "amendment.programme_contribution_exceeded"
    with pytest.raises(Conflict) as err:
        check_amendment_amount(D("150000.00"), D("100000.00"), D("112000.00"), LIMITS, window, programme)
    assert err.value.rule == "amendment.below_paid"


# --- closure ---------------------------------------------------------------------------------------------------
def test_final_payment_when_expenditure_earns_more_than_paid():
    closure = close_grant(D("200000.00"), D("160000.00"), D("250000.00"), D("0.80"))
    assert (closure.kind, closure.final_payment, closure.recovery_amount) == (
        ClosureKind.FINAL_PAYMENT,
        D("40000.00"),
        D("0.00"),
    )


def test_final_payment_never_above_the_award():
    closure = close_grant(D("200000.00"), D("160000.00"), D("400000.00"), D("0.80"))
    assert closure.final_payment == D("40000.00")


def test_recovery_when_accepted_expenditure_times_share_is_below_paid():
    """Paid 160,000; accepted 180,000 at 80% = 144,000 eligible: recover 16,000."""
    closure = close_grant(D("200000.00"), D("160000.00"), D("180000.00"), D("0.80"))
    assert (closure.kind, closure.final_payment, closure.recovery_amount) == (
        ClosureKind.RECOVERY,
        D("0.00"),
        D("16000.00"),
    )


def test_exactly_earned_is_a_zero_final_payment_and_rounding_half_up():
    assert close_grant(D("200000.00"), D("144000.00"), D("180000.00"), D("0.80")).final_payment == D("0.00")
    closure = close_grant(D("100000.00"), D("0.00"), D("0.01"), D("0.5"))  # 0.005 -> 0.01
    assert closure.final_payment == D("0.01")


def test_closure_refuses_floats():
    with pytest.raises(InvalidInput):
        close_grant(D("1.00"), D("0.00"), D("1.00"), 0.8)
