"""Closure gives back what a grant will not use (decommitment), which a reserve proposal may then take; a payment
request awaiting approval can be cancelled by its requester or a finance approver, freeing its tranche."""

from datetime import date
from decimal import Decimal as D

import pytest

from services.common.values.errors import Conflict, InvalidInput, NotAllowed
from services.grants.domain import (
    Grant,
    Organisation,
    PaymentStatus,
    RankedProposal,
    Ranking,
    RankingList,
    ReservePlaces,
    WindowBudget,
    check_award,
    close_grant,
    reserve_places,
)

from grants_helpers import LIMITS, at, budgets, proposal, on_the_wire

OFFICER, OTHER_OFFICER, APPROVER = "omar.officer", "olga.officer", "farid.approver"
ORG = Organisation(
    "Association Migrations et Développement",
    "RC-1234",
    "MA",
    "MA64011519000001205000534921",
    "Jamal Lahlou",
    account_validated=True,
)


def contracted(amount="100000.00", window=None, programme=None, **kw):
    """12 months, 100,000 of a 250,000 budget (EC share 40%): 80,000 at signature, the balance after the final
    report."""
    if window is None:
        window, programme = budgets()
    grant, _ = Grant.award(
        kw.pop("grant_id", "g-1"),
        proposal(duration_months=12, **kw),
        D(amount),
        LIMITS,
        window,
        programme,
        decision_reference="SC-2009-07",
        decision_date=date(2009, 2, 1),
        awarded_at=at(2009, 2, 2),
    )
    grant.sign_contract(ORG, date(2009, 3, 1), at(2009, 2, 20))
    return grant, window, programme


def pay(grant, key, tranche, amount):
    grant.request_payment(key, tranche, D(amount), OFFICER, at(2009, 3, 5))
    grant.approve_payment(key, APPROVER, at(2009, 3, 6))
    grant.mark_paid(key, date(2009, 3, 7), f"BANK-{key}", today=date(2009, 3, 7))


def final_report(grant, total, on=at(2010, 3, 1)):
    grant.submit_report("rf", "final", 1, {"human_resources": str(D(total) - 1000), "travel": "1000.00"}, on)
    grant.accept_report("rf", at(2010, 3, 10))


# --- the final amount and the decommitment --------------------------------------------------------------------


def test_closure_decommits_the_award_above_the_final_amount_whichever_way_it_closes():
    paying = close_grant(D("200000.00"), D("160000.00"), D("225000.00"), D("0.80"))  # 180,000 owed
    assert (paying.final_payment, paying.eligible_amount, paying.decommitted) == (
        D("20000.00"),
        D("180000.00"),
        D("20000.00"),
    )
    recovering = close_grant(D("200000.00"), D("160000.00"), D("100000.00"), D("0.80"))  # 80,000 owed
    assert (recovering.recovery_amount, recovering.decommitted) == (D("80000.00"), D("120000.00"))
    spent_all = close_grant(D("200000.00"), D("200000.00"), D("400000.00"), D("0.80"))  # capped by the award
    assert (spent_all.eligible_amount, spent_all.decommitted) == (D("200000.00"), D("0.00"))
    rounded = close_grant(D("100000.00"), D("0.00"), D("0.01"), D("0.5"))  # 0.005 -> 0.01 owed
    assert rounded.decommitted == D("99999.99")


def test_an_underspent_grant_gives_the_rest_back_to_its_window_and_programme_at_once():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "80000.00")
    final_report(grant, "212500.00")  # x 40% = 85,000: 5,000 balance, 15,000 never used
    pay(grant, "k2", 2, "5000.00")
    assert window.committed == programme.committed == D("100000.00")
    closed, decommitted = on_the_wire(grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1"))
    assert closed.event_type == "grant_closed"
    assert decommitted == (
        "grant_decommitted",
        {
            "decommitment_id": "d-1",
            "grant_id": "g-1",
            "reference": "JMDI-2009-001",
            "amount_eur": "15000.00",
            "committed_before_eur": "100000.00",
            "committed_after_eur": "85000.00",
            "reason": "Closure: final amount 85000.00 (EC share 40.00% of accepted eligible costs 212500.00, capped by "
            "the award) below the award 100000.00; 15000.00 unspent decommitted",
            "decommitted_at": "2010-03-20T12:00:00+00:00",
        },
    )
    assert window.committed == programme.committed == D("85000.00") == grant.committed
    assert (grant.amount, grant.decommitted) == (D("100000.00"), D("15000.00"))  # the award stays as decided


def test_a_grant_that_earns_its_whole_award_decommits_nothing():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "80000.00")
    final_report(grant, "300000.00")  # x 40% = 120,000, capped at the 100,000 award
    pay(grant, "k2", 2, "20000.00")
    events = on_the_wire(grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1"))
    assert [e.event_type for e in events] == ["grant_closed"]
    assert window.committed == programme.committed == D("100000.00") and grant.decommitted == D("0.00")


def test_a_refused_closure_gives_nothing_back():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "80000.00")
    with pytest.raises(Conflict) as err:
        grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1")
    assert err.value.rule == "closure.final_report_required"
    final_report(grant, "212500.00")
    with pytest.raises(Conflict) as err:
        grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1")
    assert err.value.rule == "closure.final_payment_pending"
    with pytest.raises(InvalidInput):
        grant.close(
            at(2010, 3, 20),
            WindowBudget("migrants_rights", D("3750000.00"), D("100000.00")),
            programme,
            decommitment_id="d-1",
        )
    assert window.committed == programme.committed == D("100000.00") and grant.closure is None


