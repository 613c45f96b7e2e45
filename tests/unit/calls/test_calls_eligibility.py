"""Each rule alone (one changed field -> exactly that violation), its edges, and all rules at once."""

from datetime import timedelta
from decimal import Decimal

import pytest

from calls_builders import BEFORE, DEADLINE, budget, lead, make_call, make_proposal, partner
from services.calls.domain import (
    ConsortiumRule,
    PartnerScope,
    Stage,
    check_eligibility,
    ec_share,
    ensure_eligible,
)
from services.common.values.errors import Conflict


def rules(call, programme, proposal, now=BEFORE):
    return [v.rule for v in check_eligibility(call, programme, proposal, now)]


def funded(ec: str, **budget_lines):
    """A proposal whose budget, declared total and co-financing agree, requesting `ec`."""
    b = budget(**budget_lines)
    return make_proposal(budget=b, ec_amount_requested=ec)


def big_budget(total_direct_lines: str):
    return dict(
        human_resources=total_direct_lines,
        travel="0.00",
        equipment_supplies="0.00",
        local_office="0.00",
        other_costs_services="0.00",
        other="0.00",
        contingency="0.00",
        indirect_costs="0.00",
    )


def test_valid_proposal_has_no_violations(open_call, programme):
    assert check_eligibility(open_call, programme, make_proposal(), BEFORE) == []
    ensure_eligible(open_call, programme, make_proposal(), BEFORE)


def test_call_not_open(call, programme):
    assert rules(call, programme, make_proposal()) == ["call.not_open"]


def test_deadline_edges(open_call, programme):
    assert rules(open_call, programme, make_proposal(), DEADLINE) == []
    assert rules(open_call, programme, make_proposal(), DEADLINE + timedelta(seconds=1)) == ["call.deadline_passed"]


def test_window_not_in_call(open_call, programme):
    violations = check_eligibility(open_call, programme, make_proposal(window="migrant_communities"), BEFORE)
    assert [(v.rule, v.field) for v in violations] == [("proposal.window_not_in_call", "window")]


def test_wrong_call(open_call, programme):
    assert rules(open_call, programme, make_proposal(call_id="CALL-OTHER")) == ["proposal.wrong_call"]


@pytest.mark.parametrize(
    "ec, expected",
    [
        ("50000.00", []),
        ("49999.99", ["proposal.amount_below_minimum"]),
        ("200000.00", []),
        ("200000.01", ["proposal.amount_above_maximum"]),
    ],
)
def test_grant_bounds(open_call, programme, ec, expected):
    # eligible costs of 250,000.00 keep the EC share under 90% for every amount tested
    assert rules(open_call, programme, funded(ec, **big_budget("250000.00"))) == expected


@pytest.mark.parametrize(
    "ec, expected",
    [
        ("90000.00", []),  # exactly 90% of 100,000.00
        ("90000.01", ["proposal.ec_share_above_cap"]),
    ],
)
def test_ec_share_cap(open_call, programme, ec, expected):
    p = funded(ec, **big_budget("100000.00"))
    assert rules(open_call, programme, p) == expected


def test_ec_share_undp_allows_full_funding(programme):
    from services.calls.domain import load_profile

    call = make_call(programme, load_profile("undp"))
    call.open(BEFORE - timedelta(days=30))
    p = funded("100000.00", **big_budget("100000.00"))
    assert rules(call, programme, p) == []
    assert ec_share(p) == Decimal("1")


def test_empty_budget(open_call, programme):
    p = make_proposal(budget=budget(**big_budget("0.00")), ec_amount_requested="0.00")
    assert "budget.empty" in rules(open_call, programme, p)
    assert ec_share(p) is None


@pytest.mark.parametrize(
    "contingency, expected",
    [
        ("5000.00", []),
        ("5000.01", ["budget.contingency_above_cap"]),
    ],
)
def test_contingency_cap_is_5_percent_of_line_7(open_call, programme, contingency, expected):
    # line 7 = 100,000.00; indirect 0 so only the contingency rule can fail
    b = budget(contingency=contingency, indirect_costs="0.00")
    p = make_proposal(budget=b, ec_amount_requested="80000.00")
    assert rules(open_call, programme, p) == expected


def test_contingency_cap_is_not_rounded_up(open_call, programme):
    # 5% of 100,000.01 is 5,000.0005: 5,000.01 is above it even though it rounds to the cap
    b = budget(other="5000.01", contingency="5000.01", indirect_costs="0.00")
    assert rules(open_call, programme, make_proposal(budget=b, ec_amount_requested="80000.00")) == [
        "budget.contingency_above_cap"
    ]


@pytest.mark.parametrize(
    "indirect, expected",
    [
        ("7350.00", []),  # 7% of line 9 = 105,000.00
        ("7350.01", ["budget.indirect_above_cap"]),
    ],
)
def test_indirect_cap_is_7_percent_of_line_9(open_call, programme, indirect, expected):
    p = make_proposal(budget=budget(indirect_costs=indirect), ec_amount_requested="80000.00")
    assert rules(open_call, programme, p) == expected


def test_declared_total_must_equal_line_11(open_call, programme):
    p = make_proposal(total_eligible_cost="112350.01")
    violations = check_eligibility(open_call, programme, p, BEFORE)
    assert [(v.rule, v.field) for v in violations] == [("budget.total_mismatch", "total_eligible_cost")]


def test_ec_plus_cofinancing_must_equal_total(open_call, programme):
    p = make_proposal(co_financing="22469.99")
    assert rules(open_call, programme, p) == ["budget.funding_mismatch"]


