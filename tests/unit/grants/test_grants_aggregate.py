"""The Grant aggregate through its life, with every event checked against the event contracts."""

from datetime import date
from decimal import Decimal as D

import pytest

from services.common.values.errors import Conflict, InvalidInput
from services.grants.domain import (
    Amendment,
    Grant,
    GrantStatus,
    Organisation,
    RankedProposal,
    Ranking,
    decline,
    next_from_reserve,
    reject_proposal,
)

from grants_helpers import BUDGET_250K, LIMITS, at, budgets, proposal, on_the_wire

OFFICER, APPROVER = "officer@undp.org", "approver@undp.org"
ORG = Organisation(
    "Association Migrations et Développement",
    "RC-1234",
    "MA",
    "MA64011519000001205000534921",
    "Jamal Lahlou",
    account_validated=True,
)
YEARS = [D("70000.00"), D("70000.00"), D("60000.00")]


def awarded(amount="200000.00", **kw):
    window, programme = budgets()
    p = proposal(**kw)
    grant, events = Grant.award(
        "g-1",
        p,
        D(amount),
        LIMITS,
        window,
        programme,
        decision_reference="SC-2009-07",
        decision_date=date(2009, 2, 1),
        awarded_at=at(2009, 2, 2),
    )
    return grant, events, window, programme, p


def contracted(amount="200000.00", duration=36, years=YEARS, org=ORG):
    grant, _, window, programme, p = awarded(amount, duration_months=duration)
    on_the_wire(grant.sign_contract(org, date(2009, 3, 1), at(2009, 2, 20), years))
    return grant, window, programme


def pay(grant, key, tranche, amount):
    on_the_wire(grant.request_payment(key, tranche, D(amount), OFFICER, at(2009, 3, 5)))
    assert grant.approve_payment(key, APPROVER, at(2009, 3, 6)) == []
    return on_the_wire(grant.mark_paid(key, date(2009, 3, 7), f"BANK-{key}", today=date(2009, 3, 7)))


def expenditure(total):
    """Spread a total over two headings."""
    total = D(total)
    return {"human_resources": str(total - D("1000.00")), "travel": "1000.00"}


def test_award_commits_and_emits_grant_awarded():
    grant, events, window, programme, p = awarded()
    (event,) = on_the_wire(events)
    assert event.event_type == "grant_awarded"
    assert event.data["amount_eur"] == "200000.00" and event.data["decision_date"] == "2009-02-01"
    assert (grant.status, grant.ec_share) == (GrantStatus.AWARDED, D("0.8"))
    assert window.committed == D("200000.00") and programme.remaining == D("14800000.00")
    assert p.grant_id == "g-1"
    with pytest.raises(Conflict) as err:
        Grant.award(
            "g-2",
            p,
            D("100000.00"),
            LIMITS,
            window,
            programme,
            decision_reference="SC",
            decision_date=date(2009, 2, 1),
            awarded_at=at(2009, 2, 2),
        )
    assert err.value.rule == "award.already_awarded"


def test_a_refused_award_commits_nothing():
    window, programme = budgets(window_remaining="150000.00")
    with pytest.raises(Conflict):
        Grant.award(
            "g-1",
            proposal(),
            D("200000.00"),
            LIMITS,
            window,
            programme,
            decision_reference="SC",
            decision_date=date(2009, 2, 1),
            awarded_at=at(2009, 2, 2),
        )
    assert window.committed == D("3600000.00") and programme.committed == D("0.00")


def test_reject_proposal():
    events = on_the_wire(reject_proposal(proposal(), ["score under the award line"], "SC-2009-07"))
    assert events[0].event_type == "proposal_rejected"
    with pytest.raises(InvalidInput):
        reject_proposal(proposal(), [])


def test_decline_frees_the_commitment_and_the_reserve_moves_up():
    grant, _, window, programme, _ = awarded()
    events = on_the_wire(decline(grant, window, programme, "consortium partner withdrew", at(2009, 2, 10)))
    assert events[0].data["kind"] == "declined" and grant.status == GrantStatus.DECLINED
    assert window.committed == D("0.00") and programme.committed == D("0.00")
    ranking = Ranking(
        "call-1",
        "remittances",
        D("60"),
        main=(RankedProposal("p-1", "R1", 1, D("82.5"), "MA", D("200000.00")),),
        reserve=(RankedProposal("p-9", "R9", 12, D("61"), "TN", D("90000.00")),),
    )
    assert next_from_reserve(ranking, {"p-1"}).proposal_id == "p-9"


