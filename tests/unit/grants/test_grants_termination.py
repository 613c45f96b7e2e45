"""Early termination: the dates it may take, the states it moves between, and the money at closure to the cent.

The grant: EUR 200,000.00 of a 250,000.00 budget (EC share 80%), 36 months from 2009-03-01, pre-financing
64,000.00 at signature, 64,000.00 and 32,000.00 after the interim reports, the balance after the final report.
"""

from datetime import date
from decimal import Decimal as D

import pytest

from services.common.values.errors import Conflict, InvalidInput
from services.grants.domain import (
    Grant,
    GrantStatus,
    Organisation,
    ProgrammeCalendar,
    check_termination,
    periods_after_termination,
    reporting_periods,
)

from grants_helpers import LIMITS, at, budgets, proposal, on_the_wire

SIGNER, PM, OFFICER, APPROVER = "sofia.pm", "marc.pm", "omar.officer", "farid.approver"
ORG = Organisation(
    "Association Migrations et Développement",
    "RC-1234",
    "MA",
    "MA64011519000001205000534921",
    "Jamal Lahlou",
    account_validated=True,
)
CALENDAR = ProgrammeCalendar(None, date(2008, 1, 1), date(2012, 12, 31))


def contracted():
    window, programme = budgets()
    grant, _ = Grant.award(
        "g-1",
        proposal(duration_months=36),
        D("200000.00"),
        LIMITS,
        window,
        programme,
        decision_reference="SC-2009-07",
        decision_date=date(2009, 2, 1),
        awarded_at=at(2009, 2, 2),
        calendar=CALENDAR,
    )
    grant.sign_contract(ORG, date(2009, 3, 1), at(2009, 2, 20), annual_budgets=["80000.00", "80000.00", "40000.00"])
    return grant, window, programme


def pay(grant, key, tranche, amount, on=at(2009, 3, 5)):
    grant.request_payment(key, tranche, D(amount), OFFICER, on)
    grant.approve_payment(key, APPROVER, on)
    grant.mark_paid(key, on.date(), f"BANK-{key}", today=on.date())


def terminate(grant, effective=date(2009, 9, 30), on=at(2009, 10, 5), by=PM, signed_by=SIGNER):
    return grant.terminate(effective, "The lead applicant was dissolved.", by, on, signed_by=signed_by)


def snapshot(grant):
    return (grant.status, grant.termination, dict(grant.payments), dict(grant.reports))


# --- the event and the new state ------------------------------------------------------------------------------


def test_termination_ends_the_action_at_its_effective_date_and_moves_no_money():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "64000.00")
    (event,) = on_the_wire(terminate(grant))
    assert event == (
        "grant_terminated",
        {
            "grant_id": "g-1",
            "reference": "JMDI-2009-001",
            "effective_date": "2009-09-30",
            "reason": "The lead applicant was dissolved.",
            "terminated_by": PM,
            "terminated_at": "2009-10-05T12:00:00+00:00",
            "amount_eur": "200000.00",
            "paid_eur": "64000.00",
            "final_report_period_start": "2009-03-01",
            "final_report_due": "2009-12-30",
        },
    )
    assert grant.status == GrantStatus.TERMINATED
    assert window.committed == programme.committed == grant.committed == D("200000.00")  # until closure
    # the reports owed: one final report from the start to the effective date
    assert [(p.kind, p.start, p.end, p.due_date) for p in grant.reporting_periods()] == [
        ("final", date(2009, 3, 1), date(2009, 9, 30), date(2009, 12, 30))
    ]


def test_a_terminated_grant_reports_at_once_and_closes_with_a_recovery_and_a_decommitment_to_the_cent():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "64000.00")
    terminate(grant)
    # submitted the day after the effective date: its period has ended
    grant.submit_report("rf", "final", 1, {"human_resources": "50000.01", "travel": "1234.56"}, at(2009, 10, 6))
    grant.accept_report("rf", at(2009, 10, 9))
    closed, decommitted = on_the_wire(grant.close(at(2009, 10, 12), window, programme, decommitment_id="d-1"))
    # final amount = 80% of 51,234.57 = 40,987.656 -> 40,987.66; paid 64,000.00: recover 23,012.34
    assert closed.data["kind"] == "recovery" and closed.data["recovery_eur"] == "23012.34"
    assert decommitted.data["amount_eur"] == "159012.34"  # 200,000.00 - 40,987.66
    assert decommitted.data["committed_after_eur"] == "40987.66"
    assert decommitted.data["reason"].startswith("Closure after early termination on 2009-09-30: final amount 40987.66")
    assert grant.status == GrantStatus.CLOSED
    assert window.committed == programme.committed == grant.committed == D("40987.66")


