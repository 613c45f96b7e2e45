"""Closure gives back the unspent award and a reserve proposal takes it; a payment request is cancelled — on the
real broker and PostgreSQL, with the real grants, reporting and notifications services.

The window of this call holds exactly one grant, so the reserve proposal can only be funded with what the first
grant gives back at closure; the EC report, the IATI file and the reconciliation with the grants ledger must
agree to the cent before and after. A grant is closed after its final report, so the call is one that closed long
ago (tests/support/history.py): awarded and contracted in 2009, its tranches paid and the grant closed today.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from lxml import etree

from services.common.values.errors import InvalidInput, NotAllowed, NotFound
from tests.integration.test_grants_service import (
    contracted,
    events_of,
    publish_ranking,
    rule_of,
    run_together,
    window_committed,
)
from tests.integration.test_reporting_service import _gauge, _metrics
from tests.support import flows
from tests.support.history import award, past_call, past_proposals, staff_of
from tests.support.infra import eventually
from tests.support.system import System

pytestmark = pytest.mark.integration

D = Decimal
CALL = "JMDI-2010"
APPROVERS = "Farid Finance <farid.finance@undp.example>"


@pytest.fixture(scope="module")
def system():
    with System(extra_env={"FINANCE_APPROVER_EMAILS": APPROVERS}) as running:
        yield running


# who plays which part: (user, role); two finance officers, to tell a request's requester from a colleague
PEOPLE = {
    "pm": ("maria.pm", "programme_manager"),
    "pm2": ("karim.pm", "programme_manager"),
    "committee": ("steering.committee", "committee"),
    "officer": ("omar.officer", "finance_officer"),
    "other_officer": ("olga.officer", "finance_officer"),
    "approver": ("farid.finance", "finance_approver"),
    "auditor": ("anna.auditor", "auditor"),
    "reporter": ("ec.reporter", "ec_reporter"),
}


@pytest.fixture(scope="module")
def staff(system):
    return staff_of(system, PEOPLE)


@pytest.fixture(scope="module")
def call(system, staff):
    """A call (closed on 2009-03-31) whose windows hold EUR 150,000.00 each: room for one grant of that size."""
    staff["pm"].calls.load_programme(programme=flows.programme())
    past_call(system, CALL, allocation="150000.00")
    return CALL


def request(staff, grant_id, tranche, amount, key, who="officer"):
    return staff[who].grants.request_payment(
        grant_id=grant_id, tranche_number=tranche, amount_eur=amount, idempotency_key=key
    )


def approve(staff, payment_id):
    """Approved and paid today (a value date is never before its request)."""
    return staff["approver"].grants.approve_payment(payment_id=payment_id, bank_reference=f"BNK-{payment_id[:8]}")


def accepted_final_report(staff, grant_id, total):
    expenditure = {"human_resources": str(D(total) - D("1000.00")), "travel": "1000.00"}
    submitted = staff["pm"].grants.submit_report(grant_id=grant_id, kind="final", expenditure=expenditure)
    staff["pm2"].grants.accept_report(report_id=submitted["report_id"])  # four eyes: it unlocks the balance


def report(staff, **kwargs):
    return staff["reporter"].reporting.budget_report(programme_id="JMDI", **kwargs)


def ledger(staff) -> dict:
    return {g["grant_id"]: g for g in staff["auditor"].grants.ledger(programme_id="JMDI")["grants"]}


def commitments_in(iati_xml: str, reference: str) -> list[str]:
    activity = etree.fromstring(iati_xml.encode("utf-8")).find(
        f"iati-activity[iati-identifier='XM-DAC-41114-JMDI-{reference}']"
    )
    return [
        t.findtext("value") for t in activity.findall("transaction") if t.find("transaction-type").get("code") == "2"
    ]


def assert_books_agree(staff, committed: str, decommitted: str) -> dict:
    """The EC report, the IATI file and the grants ledger say the same, to the cent."""
    books = ledger(staff)
    assert sum(D(g["committed_eur"]) for g in books.values()) == D(committed)
    assert sum(D(g["decommitted_eur"]) for g in books.values()) == D(decommitted)
    now = report(staff)
    assert (now["committed_eur"], now["decommitted_eur"]) == (committed, decommitted)
    assert sum(D(w["committed_eur"]) for w in now["windows"]) == D(committed)
    assert sum(D(w["decommitted_eur"]) for w in now["windows"]) == D(decommitted)
    iati = staff["reporter"].reporting.iati_export(programme_id="JMDI")
    assert iati["valid"] is True and iati["commitments_eur"] == iati["committed_eur"] == committed
    reconciled = staff["auditor"].reporting.reconcile(programme_id="JMDI")
    assert reconciled["clean"] is True, reconciled["differences"]
    assert reconciled["totals"]["grants"] == reconciled["totals"]["reporting"]
    assert reconciled["totals"]["grants"]["decommitted_eur"] == decommitted
    return {"report": now, "iati": iati}


def test_closure_gives_back_the_unspent_award_and_a_reserve_proposal_takes_it(system, staff, call):
    first, second, third = past_proposals(
        system, CALL, [101, 102, 103], window="remittances", country="MA", requested="150000.00"
    )
    publish_ranking(system, CALL, "remittances", [first], reserve=[second, third])
    grant = award(staff, first, "150000.00")
    gid = grant["grant_id"]
    assert rule_of(award, staff, second, "60000.00") == "award.reserve_not_open"
    # 12 months, EUR 150,000 at an EC share of 80%: 120,000 at signature, the balance after the final report
    signed = contracted(staff, grant, start_date="2009-07-01", duration_months=12)
    assert [t["planned_amount_eur"] for t in signed["schedule"]] == ["120000.00", "30000.00"]
    approve(staff, request(staff, gid, 1, "120000.00", "decommit-1")["payment_id"])

    # before closure: the whole award is committed, everywhere
    eventually(lambda: report(staff)["disbursed_eur"] == "120000.00", 60, 0.3, "reporting saw the tranche")
    assert_books_agree(staff, "150000.00", "0.00")

    # the final report earns 112,500 x 80% = 90,000: 30,000 to recover, 60,000 never to be spent
    accepted_final_report(staff, gid, "112500.00")
    programme_before = D(system.scalar("grants", "SELECT committed FROM programme_budgets")) / 100
    closed = staff["pm"].grants.close_grant(grant_id=gid)
    assert (
        closed["status"],
        closed["closure"]["kind"],
        closed["closure"]["recovery_eur"],
        closed["closure"]["decommitted_eur"],
        closed["committed_eur"],
    ) == ("closed", "recovery", "30000.00", "60000.00", "90000.00")
    assert closed["closure"]["decommitment_reason"].startswith("Closure: final amount 90000.00")
    assert closed["next_reserve_proposal_id"] == second["proposal_id"]
    assert window_committed(system, CALL, "remittances") == D("90000.00")
    assert D(system.scalar("grants", "SELECT committed FROM programme_budgets")) / 100 == programme_before - 60000
    (decommitted,) = events_of(system, "grant_decommitted", gid)
    assert (decommitted["amount_eur"], decommitted["committed_before_eur"], decommitted["committed_after_eur"]) == (
        "60000.00",
        "150000.00",
        "90000.00",
    )
    assert (
        ledger(staff)[gid]["awarded_eur"],
        ledger(staff)[gid]["committed_eur"],
        ledger(staff)[gid]["decommitted_eur"],
    ) == ("150000.00", "90000.00", "60000.00")

    # the reserve list reopens for what was given back, and not a cent more
    today = datetime.now(timezone.utc).date().isoformat()
    assert rule_of(award, staff, third, "60000.00", today) == "award.reserve_out_of_order"
    assert rule_of(award, staff, second, "60000.01", today) == "award.above_released"
    reserve_grant = award(staff, second, "60000.00", today)
    assert reserve_grant["ranking_list"] == "reserve"
    assert window_committed(system, CALL, "remittances") == D("150000.00")  # the allocation, exactly
    assert rule_of(award, staff, third, "50000.00", today) == "award.reserve_not_open"

    # after closure: the EC report, the IATI file and the ledger agree again, now with the decommitment
    eventually(
        lambda: report(staff)["decommitted_eur"] == "60000.00" and report(staff)["counts"]["awards"] == 2,
        60,
        0.3,
        "reporting saw the closure and the reserve award",
    )
    after = assert_books_agree(staff, "150000.00", "60000.00")
    windows = {w["window"]: w for w in after["report"]["windows"]}
    assert (
        windows["remittances"]["committed_eur"],
        windows["remittances"]["decommitted_eur"],
        windows["remittances"]["available_eur"],
    ) == ("150000.00", "60000.00", "0.00")
    assert {c["country"]: c["decommitted_eur"] for c in after["report"]["countries"]}["MA"] == "60000.00"
    assert {y["year"]: y["decommitted_eur"] for y in after["report"]["years"]}[
        datetime.now(timezone.utc).year
    ] == "60000.00"
    assert commitments_in(after["iati"]["content"], first["reference"]) == ["150000.00", "-60000.00"]
    giving = staff["reporter"].reporting.giving360_export(programme_id="JMDI")
    assert giving["committed_eur"] == "150000.00"
    # the finance gauges (one SQL statement) net the decommitment too: 90,000 + 60,000, not 150,000 + 60,000
    assert _gauge(_metrics(system), "jmdi_committed_eur", window="remittances") == 150000.0

    # as of yesterday the grant was not closed: the old commitment, and no reserve award yet
    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    before = report(staff, as_of=yesterday)
    assert (before["committed_eur"], before["decommitted_eur"], before["counts"]["awards"]) == ("150000.00", "0.00", 1)
    old_iati = staff["reporter"].reporting.iati_export(programme_id="JMDI", as_of=yesterday)
    assert commitments_in(old_iati["content"], first["reference"]) == ["150000.00"]

    # the decommitment is a fact of the archive: rebuilding the projections gives the same report
    staff["pm"].reporting.rebuild_projections()
    assert report(staff)["windows"] == after["report"]["windows"]
    assert staff["auditor"].reporting.reconcile(programme_id="JMDI")["clean"] is True


def test_a_pending_payment_request_is_cancelled_by_its_requester_or_an_approver(system, staff, call):
    (proposal,) = past_proposals(system, CALL, [201], window="migrants_rights", country="SN", requested="100000.00")
    publish_ranking(system, CALL, "migrants_rights", [proposal])
    gid = contracted(staff, award(staff, proposal, "100000.00"), start_date="2009-07-01", duration_months=12)[
        "grant_id"
    ]
    first = request(staff, gid, 1, "80000.00", "cancel-1")

    # the wrong person, no reason, an unknown payment: refused, nothing changes
    with pytest.raises(NotAllowed):
        staff["other_officer"].grants.cancel_payment(payment_id=first["payment_id"], reason="not mine")
    with pytest.raises(NotAllowed):
        staff["auditor"].grants.cancel_payment(payment_id=first["payment_id"], reason="read-only role")
    with pytest.raises(InvalidInput) as missing:
        staff["officer"].grants.cancel_payment(payment_id=first["payment_id"])
    assert "reason" in missing.value.errors
    with pytest.raises(NotFound):
        staff["officer"].grants.cancel_payment(payment_id="no-such-payment", reason="typo")
    assert staff["pm"].grants.list_payments(grant_id=gid)[0]["status"] == "requested"
    refused = staff["auditor"].grants.query_audit(outcome="refused")
    assert any(r["operation"] == "grants.cancel_payment" and r["user"] == "olga.officer" for r in refused)

    # its requester cancels it, with a reason (a retry changes nothing); it can no longer be approved
    cancelled = staff["officer"].grants.cancel_payment(payment_id=first["payment_id"], reason="wrong amount")
    assert (cancelled["status"], cancelled["cancelled_by"], cancelled["cancel_reason"]) == (
        "cancelled",
        "omar.officer",
        "wrong amount",
    )
    assert staff["officer"].grants.cancel_payment(payment_id=first["payment_id"], reason="wrong amount") == cancelled
    assert [e["cancelled_by"] for e in events_of(system, "payment_cancelled", gid)] == ["omar.officer"]
    assert rule_of(approve, staff, first["payment_id"]) == "payment.not_pending"
    trail = staff["auditor"].grants.query_audit(entity=f"grant:{gid}")
    assert any(r["operation"] == "grants.cancel_payment" and r["outcome"] == "done" for r in trail)

    # its key stays with it: the same request again returns it, another request under that key is refused
    assert request(staff, gid, 1, "80000.00", "cancel-1")["status"] == "cancelled"
    assert rule_of(request, staff, gid, 1, "79000.00", "cancel-1") == "payment.key_reused"

    # the tranche is free again; a finance approver may cancel anyone's request
    second = request(staff, gid, 1, "80000.00", "cancel-2")
    by_approver = staff["approver"].grants.cancel_payment(
        payment_id=second["payment_id"], reason="bank account being changed"
    )
    assert by_approver["cancelled_by"] == "farid.finance"
    third = request(staff, gid, 1, "80000.00", "cancel-3")
    assert approve(staff, third["payment_id"])["status"] == "paid"
    assert (
        rule_of(staff["officer"].grants.cancel_payment, payment_id=third["payment_id"], reason="too late")
        == "payment.not_pending"
    )
    assert [p["status"] for p in staff["pm"].grants.list_payments(grant_id=gid)] == ["cancelled", "cancelled", "paid"]
    assert len(staff["pm"].grants.list_payments(grant_id=gid, status="cancelled")) == 2

    # the approvers hear of each cancellation; reporting no longer counts the requests as awaiting payment
    deliveries = eventually(
        lambda: (lambda found: found if len(found) == 2 else None)(
            staff["pm"].notifications.list_deliveries(grant_id=gid, template="payment_cancelled")
        ),
        60,
        0.3,
        "notices of the cancellations",
    )
    assert {d["recipient"] for d in deliveries} == {"farid.finance@undp.example"}

    def paid_here():
        return {g["grant_id"]: g["paid_eur"] for g in report(staff)["grants"]}.get(gid) == "80000.00"

    eventually(paid_here, 60, 0.3, "reporting saw the payment")
    assert report(staff)["payments_requested_unpaid_eur"] == "0.00"  # the two cancelled requests do not count
    assert staff["auditor"].reporting.reconcile(programme_id="JMDI")["clean"] is True


def test_closures_racing_in_one_window_give_back_every_cent(system, staff, call):
    """Each closure locks the grant, then the programme and window rows, as awards do: three closures at once
    lose no release."""
    proposals = past_proposals(
        system, CALL, [301, 302, 303], window="migrant_associations", country="EC", requested="50000.00"
    )
    publish_ranking(system, CALL, "migrant_associations", proposals)
    grant_ids = []
    for n, proposal in enumerate(proposals):
        gid = contracted(staff, award(staff, proposal, "50000.00"), start_date="2009-07-01", duration_months=12)[
            "grant_id"
        ]
        approve(staff, request(staff, gid, 1, "40000.00", f"race-{n}-1")["payment_id"])
        accepted_final_report(staff, gid, "56250.00")  # x 80% = 45,000: 5,000 of each award unused
        approve(staff, request(staff, gid, 2, "5000.00", f"race-{n}-2")["payment_id"])
        grant_ids.append(gid)
    programme_before = D(system.scalar("grants", "SELECT committed FROM programme_budgets")) / 100

    closed, refused = run_together(
        3,
        lambda i, client: client.grants.close_grant(grant_id=grant_ids[i]),
        lambda: system.client("maria.pm", ["programme_manager"]),
    )
    assert refused == [] and {c["closure"]["decommitted_eur"] for c in closed} == {"5000.00"}
    assert window_committed(system, CALL, "migrant_associations") == D("135000.00")
    assert D(system.scalar("grants", "SELECT committed FROM programme_budgets")) / 100 == programme_before - 15000
    assert len([e for e in events_of(system, "grant_decommitted") if e["grant_id"] in grant_ids]) == 3

    def window_in_report():
        windows = {w["window"]: w for w in report(staff)["windows"]}
        return windows["migrant_associations"]["decommitted_eur"] == "15000.00" and windows

    windows = eventually(window_in_report, 60, 0.3, "reporting saw the three decommitments")
    assert windows["migrant_associations"]["committed_eur"] == "135000.00"
    books = ledger(staff).values()
    assert_books_agree(
        staff, str(sum(D(g["committed_eur"]) for g in books)), str(sum(D(g["decommitted_eur"]) for g in books))
    )
