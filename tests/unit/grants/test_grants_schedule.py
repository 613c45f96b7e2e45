from datetime import date
from decimal import Decimal as D

import pytest

from services.common.values.errors import InvalidInput, NotFound
from services.grants.domain import (
    PRAG,
    UNDP,
    SharePayments,
    TrancheKind,
    compute_schedule,
    fit_to_award,
    payment_profile,
    schedule_total,
)

START = date(2009, 3, 1)


def amounts(schedule):
    return [str(t.planned_amount) for t in schedule]


def test_finance_officer_example_prag_option2():
    """200,000.00 over 36 months, years 70k/70k/60k: 56,000 at signature, 56,000 and 48,000 after the
    interim reports, 40,000 balance after the final report."""
    schedule = compute_schedule("ec_prag", D("200000.00"), 36, [D("70000.00"), D("70000.00"), D("60000.00")], START)
    assert amounts(schedule) == ["56000.00", "56000.00", "48000.00", "40000.00"]
    assert [t.kind for t in schedule] == [
        TrancheKind.PRE_FINANCING,
        TrancheKind.FURTHER_PRE_FINANCING,
        TrancheKind.FURTHER_PRE_FINANCING,
        TrancheKind.BALANCE,
    ]
    assert [t.condition for t in schedule] == [None, "interim_report:1", "interim_report:2", "final_report"]
    assert schedule[0].due_date == date(2009, 3, 31)  # 30 days after signature
    assert schedule[1].due_date == date(2010, 6, 13)  # interim 1 due 2010-04-29 + 45 days
    assert schedule_total(schedule) == D("200000.00")


def test_option2_rounding_is_absorbed_by_the_balance():
    schedule = compute_schedule(PRAG, D("100000.03"), 18, [D("66666.69"), D("33333.34")], START)
    assert amounts(schedule) == ["53333.35", "26666.67", "20000.01"]
    assert schedule_total(schedule) == D("100000.03")


def test_option2_without_annual_budgets_is_pro_rata_to_months():
    schedule = compute_schedule(PRAG, D("150000.00"), 30, None, START)  # 12 + 12 + 6 months
    assert amounts(schedule) == ["48000.00", "48000.00", "24000.00", "30000.00"]
    assert schedule_total(schedule) == D("150000.00")


@pytest.mark.parametrize("amount,duration", [("200000.00", 12), ("100000.00", 36), ("100000.00", 12)])
def test_option1_at_the_edges(amount, duration):
    """Option 2 needs MORE than 12 months AND MORE than 100,000: exactly either is option 1 (80/20)."""
    schedule = compute_schedule(PRAG, D(amount), duration, None, START)
    assert [t.kind for t in schedule] == [TrancheKind.PRE_FINANCING, TrancheKind.BALANCE]
    assert schedule[0].planned_amount == D(amount) * D("0.80")
    assert schedule_total(schedule) == D(amount)


def test_just_over_the_edges_is_option2():
    assert len(compute_schedule(PRAG, D("100000.01"), 13, None, START)) == 3


def test_option1_rounding():
    schedule = compute_schedule(PRAG, D("50000.01"), 6, None, START)
    assert amounts(schedule) == ["40000.01", "10000.00"]


def test_undp_profile_is_40_40_20():
    schedule = compute_schedule("undp", D("200000.00"), 36, None, START)
    assert amounts(schedule) == ["80000.00", "80000.00", "40000.00"]
    assert [t.condition for t in schedule] == [None, "interim_report:1", "final_report"]


def test_undp_without_interim_report_pays_both_first_shares_at_signature():
    schedule = compute_schedule(UNDP, D("60000.00"), 12, None, START)
    assert amounts(schedule) == ["48000.00", "12000.00"]


def test_another_share_profile():
    equal = SharePayments(name="equal_thirds", shares=(D("0.34"), D("0.33"), D("0.33")))
    schedule = compute_schedule(equal, D("99999.99"), 24, None, START)
    assert schedule_total(schedule) == D("99999.99")
    with pytest.raises(InvalidInput):
        SharePayments(shares=(D("0.5"), D("0.4")))


def test_profile_choice_by_name_or_rule_profile():
    class RuleProfile:
        name = "undp"

    assert payment_profile(RuleProfile()) is UNDP
    assert payment_profile("ec_prag") is PRAG
    with pytest.raises(NotFound):
        payment_profile("world_bank")


@pytest.mark.parametrize("budgets", [[D("70000.00"), D("70000.00")], [D("70000.00"), D("70000.00"), D("59999.99")]])
def test_annual_budgets_must_match_periods_and_award(budgets):
    with pytest.raises(InvalidInput) as err:
        compute_schedule(PRAG, D("200000.00"), 36, budgets, START)
    assert "annual_budgets" in err.value.errors


def test_no_float_and_positive_award():
    with pytest.raises(InvalidInput):
        compute_schedule(PRAG, 200000.0, 36, None, START)
    with pytest.raises(InvalidInput):
        compute_schedule(PRAG, D("0.00"), 36, None, START)
    with pytest.raises(InvalidInput):
        compute_schedule(PRAG, D("100.00"), 0, None, START)


def test_fit_keeps_paid_amounts_and_never_exceeds_the_award():
    schedule = compute_schedule(PRAG, D("120000.00"), 36, None, START)  # 32,000 x 3 + 24,000
    fitted = fit_to_award(schedule, D("120000.00"), fixed={1: D("56000.00"), 2: D("56000.00")})
    assert amounts(fitted) == ["56000.00", "56000.00", "8000.00", "0.00"]
    assert schedule_total(fitted) == D("120000.00")