def test_full_life_of_a_prag_grant_with_the_70_percent_rule():
    grant, _, window, programme, _ = awarded(duration_months=36)
    signed = on_the_wire(grant.sign_contract(ORG, date(2009, 3, 1), at(2009, 2, 20), YEARS))[0]
    assert signed.event_type == "contract_signed" and signed.data["end_date"] == "2012-02-29"
    assert [t["planned_amount_eur"] for t in signed.data["schedule"]] == [
        "56000.00",
        "56000.00",
        "48000.00",
        "40000.00",
    ]
    # tranche 1 at signature, four eyes, idempotent request
    assert len(grant.request_payment("k1", 1, D("56000.00"), OFFICER, at(2009, 3, 5))) == 1
    assert grant.request_payment("k1", 1, D("56000.00"), OFFICER, at(2009, 3, 5)) == []  # retry: no-op
    with pytest.raises(Conflict) as err:
        grant.request_payment("k1", 1, D("50000.00"), OFFICER, at(2009, 3, 5))
    assert err.value.rule == "payment.key_reused"
    with pytest.raises(Conflict) as err:
        grant.approve_payment("k1", OFFICER, at(2009, 3, 6))
    assert err.value.rule == "payment.four_eyes"
    grant.approve_payment("k1", APPROVER, at(2009, 3, 6))
    paid = on_the_wire(grant.mark_paid("k1", date(2009, 3, 9), "BANK-1", today=date(2009, 3, 9)))[0]
    assert paid.data == {
        "payment_id": "k1",
        "grant_id": "g-1",
        "reference": "JMDI-2009-001",
        "tranche_number": 1,
        "amount_eur": "56000.00",
        "value_date": "2009-03-09",
        "bank_reference": "BANK-1",
        "approved_by": APPROVER,
    }
    # tranche 2 waits for the interim report
    with pytest.raises(Conflict) as err:
        grant.request_payment("k2", 2, D("56000.00"), OFFICER, at(2010, 1, 5))
    assert err.value.rule == "payment.report_required"
    with pytest.raises(Conflict) as err:
        grant.submit_report("r1", "interim", 1, expenditure("42000.00"), at(2010, 2, 1))
    assert err.value.rule == "report.period_not_ended"
    # interim report 1: 42,000 spent at an EC share of 80% = 33,600 = 60% of the 56,000 paid
    submitted = on_the_wire(grant.submit_report("r1", "interim", 1, expenditure("42000.00"), at(2010, 4, 1)))[0]
    assert (submitted.data["period_start"], submitted.data["period_end"], submitted.data["total_eur"]) == (
        "2009-03-01",
        "2010-02-28",
        "42000.00",
    )
    decided = on_the_wire(grant.accept_report("r1", at(2010, 4, 20)))[0]
    assert (decided.event_type, decided.data["outcome"]) == ("report_accepted", "accepted")
    assert grant.payable_amount(2) == D("33600.00")  # 56,000 reduced by the 22,400 unspent
    with pytest.raises(Conflict) as err:
        grant.request_payment("k2", 2, D("56000.00"), OFFICER, at(2010, 4, 21))
    assert err.value.rule == "payment.above_tranche"
    pay(grant, "k2", 2, "33600.00")
    # interim report 2: 70,000 spent (56,000 EC) -> cumulative 89,600; 33,600 of it on the 33,600 paid: no cut
    on_the_wire(grant.submit_report("r2", "interim", 2, expenditure("70000.00"), at(2011, 4, 1)))
    on_the_wire(grant.return_report("r2", "bank statements missing", at(2011, 4, 10)))
    with pytest.raises(Conflict) as err:
        grant.request_payment("k3", 3, D("48000.00"), OFFICER, at(2011, 4, 11))
    assert err.value.rule == "payment.report_required"
    on_the_wire(grant.submit_report("r2b", "interim", 2, expenditure("70000.00"), at(2011, 4, 12)))
    on_the_wire(grant.accept_report("r2b", at(2011, 4, 20)))
    assert grant.payable_amount(3) == D("48000.00")
    pay(grant, "k3", 3, "48000.00")
    # final report: 125,000 -> accepted 237,000 x 80% = 189,600 earned; 137,600 paid -> balance 52,000
    on_the_wire(grant.submit_report("rf", "final", 1, expenditure("125000.00"), at(2012, 4, 30)))
    with pytest.raises(Conflict) as err:
        grant.close(at(2012, 5, 1), window, programme, decommitment_id="d-1")
    assert err.value.rule == "closure.final_report_required"
    on_the_wire(grant.accept_report("rf", at(2012, 5, 15)))
    assert grant.payable_amount(4) == D("52000.00")
    with pytest.raises(Conflict) as err:
        grant.close(at(2012, 5, 16), window, programme, decommitment_id="d-1")
    assert err.value.rule == "closure.final_payment_pending"
    assert window.committed == programme.committed == D("200000.00")  # a refused closure gives nothing back
    pay(grant, "k4", 4, "52000.00")
    closed, decommitted = on_the_wire(grant.close(at(2012, 6, 1), window, programme, decommitment_id="d-1"))
    assert closed.data == {
        "grant_id": "g-1",
        "reference": "JMDI-2009-001",
        "kind": "final_payment",
        "paid_eur": "189600.00",
        "accepted_expenditure_eur": "237000.00",
        "recovery_eur": "0.00",
        "closed_at": "2012-06-01T12:00:00+00:00",
    }
    # the 10,400 the grant did not earn goes back to the window and the programme at once
    assert decommitted.event_type == "grant_decommitted"
    assert (
        decommitted.data["amount_eur"],
        decommitted.data["committed_before_eur"],
        decommitted.data["committed_after_eur"],
    ) == ("10400.00", "200000.00", "189600.00")
    assert window.committed == programme.committed == D("189600.00") == grant.committed
    assert grant.status == GrantStatus.CLOSED and grant.paid_total <= grant.amount
    with pytest.raises(Conflict):
        grant.request_payment("k5", 4, D("1.00"), OFFICER, at(2012, 6, 2))