@pytest.mark.parametrize(
    "months, expected",
    [
        (6, []),
        (5, ["proposal.duration_too_short"]),
        (36, []),
        (37, ["proposal.duration_too_long"]),
    ],
)
def test_duration_bounds_from_profile(open_call, programme, months, expected):
    assert rules(open_call, programme, make_proposal(duration_months=months)) == expected


def test_no_duration_bounds_when_unset(programme, profile):
    call = make_call(programme, profile)
    call.min_duration_months = call.max_duration_months = None
    call.open(BEFORE - timedelta(days=1))
    assert rules(call, programme, make_proposal(duration_months=120)) == []


def test_target_country_not_eligible(open_call, programme):
    p = make_proposal(target_country="FR", applicants=(lead(), partner(country="FR")))
    assert rules(open_call, programme, p) == ["proposal.country_not_eligible"]


def test_applicant_type_not_eligible(open_call, programme):
    p = make_proposal(applicants=(lead(), partner(type="private_for_profit")))
    violations = check_eligibility(open_call, programme, p, BEFORE)
    assert [(v.rule, v.field) for v in violations] == [("applicant.type_not_eligible", "applicants.1.type")]


def test_consortium_needs_an_eu_partner(open_call, programme):
    p = make_proposal(applicants=(lead(country="SN"), partner()))
    assert rules(open_call, programme, p) == ["consortium.no_eu_partner"]


def test_consortium_needs_a_partner_in_the_target_country(open_call, programme):
    p = make_proposal(applicants=(lead(), partner(country="SN")))
    assert rules(open_call, programme, p) == ["consortium.no_target_country_partner"]


def test_consortium_scope_any_eligible_country(programme, profile):
    call = make_call(programme, profile, consortium=ConsortiumRule(partner_scope=PartnerScope.ANY_ELIGIBLE_COUNTRY))
    call.open(BEFORE - timedelta(days=1))
    assert rules(call, programme, make_proposal(applicants=(lead(), partner(country="SN")))) == []
    assert rules(call, programme, make_proposal(applicants=(lead(), partner(country="US")))) == [
        "consortium.no_target_country_partner"
    ]


def test_consortium_rules_can_be_switched_off(programme, profile):
    call = make_call(
        programme, profile, consortium=ConsortiumRule(require_eu_partner=False, require_target_country_partner=False)
    )
    call.open(BEFORE - timedelta(days=1))
    assert rules(call, programme, make_proposal(applicants=(lead(country="US"),))) == []


def test_exactly_one_lead_and_co_applicant_limit(programme, profile):
    call = make_call(programme, profile, consortium=ConsortiumRule(max_co_applicants=2))
    call.open(BEFORE - timedelta(days=1))
    assert rules(call, programme, make_proposal(applicants=(partner(), partner(country="FR")))) == [
        "consortium.one_lead"
    ]
    assert rules(call, programme, make_proposal(applicants=(lead(), lead(name="Two", country="MA")))) == [
        "consortium.one_lead"
    ]
    three = make_proposal(applicants=(lead(), partner(), partner(name="Third", country="SN")))
    assert rules(call, programme, three) == []
    four = make_proposal(applicants=(lead(), partner(), partner(name="Third"), partner(name="Fourth")))
    assert rules(call, programme, four) == ["consortium.too_many_co_applicants"]


def test_every_failed_rule_is_returned(call, programme):
    b = budget(contingency="9000.00", indirect_costs="9000.00")
    p = make_proposal(
        window="migrant_communities",
        target_country="BR",
        duration_months=48,
        budget=b,
        total_eligible_cost="1.00",
        ec_amount_requested="250000.00",
        co_financing="0.00",
        applicants=(lead(country="SN", type="private_for_profit"),),
    )
    found = rules(call, programme, p, DEADLINE + timedelta(days=1))
    assert found == [
        "call.not_open",
        "call.deadline_passed",
        "proposal.window_not_in_call",
        "proposal.amount_above_maximum",
        "proposal.ec_share_above_cap",
        "proposal.duration_too_long",
        "budget.contingency_above_cap",
        "budget.indirect_above_cap",
        "budget.total_mismatch",
        "budget.funding_mismatch",
        "proposal.country_not_eligible",
        "applicant.type_not_eligible",
        "consortium.no_eu_partner",
        "consortium.no_target_country_partner",
    ]
    with pytest.raises(Conflict) as exc:
        ensure_eligible(call, programme, p, DEADLINE + timedelta(days=1))
    assert exc.value.rule == "proposal.not_eligible" and len(exc.value.details) == len(found)
    assert exc.value.details[0] == {
        "rule": "call.not_open",
        "field": "call_id",
        "message": "call 'CALL-2008-1' is draft, not open",
    }


def test_the_logframe_is_checked_for_a_full_application_only(open_call, programme):
    from tests.support import flows

    without = make_proposal()
    assert check_eligibility(open_call, programme, without, BEFORE, Stage.CONCEPT_NOTE) == []
    missing = check_eligibility(open_call, programme, without, BEFORE, Stage.FULL_APPLICATION)
    assert [(v.rule, v.field) for v in missing] == [("logframe.missing", "logframe")]
    outputs_only = [r for r in flows.logframe() if r["type"] == "output"]
    assert [
        v.rule
        for v in check_eligibility(
            open_call, programme, make_proposal(logframe=outputs_only), BEFORE, Stage.FULL_APPLICATION
        )
    ] == ["logframe.no_outcome"]
    assert (
        check_eligibility(
            open_call, programme, make_proposal(logframe=flows.logframe()), BEFORE, Stage.FULL_APPLICATION
        )
        == []
    )