# --- the reserve list reopened by released money -------------------------------------------------------------

RANKING = Ranking(
    "call-1",
    "remittances",
    D("60"),
    main=(RankedProposal("p-1", "R1", 1, D("82.5"), "MA", D("100000.00")),),
    reserve=(
        RankedProposal("p-2", "R2", 2, D("71"), "SN", D("60000.00")),
        RankedProposal("p-3", "R3", 3, D("65"), "TN", D("90000.00")),
    ),
)


def test_released_money_opens_the_reserve_list_for_as_much_as_it_released():
    assert not reserve_places(RANKING, {"p-1": "contracted"}).open
    places = reserve_places(RANKING, {"p-1": "closed"}, decommitted={"p-1": D("70000.00")})
    assert (places.open, places.places, places.released_available, places.next_in_line) == (
        True,
        False,
        D("70000.00"),
        "p-2",
    )
    assert places.admits(D("70000.00")) and not places.admits(D("70000.01"))
    # once p-2 took 60,000 of it, 10,000 is left: p-3's 50,000 is more than that
    after = reserve_places(
        RANKING, {"p-1": "closed", "p-2": "awarded"}, decommitted={"p-1": D("70000.00")}, reserve_awards=[D("60000.00")]
    )
    assert (after.released_available, after.next_in_line, after.admits(D("50000.00"))) == (D("10000.00"), "p-3", False)
    # money released by grants outside this ranking does not open it
    assert not reserve_places(RANKING, {"p-1": "closed"}, decommitted={"p-other": D("70000.00")}).open


def test_a_declined_place_is_filled_first_then_released_money_counts():
    places = reserve_places(
        RANKING, {"p-1": "declined", "p-2": "awarded"}, decommitted={}, reserve_awards=[D("60000.00")]
    )
    assert not places.open  # p-2 took the declined grant's place
    places = reserve_places(
        RANKING, {"p-1": "declined", "p-2": "closed"}, decommitted={"p-2": D("5000.00")}, reserve_awards=[D("60000.00")]
    )
    assert (places.places, places.released_available) == (False, D("5000.00"))


def test_a_reserve_proposal_is_awarded_with_released_money_without_overspending_the_window():
    # a window of exactly one main grant: nothing is left for the reserve until the grant closes underspent
    window, programme = WindowBudget("remittances", D("100000.00")), budgets()[1]
    grant, window, programme = contracted(window=window, programme=programme, proposal_id="p-1")
    reserve_proposal = proposal(
        proposal_id="p-2",
        reference="R2",
        ec_amount_requested=D("60000.00"),
        ranking=RankingList.RESERVE,
        rank=2,
        score=D("71"),
    )
    with pytest.raises(Conflict) as err:
        check_award(reserve_proposal, D("60000.00"), LIMITS, window, programme, reserve_places(RANKING, {"p-1": "x"}))
    assert err.value.rule == "award.reserve_not_open"
    pay(grant, "k1", 1, "80000.00")
    final_report(grant, "100000.00")  # x 40% = 40,000 earned of 80,000 paid: recovery, 60,000 released
    grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1")
    assert window.remaining == D("60000.00")
    places = reserve_places(RANKING, {"p-1": "closed"}, decommitted={"p-1": grant.decommitted})
    with pytest.raises(Conflict) as err:  # the committee may not award more than was given back
        check_award(reserve_proposal, D("60000.01"), LIMITS, window, programme, places)
    assert err.value.rule in ("award.above_requested", "award.above_released")
    reserve_grant, _ = Grant.award(
        "g-2",
        reserve_proposal,
        D("60000.00"),
        LIMITS,
        window,
        programme,
        reserve=places,
        decision_reference="SC-2010-04",
        decision_date=date(2010, 4, 1),
        awarded_at=at(2010, 4, 1),
    )
    assert window.committed == window.allocation == D("100000.00")
    assert programme.committed == grant.committed + reserve_grant.committed == D("100000.00")


