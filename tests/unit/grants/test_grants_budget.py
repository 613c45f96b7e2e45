from decimal import Decimal as D

import pytest

from services.common.values.errors import Conflict, InvalidInput
from services.grants.domain import (
    RankedProposal,
    Ranking,
    RankingList,
    ReservePlaces,
    WindowBudget,
    check_award,
    next_from_reserve,
    reserve_places,
)

from grants_helpers import LIMITS, budgets, proposal


def rule_of(call):
    with pytest.raises(Conflict) as err:
        call()
    return err.value.rule


def test_a_ranked_proposal_within_every_limit_may_be_awarded():
    window, programme = budgets()
    check_award(proposal(), D("200000.00"), LIMITS, window, programme)


@pytest.mark.parametrize("amount", ["50000.00", "200000.00"])
def test_call_bounds_are_inclusive(amount):
    window, programme = budgets()
    check_award(proposal(), D(amount), LIMITS, window, programme)


@pytest.mark.parametrize("amount,rule", [("49999.99", "award.below_min"), ("200000.01", "award.above_max")])
def test_call_bounds(amount, rule):
    window, programme = budgets()
    assert (
        rule_of(lambda: check_award(proposal(ec_amount_requested=D("250000.00")), D(amount), LIMITS, window, programme))
        == rule
    )


def test_not_more_than_requested():
    window, programme = budgets()
    p = proposal(ec_amount_requested=D("120000.00"))
    check_award(p, D("120000.00"), LIMITS, window, programme)
    assert rule_of(lambda: check_award(p, D("120000.01"), LIMITS, window, programme)) == "award.above_requested"


@pytest.mark.parametrize(
    "overrides",
    [
        {"ranking": None, "rank": None, "score": None},  # not in a published ranking
        {"score": D("59.99")},  # under the threshold
        {"withdrawn": True},
    ],
)
def test_only_ranked_proposals_over_the_threshold(overrides):
    window, programme = budgets()
    assert (
        rule_of(lambda: check_award(proposal(**overrides), D("100000.00"), LIMITS, window, programme))
        == "award.not_ranked"
    )


def test_exactly_at_threshold_and_on_the_reserve_list_is_ranked():
    window, programme = budgets()
    check_award(
        proposal(score=D("60"), ranking=RankingList.RESERVE),
        D("100000.00"),
        LIMITS,
        window,
        programme,
        ReservePlaces(declined=1, from_reserve=0, next_in_line="p-1"),
    )


@pytest.mark.parametrize(
    "overrides,rule",
    [
        ({"rejected": True}, "award.proposal_rejected"),
        ({"excluded": True}, "award.excluded"),
    ],
)
def test_rejected_or_excluded_proposals_are_not_awarded(overrides, rule):
    window, programme = budgets()
    assert rule_of(lambda: check_award(proposal(**overrides), D("100000.00"), LIMITS, window, programme)) == rule


@pytest.mark.parametrize(
    "places,rule",
    [
        (None, "award.reserve_not_open"),  # nothing declined
        (ReservePlaces(declined=1, from_reserve=1, next_in_line="p-1"), "award.reserve_not_open"),  # place taken
        (ReservePlaces(declined=1, from_reserve=0, next_in_line="p-0"), "award.reserve_out_of_order"),
    ],
)
def test_a_reserve_proposal_only_in_place_of_a_declined_grant_and_in_rank_order(places, rule):
    window, programme = budgets()
    reserve = proposal(ranking=RankingList.RESERVE)
    assert rule_of(lambda: check_award(reserve, D("100000.00"), LIMITS, window, programme, places)) == rule
    # a main-list proposal needs no reserve place
    check_award(proposal(), D("100000.00"), LIMITS, window, programme, None)


def test_window_allocation_to_the_cent():
    window, programme = budgets(window_remaining="100000.00")
    check_award(proposal(), D("100000.00"), LIMITS, window, programme)
    assert (
        rule_of(lambda: check_award(proposal(), D("100000.01"), LIMITS, window, programme))
        == "award.window_allocation_exceeded"
    )


def test_programme_contribution():
    window, programme = budgets(programme_remaining="99999.99")
    assert (
        rule_of(lambda: check_award(proposal(), D("100000.00"), LIMITS, window, programme))
        == "award.programme_contribution_exceeded"
    )


def test_already_awarded_comes_first_and_details_list_every_violation():
    window, programme = budgets(window_remaining="10.00")
    with pytest.raises(Conflict) as err:
        check_award(proposal(grant_id="g-1"), D("300000.00"), LIMITS, window, programme)
    assert err.value.rule == "award.already_awarded"
    rules = [d["rule"] for d in err.value.details]
    assert rules == [
        "award.already_awarded",
        "award.above_max",
        "award.above_requested",
        "award.window_allocation_exceeded",
    ]


def test_amount_must_be_money_and_window_must_match():
    window, programme = budgets()
    with pytest.raises(InvalidInput):
        check_award(proposal(), 100000.0, LIMITS, window, programme)
    with pytest.raises(InvalidInput):
        check_award(proposal(), D("100000.00"), LIMITS, WindowBudget("migrants_rights", D("1")), programme)


def test_window_commit_and_release():
    window = WindowBudget("remittances", D("3750000.00"))
    window.commit(D("200000.00"))
    assert window.remaining == D("3550000.00")
    window.release(D("200000.00"))
    assert window.committed == D("0.00")
    with pytest.raises(Conflict) as err:
        window.commit(D("3750000.01"))
    assert err.value.rule == "award.window_allocation_exceeded"
    with pytest.raises(InvalidInput):
        window.release(D("0.01"))


def _ranking():
    entry = lambda pid, rank, score: RankedProposal(pid, pid.upper(), rank, D(score), "MA", D("100000.00"))
    return Ranking(
        "call-1",
        "remittances",
        D("60"),
        main=(entry("a", 1, "90"), entry("b", 2, "80")),
        reserve=(entry("r2", 4, "65"), entry("r1", 3, "70")),
    )


def test_next_from_reserve_in_rank_order_skipping_taken():
    ranking = _ranking()
    assert next_from_reserve(ranking, {"a", "b"}).proposal_id == "r1"
    assert next_from_reserve(ranking, {"a", "b", "r1"}).proposal_id == "r2"
    assert next_from_reserve(ranking, {"r1", "r2"}) is None


def test_placing_a_proposal_from_a_ranking():
    p = proposal(ranking=None, rank=None, score=None, proposal_id="r1")
    p.place(_ranking())
    assert (p.ranking, p.rank, p.score) == (RankingList.RESERVE, 3, D("70"))
    p = proposal(proposal_id="zzz")
    p.place(_ranking())
    assert p.ranking is None


def test_reserve_places_open_one_per_declined_grant_in_rank_order():
    ranking = _ranking()
    assert reserve_places(ranking, {"a": "awarded", "b": "contracted"}) == ReservePlaces(0, 0, "r1")
    assert reserve_places(ranking, {"a": "declined", "b": "awarded"}) == ReservePlaces(1, 0, "r1")
    # r1 taken the place; then declines too: r2 is next
    assert reserve_places(ranking, {"a": "declined", "r1": "awarded"}) == ReservePlaces(1, 1, "r2")
    assert reserve_places(ranking, {"a": "declined", "r1": "declined"}).open
    # a rejected (or withdrawn, excluded) reserve proposal is skipped
    assert reserve_places(ranking, {"a": "declined"}, {"r1"}).next_in_line == "r2"
    # grants outside this ranking do not open its reserve list
    assert not reserve_places(ranking, {"elsewhere": "declined"}).open
