"""Early termination through the real services (gateway, grants, reporting, notifications on the real broker and
PostgreSQL): refused attempts change nothing; a termination lets the final report in at once; closure decommits
the unspent award, which a reserve proposal then takes; the EC report, the IATI file and the reconciliation with
the grants ledger agree to the cent; the consortium is told in its language.

The grant belongs to a call that closed long ago (tests/support/history.py), so its action runs in the past: it
started on 2009-07-01 for 36 months and is terminated effective 2010-03-31; its window holds exactly this one grant,
so the reserve proposal can only be funded with what the termination's closure gives back.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.common.values.errors import InvalidInput, NotAllowed, NotFound
from tests.integration.test_decommitment_and_cancellation import assert_books_agree, commitments_in, ledger, report
from tests.integration.test_grants_service import (
    contracted,
    events_of,
    publish_ranking,
    rule_of,
    unchanged,
    window_committed,
)
from tests.support import flows
from tests.support.history import award, past_call, past_proposals, staff_of
from tests.support.infra import eventually
from tests.support.system import System

pytestmark = pytest.mark.integration

D = Decimal
CALL = "JMDI-2011"
REASON = "The lead applicant was dissolved by its general assembly; the partners cannot carry on the action."

PEOPLE = {
    "pm": ("maria.pm", "programme_manager"),
    "other_pm": ("marc.pm", "programme_manager"),
    "committee": ("steering.committee", "committee"),
    "officer": ("omar.officer", "finance_officer"),
    "approver": ("farid.finance", "finance_approver"),
    "auditor": ("anna.auditor", "auditor"),
    "reporter": ("ec.reporter", "ec_reporter"),
}


@pytest.fixture(scope="module")
def system():
    with System() as running:
        yield running


@pytest.fixture(scope="module")
def staff(system):
    return staff_of(system, PEOPLE)


@pytest.fixture(scope="module")
def call(system, staff):
    staff["pm"].calls.load_programme(programme=flows.programme())
    past_call(system, CALL, allocation="150000.00")
    return CALL


def pay(staff, grant_id, tranche, amount, key):
    payment = staff["officer"].grants.request_payment(
        grant_id=grant_id, tranche_number=tranche, amount_eur=amount, idempotency_key=key
    )
    return staff["approver"].grants.approve_payment(
        payment_id=payment["payment_id"], bank_reference=f"BNK-{payment['payment_id'][:8]}"
    )


def terminate(staff, who="other_pm", **kwargs):
    return staff[who].grants.terminate_grant(**{"reason": REASON, **kwargs})


def test_termination_then_final_report_then_closure_frees_money_for_the_reserve(system, staff, call):
    first, second = past_proposals(system, CALL, [401, 402], window="remittances", country="MA", requested="150000.00")
    publish_ranking(system, CALL, "remittances", [first], reserve=[second])
    grant = award(staff, first, "150000.00")
    gid = grant["grant_id"]
    signed = contracted(staff, grant, start_date="2009-07-01", duration_months=36)  # signed by maria.pm
    prefinancing = signed["schedule"][0]["planned_amount_eur"]
    assert prefinancing == "40000.00"  # 80% of the first year's budget (EUR 50,000.00)
    today = datetime.now(timezone.utc).date()

    # a payment request awaiting approval blocks termination: it is decided first (here: approved)
    pending = staff["officer"].grants.request_payment(
        grant_id=gid, tranche_number=1, amount_eur=prefinancing, idempotency_key="term-1"
    )
    assert rule_of(terminate, staff, grant_id=gid, effective_date="2010-03-31") == "termination.payment_pending"
    staff["approver"].grants.approve_payment(payment_id=pending["payment_id"], bank_reference="BNK-TERM-1")

    # --- refused: nothing changes -----------------------------------------------------------------------------
    before = unchanged(system)
    with pytest.raises(NotAllowed):
        staff["officer"].grants.terminate_grant(grant_id=gid, reason=REASON, effective_date="2010-03-31")
    with pytest.raises(NotAllowed):
        staff["auditor"].grants.terminate_grant(grant_id=gid, reason=REASON, effective_date="2010-03-31")
    assert rule_of(terminate, staff, "pm", grant_id=gid, effective_date="2010-03-31") == "termination.four_eyes"
    assert (
        rule_of(terminate, staff, grant_id=gid, effective_date=(today + timedelta(days=1)).isoformat())
        == "termination.effective_date_in_future"
    )
    assert rule_of(terminate, staff, grant_id=gid, effective_date="2009-06-30") == "termination.before_contract_start"
    assert rule_of(terminate, staff, grant_id=gid, effective_date="2012-07-01") == "termination.after_action_end"
    with pytest.raises(NotFound):
        terminate(staff, grant_id="no-such-grant", effective_date="2010-03-31")
    with pytest.raises(InvalidInput) as no_reason:
        staff["other_pm"].grants.terminate_grant(grant_id=gid, effective_date="2010-03-31")
    assert "reason" in no_reason.value.errors
    with pytest.raises(InvalidInput) as bad_date:
        terminate(staff, grant_id=gid, effective_date="31/03/2010")
    assert "effective_date" in bad_date.value.errors
    assert unchanged(system) == before
    assert staff["auditor"].grants.get_grant(grant_id=gid)["status"] == "contracted"
    refused = staff["auditor"].gateway.query_audit(outcome="refused")  # wrong roles: refused at the door
    assert any(r["operation"] == "grants.terminate_grant" and r["user"] == "omar.officer" for r in refused), refused

    # --- terminated by a second programme manager -----------------------------------------------------------------
    terminated = terminate(staff, grant_id=gid, effective_date="2010-03-31")
    assert terminated["status"] == "terminated"
    assert terminated["termination"]["effective_date"] == "2010-03-31"
    assert terminated["termination"]["terminated_by"] == "marc.pm"
    assert [(r["kind"], r["period_start"], r["period_end"], r["due_date"]) for r in terminated["reports_due"]] == [
        ("final", "2009-07-01", "2010-03-31", "2010-06-30")
    ]
    assert {t["status"] for t in terminated["schedule"] if t["kind"] != "balance" and t["number"] != 1} <= {"lapsed"}
    assert terminated["committed_eur"] == "150000.00"  # no money moves before closure
    (event,) = events_of(system, "grant_terminated", gid)
    assert (event["effective_date"], event["terminated_by"], event["paid_eur"], event["final_report_due"]) == (
        "2010-03-31",
        "marc.pm",
        prefinancing,
        "2010-06-30",
    )
    before = unchanged(system)
    assert rule_of(terminate, staff, grant_id=gid, effective_date="2010-03-30") == "termination.already_terminated"
    assert (
        rule_of(
            staff["officer"].grants.request_payment,
            grant_id=gid,
            tranche_number=2,
            amount_eur="1.00",
            idempotency_key="term-2",
        )
        == "termination.no_further_prefinancing"
    )
    assert (
        rule_of(staff["pm"].grants.amend_grant, grant_id=gid, kind="duration", reason="x", new_duration_months=30)
        == "grant.invalid_state"
    )
    assert unchanged(system) == before
    eventually(lambda: report(staff)["terminated_grants"] == 1, 60, 0.3, "reporting saw the termination")
    assert_books_agree(staff, "150000.00", "0.00")

    # --- the final report at once, accepted with an underspend; closure recovers and decommits -----------------
    submitted = staff["pm"].grants.submit_report(
        grant_id=gid, kind="final", expenditure={"human_resources": "50000.00", "travel": "12500.00"}
    )  # x 80% = 50,000.00, the final amount
    assert (submitted["period_start"], submitted["period_end"]) == ("2009-07-01", "2010-03-31")
    staff["other_pm"].grants.accept_report(report_id=submitted["report_id"])
    # 50,000.00 earned, 40,000.00 pre-financed: the balance (and only the balance) is paid first, four eyes
    balance = next(t for t in staff["auditor"].grants.get_grant(grant_id=gid)["schedule"] if t["kind"] == "balance")
    assert balance["payable_eur"] == "10000.00"
    assert rule_of(staff["pm"].grants.close_grant, grant_id=gid) == "closure.final_payment_pending"
    assert rule_of(pay, staff, gid, balance["number"], "10000.01", "term-balance-1") == "payment.above_tranche"
    pay(staff, gid, balance["number"], "10000.00", "term-balance")
    closed = staff["pm"].grants.close_grant(grant_id=gid)
    assert (
        closed["status"],
        closed["closure"]["kind"],
        closed["closure"]["recovery_eur"],
        closed["closure"]["decommitted_eur"],
        closed["committed_eur"],
        closed["paid_eur"],
    ) == ("closed", "final_payment", "0.00", "100000.00", "50000.00", "50000.00")
    assert closed["closure"]["decommitment_reason"].startswith(
        "Closure after early termination on 2010-03-31: final amount 50000.00"
    )
    assert closed["next_reserve_proposal_id"] == second["proposal_id"]
    assert window_committed(system, CALL, "remittances") == D("50000.00")
    assert (ledger(staff)[gid]["committed_eur"], ledger(staff)[gid]["decommitted_eur"]) == ("50000.00", "100000.00")

    # --- the decommitted money is awarded again, and not a cent more ---------------------------------------------
    assert rule_of(award, staff, second, "100000.01", today.isoformat()) == "award.above_released"
    reserve_grant = award(staff, second, "100000.00", today.isoformat())
    assert reserve_grant["ranking_list"] == "reserve"
    assert window_committed(system, CALL, "remittances") == D("150000.00")

    # --- the books agree to the cent: EC report, IATI, reconciliation --------------------------------------------
    eventually(
        lambda: report(staff)["decommitted_eur"] == "100000.00" and report(staff)["counts"]["awards"] == 2,
        60,
        0.3,
        "reporting saw the closure and the reserve award",
    )
    after = assert_books_agree(staff, "150000.00", "100000.00")
    assert after["report"]["terminated_grants"] == 1
    assert after["report"]["recovered_eur"] == "0.00" and after["report"]["disbursed_eur"] == "50000.00"
    assert commitments_in(after["iati"]["content"], first["reference"]) == ["150000.00", "-100000.00"]
    yesterday = (today - timedelta(days=1)).isoformat()
    assert report(staff, as_of=yesterday)["terminated_grants"] == 0

    # --- the consortium is told, once per contact, in its language -----------------------------------------------
    told = eventually(
        lambda: staff["pm"].notifications.list_deliveries(grant_id=gid, template="grant_terminated") or None,
        60,
        0.3,
        "the termination notice",
    )
    assert told and len({d["recipient"] for d in told}) == len(told)
    trail = staff["auditor"].grants.query_audit(entity=f"grant:{gid}")
    assert any(
        r["operation"] == "grants.terminate_grant" and r["user"] == "marc.pm" and r["outcome"] == "done" for r in trail
    )