def test_recovery_when_expenditure_falls_short():
    grant, window, programme = contracted("100000.00", 12, None)  # option 1: 80,000 + 20,000
    assert grant.ec_share == D("0.4")  # 100,000 of a 250,000 eligible budget
    pay(grant, "k1", 1, "80000.00")
    grant.submit_report("rf", "final", 1, expenditure("90000.00"), at(2010, 3, 1))
    grant.accept_report("rf", at(2010, 3, 10))
    assert grant.payable_amount(2) == D("0.00")
    # 90,000 x 40% = 36,000 earned of the 80,000 paid
    closed, decommitted = on_the_wire(grant.close(at(2010, 3, 20), window, programme, decommitment_id="d-1"))
    assert (closed.data["kind"], closed.data["recovery_eur"], closed.data["paid_eur"]) == (
        "recovery",
        "44000.00",
        "80000.00",
    )
    assert grant.closure.recovery_amount == D("44000.00")
    # the commitment ends at what the grant keeps: paid 80,000 - recovered 44,000 = 36,000; 64,000 decommitted
    assert (decommitted.data["amount_eur"], decommitted.data["committed_after_eur"]) == ("64000.00", "36000.00")
    assert grant.committed == grant.paid_total - grant.closure.recovery_amount == window.committed


def test_payments_need_a_signed_contract_and_a_validated_account():
    grant, *_ = awarded()
    with pytest.raises(Conflict) as err:
        grant.request_payment("k1", 1, D("56000.00"), OFFICER, at(2009, 3, 5))
    assert err.value.rule == "payment.contract_not_signed"
    grant, _, _ = contracted()
    grant.update_organisation(ORG.change_account("DE89370400440532013000"))  # a new account after signature
    with pytest.raises(Conflict) as err:
        grant.request_payment("k1", 1, D("56000.00"), OFFICER, at(2009, 3, 5))
    assert err.value.rule == "payment.no_validated_account"
    grant.update_organisation(grant.organisation.validate_account())
    grant.request_payment("k1", 1, D("56000.00"), OFFICER, at(2009, 3, 5))


def test_a_contract_is_signed_only_with_a_validated_bank_account():
    grant, *_ = awarded()
    with pytest.raises(Conflict) as err:
        grant.sign_contract(ORG.change_account("DE89370400440532013000"), date(2009, 3, 1), at(2009, 2, 20), YEARS)
    assert err.value.rule == "contract.account_not_validated"
    assert grant.status == GrantStatus.AWARDED and grant.organisation is None
    grant.sign_contract(ORG, date(2009, 3, 1), at(2009, 2, 20), YEARS)
    assert grant.status == GrantStatus.CONTRACTED