def test_a_terminated_grant_that_spent_more_than_it_received_gets_its_balance_then_closes():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "64000.00")
    terminate(grant)
    grant.submit_report("rf", "final", 1, {"human_resources": "90000.00"}, at(2009, 10, 6))
    grant.accept_report("rf", at(2009, 10, 9))  # 80% of 90,000.00 = 72,000.00 owed
    with pytest.raises(Conflict) as refused:
        grant.close(at(2009, 10, 12), window, programme, decommitment_id="d-1")
    assert refused.value.rule == "closure.final_payment_pending"
    with pytest.raises(Conflict) as too_much:
        grant.request_payment("k4", 4, D("8000.01"), OFFICER, at(2009, 10, 10))
    assert too_much.value.rule == "payment.above_tranche"
    pay(grant, "k4", 4, "8000.00", on=at(2009, 10, 10))  # the balance, out of order of the lapsed tranches
    grant.close(at(2009, 10, 12), window, programme, decommitment_id="d-1")
    assert (grant.paid_total, grant.closure.recovery_amount, grant.decommitted, grant.committed) == (
        D("72000.00"),
        D("0.00"),
        D("128000.00"),
        D("72000.00"),
    )
    assert window.committed == D("72000.00")


def test_after_termination_no_further_pre_financing_no_amendment_no_interim_report():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "64000.00")
    terminate(grant)
    with pytest.raises(Conflict) as refused:
        grant.request_payment("k2", 2, D("1000.00"), OFFICER, at(2009, 10, 6))
    assert refused.value.rule == "termination.no_further_prefinancing"
    with pytest.raises(Conflict) as balance_early:
        grant.request_payment("k4", 4, D("1000.00"), OFFICER, at(2009, 10, 6))
    assert balance_early.value.rule == "payment.report_required"
    with pytest.raises(InvalidInput):
        grant.submit_report("ri", "interim", 1, {"travel": "10.00"}, at(2010, 3, 1))
    with pytest.raises(Conflict) as not_amended:
        grant.reallocate("r-1", dict(grant.budget), LIMITS)
    assert not_amended.value.rule == "grant.invalid_state"
    with pytest.raises(Conflict) as not_declined:
        grant.decline("no", at(2009, 10, 6), window, programme)
    assert not_declined.value.rule == "grant.invalid_state"


def test_an_accepted_interim_report_stays_and_the_final_one_covers_the_rest():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "64000.00")
    grant.submit_report("ri", "interim", 1, {"human_resources": "60000.00"}, at(2010, 3, 2))
    grant.accept_report("ri", at(2010, 3, 10))
    with pytest.raises(Conflict) as reported:
        terminate(grant, effective=date(2010, 2, 28), on=at(2010, 3, 15))
    assert reported.value.rule == "termination.within_reported_period"
    terminate(grant, effective=date(2010, 6, 30), on=at(2010, 7, 1))
    assert [(p.condition, p.start, p.end) for p in grant.reporting_periods()] == [
        ("interim_report:1", date(2009, 3, 1), date(2010, 2, 28)),
        ("final_report", date(2010, 3, 1), date(2010, 6, 30)),
    ]
    grant.submit_report("rf", "final", 1, {"human_resources": "10000.00"}, at(2010, 7, 2))
    grant.accept_report("rf", at(2010, 7, 3))
    grant.close(at(2010, 7, 4), window, programme, decommitment_id="d-1")
    # 80% of 70,000.00 accepted = 56,000.00; paid 64,000.00: 8,000.00 recovered, 144,000.00 decommitted
    assert (grant.closure.recovery_amount, grant.decommitted) == (D("8000.00"), D("144000.00"))


def test_periods_after_termination_fold_unreported_interim_periods_into_the_final_report():
    periods = reporting_periods(date(2009, 3, 1), 36)
    final = periods_after_termination(periods, set(), date(2011, 1, 31), date(2009, 3, 1))
    assert [(p.kind, p.start, p.end, p.due_date) for p in final] == [
        ("final", date(2009, 3, 1), date(2011, 1, 31), date(2011, 4, 30))
    ]