def test_released_money_never_lets_an_award_exceed_what_the_window_has_left():
    window = WindowBudget("remittances", D("3750000.00"), D("3700000.00"))  # 50,000 left
    reserve_proposal = proposal(
        proposal_id="p-3",
        reference="R3",
        ec_amount_requested=D("90000.00"),
        ranking=RankingList.RESERVE,
        rank=3,
        score=D("65"),
    )
    places = ReservePlaces(released=D("90000.00"), next_in_line="p-3")
    with pytest.raises(Conflict) as err:
        check_award(reserve_proposal, D("90000.00"), LIMITS, window, budgets()[1], places)
    assert err.value.rule == "award.window_allocation_exceeded"


# --- cancelling a payment request ------------------------------------------------------------------------------


def requested(key="k1"):
    grant, window, programme = contracted()
    on_the_wire(grant.request_payment(key, 1, D("80000.00"), OFFICER, at(2009, 3, 5)))
    return grant


def test_the_requester_cancels_a_pending_request_with_a_reason_and_the_tranche_is_free_again():
    grant = requested()
    (cancelled,) = on_the_wire(
        grant.cancel_payment(
            "k1", OFFICER, "wrong amount: the contract says 78,000", at(2009, 3, 6), finance_approver=False
        )
    )
    assert cancelled == (
        "payment_cancelled",
        {
            "payment_id": "k1",
            "grant_id": "g-1",
            "reference": "JMDI-2009-001",
            "tranche_number": 1,
            "amount_eur": "80000.00",
            "requested_by": OFFICER,
            "cancelled_by": OFFICER,
            "reason": "wrong amount: the contract says 78,000",
            "cancelled_at": "2009-03-06T12:00:00+00:00",
        },
    )
    assert grant.payments["k1"].status == PaymentStatus.CANCELLED
    assert 1 not in grant.payment_state().pending
    assert len(grant.request_payment("k1-again", 1, D("78000.00"), OFFICER, at(2009, 3, 7))) == 1


def test_a_finance_approver_may_cancel_anyone_s_request_another_officer_may_not():
    grant = requested()
    with pytest.raises(NotAllowed):
        grant.cancel_payment("k1", OTHER_OFFICER, "not mine", at(2009, 3, 6), finance_approver=False)
    assert grant.payments["k1"].status == PaymentStatus.REQUESTED
    on_the_wire(
        grant.cancel_payment(
            "k1", APPROVER, "duplicate of the bank's manual transfer", at(2009, 3, 6), finance_approver=True
        )
    )
    assert grant.payments["k1"].cancelled_by == APPROVER


def test_only_a_request_awaiting_approval_can_be_cancelled_and_a_reason_is_required():
    grant = requested()
    with pytest.raises(InvalidInput) as err:
        grant.cancel_payment("k1", OFFICER, "  ", at(2009, 3, 6), finance_approver=False)
    assert "reason" in err.value.errors
    grant.approve_payment("k1", APPROVER, at(2009, 3, 6))
    grant.mark_paid("k1", date(2009, 3, 7), "BANK-1", today=date(2009, 3, 7))
    with pytest.raises(Conflict) as err:
        grant.cancel_payment("k1", APPROVER, "too late", at(2009, 3, 8), finance_approver=True)
    assert err.value.rule == "payment.not_pending"
    other = requested("k9")
    other.cancel_payment("k9", OFFICER, "typo", at(2009, 3, 6), finance_approver=False)
    for attempt in (
        lambda: other.cancel_payment("k9", APPROVER, "again", at(2009, 3, 7), finance_approver=True),
        lambda: other.approve_payment("k9", APPROVER, at(2009, 3, 7)),
    ):
        with pytest.raises(Conflict) as err:
            attempt()
        assert err.value.rule == "payment.not_pending"


def test_a_cancelled_request_keeps_its_key():
    grant = requested()
    grant.cancel_payment("k1", OFFICER, "typo", at(2009, 3, 6), finance_approver=False)
    assert grant.request_payment("k1", 1, D("80000.00"), OFFICER, at(2009, 3, 5)) == []  # the same request
    assert grant.payments["k1"].status == PaymentStatus.CANCELLED
    with pytest.raises(Conflict) as err:
        grant.request_payment("k1", 1, D("78000.00"), OFFICER, at(2009, 3, 7))
    assert err.value.rule == "payment.key_reused"


def test_a_cancelled_request_does_not_hold_up_closure():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "80000.00")
    final_report(grant, "250000.00")  # x 40% = 100,000: balance 20,000
    grant.request_payment("k2", 2, D("20000.00"), OFFICER, at(2010, 3, 11))
    with pytest.raises(Conflict) as err:
        grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1")
    assert err.value.rule == "closure.payment_pending"
    grant.cancel_payment("k2", OFFICER, "wrong bank reference", at(2010, 3, 12), finance_approver=False)
    pay(grant, "k2b", 2, "20000.00")
    assert [e.event_type for e in grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1")] == [
        "grant_closed"
    ]