def test_reports_in_order_and_once():
    grant, _, _ = contracted()
    with pytest.raises(Conflict) as err:
        grant.submit_report("r2", "interim", 2, expenditure("10000.00"), at(2011, 4, 1))
    assert err.value.rule == "report.out_of_order"
    grant.submit_report("r1", "interim", 1, expenditure("10000.00"), at(2010, 4, 1))
    with pytest.raises(Conflict) as err:
        grant.submit_report("r1b", "interim", 1, expenditure("10000.00"), at(2010, 4, 1))
    assert err.value.rule == "report.already_submitted"
    with pytest.raises(InvalidInput):
        grant.submit_report("r9", "interim", 3, expenditure("10000.00"), at(2012, 4, 1))


def test_reallocation_and_amendments():
    grant, window, programme = contracted()
    moved = dict(BUDGET_250K, travel=D("25500.00"), human_resources=D("126500.00"))
    assert on_the_wire(grant.reallocate("re-1", moved, LIMITS))[0].data["kind"] == "reallocation"
    too_far = dict(BUDGET_250K, travel=D("25000.00"), human_resources=D("127000.00"))
    with pytest.raises(Conflict) as err:
        grant.reallocate("re-2", too_far, LIMITS)
    assert err.value.rule == "reallocation.amendment_required"
    # the same change as a budget amendment
    on_the_wire(
        grant.amend(Amendment("am-1", "budget", "revised activity plan", new_budget=too_far), LIMITS, window, programme)
    )
    assert grant.contract_budget["travel"] == D("25000.00")
    with pytest.raises(Conflict) as err:
        grant.amend(Amendment("am-2", "amount", new_amount=D("200000.01")), LIMITS, window, programme)
    assert err.value.rule == "amendment.above_call_max"
    # an amount decrease frees the commitment and the schedule still adds up to the award
    pay(grant, "k1", 1, "56000.00")
    event = on_the_wire(grant.amend(Amendment("am-3", "amount", new_amount=D("150000.00")), LIMITS, window, programme))[
        0
    ]
    assert event.data["amount_eur"] == "150000.00" and window.committed == D("150000.00")
    assert sum(t.planned_amount for t in grant.schedule) == D("150000.00")
    assert grant.schedule[0].planned_amount == D("56000.00")
    assert grant.ec_share == D("0.6")
    # a longer action
    on_the_wire(grant.amend(Amendment("am-4", "duration", new_duration_months=30), LIMITS, window, programme))
    assert grant.end_date == date(2011, 8, 31)
    with pytest.raises(Conflict) as err:
        grant.amend(Amendment("am-5", "duration", new_duration_months=48), LIMITS, window, programme)
    assert err.value.rule == "amendment.above_max_duration"


def test_the_contract_may_fix_another_duration_than_the_proposal():
    grant, *_ = awarded("90000.00")
    signed = on_the_wire(grant.sign_contract(ORG, date(2009, 3, 1), at(2009, 2, 20), duration_months=12))[0]
    assert (signed.data["duration_months"], signed.data["end_date"]) == (12, "2010-02-28")
    assert [t["planned_amount_eur"] for t in signed.data["schedule"]] == ["72000.00", "18000.00"]  # option 1
    with pytest.raises(InvalidInput) as err:
        awarded()[0].sign_contract(ORG, date(2009, 3, 1), at(2009, 2, 20), duration_months=0)
    assert "duration_months" in err.value.errors


def test_a_decided_report_names_its_number():
    grant, _, _ = contracted()
    grant.submit_report("r1", "interim", 1, expenditure("10000.00"), at(2010, 4, 1))
    decided = on_the_wire(grant.return_report("r1", "receipts missing", at(2010, 4, 2)))[0]
    assert (decided.data["number"], decided.data["outcome"], decided.data["reason"]) == (
        1,
        "returned",
        "receipts missing",
    )


def test_an_award_above_the_ec_share_cap_is_refused_as_an_award_rule():
    window, programme = budgets()
    small_budget = {k: v / 2 for k, v in BUDGET_250K.items()}  # 125,000 eligible: 100,000 is an 80% share
    with pytest.raises(Conflict) as err:
        Grant.award(
            "g-9",
            proposal(budget=small_budget),
            D("120000.00"),
            LIMITS,
            window,
            programme,
            decision_reference="SC",
            decision_date=date(2009, 2, 1),
            awarded_at=at(2009, 2, 2),
        )
    assert err.value.rule == "award.ec_share_exceeded" and window.committed == D("0.00")