# --- refused: nothing changes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "effective, on, rule",
    [
        (date(2009, 10, 6), at(2009, 10, 5), "termination.effective_date_in_future"),
        (date(2009, 2, 28), at(2009, 10, 5), "termination.before_contract_start"),
        (date(2012, 3, 1), at(2012, 3, 5), "termination.after_action_end"),
    ],
)
def test_a_wrong_effective_date_is_refused_and_changes_nothing(effective, on, rule):
    grant, _, _ = contracted()
    before = snapshot(grant)
    with pytest.raises(Conflict) as refused:
        terminate(grant, effective=effective, on=on)
    assert refused.value.rule == rule
    assert snapshot(grant) == before


def test_the_programme_period_bounds_the_effective_date():
    with pytest.raises(Conflict) as refused:
        check_termination(
            effective_date=date(2013, 1, 2),
            reason="r",
            terminated_by=PM,
            terminated_at=at(2013, 2, 1),
            start_date=date(2011, 1, 1),
            end_date=date(2013, 12, 31),
            today=date(2013, 2, 1),
            signed_by=SIGNER,
            reported_until=None,
            programme_start=date(2008, 1, 1),
            programme_end=date(2012, 12, 31),
            pending_payments=[],
            pending_reports=[],
        )
    assert refused.value.rule == "termination.outside_programme_period"


def test_the_signer_of_the_contract_may_not_terminate_it():
    grant, _, _ = contracted()
    before = snapshot(grant)
    with pytest.raises(Conflict) as refused:
        terminate(grant, by="Sofia.PM")
    assert refused.value.rule == "termination.four_eyes"
    assert snapshot(grant) == before
    terminate(grant, by=PM, signed_by=None)  # a contract signed before the signer was recorded: not checked
    assert grant.status == GrantStatus.TERMINATED


def test_twice_or_before_the_contract_or_after_closure_is_refused():
    grant, window, programme = contracted()
    pay(grant, "k1", 1, "64000.00")
    terminate(grant)
    before = snapshot(grant)
    with pytest.raises(Conflict) as twice:
        terminate(grant, effective=date(2009, 9, 29))
    assert twice.value.rule == "termination.already_terminated"
    assert snapshot(grant) == before

    awarded, _ = Grant.award(
        "g-2",
        proposal(proposal_id="p-2", reference="JMDI-2009-002"),
        D("100000.00"),
        LIMITS,
        window,
        programme,
        decision_reference="SC",
        decision_date=date(2009, 2, 1),
        awarded_at=at(2009, 2, 2),
    )
    with pytest.raises(Conflict) as unsigned:
        terminate(awarded)
    assert unsigned.value.rule == "termination.contract_not_signed"

    grant.submit_report("rf", "final", 1, {"travel": "100.00"}, at(2009, 10, 6))
    grant.accept_report("rf", at(2009, 10, 7))
    grant.close(at(2009, 10, 8), window, programme, decommitment_id="d-1")
    with pytest.raises(Conflict) as closed:
        terminate(grant)
    assert closed.value.rule == "grant.invalid_state"


def test_pending_payment_requests_and_reports_block_termination():
    grant, _, _ = contracted()
    grant.request_payment("k1", 1, D("64000.00"), OFFICER, at(2009, 3, 5))
    before = snapshot(grant)
    with pytest.raises(Conflict) as payment:
        terminate(grant)
    assert payment.value.rule == "termination.payment_pending"
    assert payment.value.details == [{"payment_ids": ["k1"]}]
    assert snapshot(grant) == before
    grant.cancel_payment("k1", OFFICER, "the action stops", at(2009, 3, 6), finance_approver=False)
    grant.submit_report("ri", "interim", 1, {"travel": "100.00"}, at(2010, 3, 2))
    with pytest.raises(Conflict) as report:
        terminate(grant, effective=date(2010, 3, 5), on=at(2010, 3, 6))
    assert report.value.rule == "termination.report_pending"


@pytest.mark.parametrize("reason", ["", None, "x" * 2001])
def test_a_reason_is_required(reason):
    grant, _, _ = contracted()
    with pytest.raises(InvalidInput):
        grant.terminate(date(2009, 9, 30), reason, PM, at(2009, 10, 5), signed_by=SIGNER)
    assert grant.status == GrantStatus.CONTRACTED
