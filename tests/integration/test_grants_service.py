"""The grants service on the real broker and PostgreSQL: from award to closure, reserve awards, the organisation
register, payments under four eyes, and the budget guards under concurrency.

Proposals come from the calls service (submit_proposal); rankings are published onto the calls exchange exactly
as the calls service sends ranking_published (its ranking RPCs are being built in parallel).
"""
import json
import threading
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from kombu import Connection, Exchange, Producer
from sqlalchemy import text

from services.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from services.common.events import make_event
from services.common.topology import exchange_name
from tests.support import flows
from tests.support.infra import eventually

pytestmark = pytest.mark.integration

MOROCCAN_IBAN = "MA64 0115 1900 0001 2050 0053 4921"


@pytest.fixture(scope="module")
def staff(system):
    return {
        "pm": system.client("maria.pm", ["programme_manager"]),
        "committee": system.client("steering.committee", ["committee"]),
        "officer": system.client("omar.officer", ["finance_officer"]),
        "approver": system.client("farid.finance", ["finance_approver"]),
        "auditor": system.client("anna.auditor", ["auditor"]),
    }


@pytest.fixture(scope="module")
def programme(system, staff):
    staff["pm"].calls.load_programme(programme=flows.programme())
    staff["pm"].calls.create_call(**flows.call())
    open_call(system, staff, "JMDI-2008")
    return "JMDI"


# --- helpers --------------------------------------------------------------------------------------------------

def open_call(system, staff, call_id: str):
    """Open a call and wait until grants has it: its proposals are budgeted against it (and retried until then)."""
    staff["pm"].calls.open_call(call_id=call_id)
    eventually(lambda: system.scalar("grants", f"SELECT count(*) FROM calls WHERE call_id = '{call_id}'") == 1,
               60, 0.3, f"grants knows {call_id}")


def submit(system, staff, numbers, **kwargs) -> list[dict]:
    """Submit proposals through the calls service and wait until grants has its copies."""
    proposals = [staff["pm"].calls.submit_proposal(**flows.proposal(n, **kwargs)) for n in numbers]
    ids = ", ".join(f"'{p['proposal_id']}'" for p in proposals)
    eventually(lambda: system.scalar("grants", f"SELECT count(*) FROM proposals WHERE proposal_id IN ({ids})")
               == len(proposals), 60, 0.3, "grants copies of the proposals")
    return proposals


def publish_ranking(system, call_id: str, window: str, main, reserve=(), threshold="60.00"):
    """ranking_published onto the calls exchange, as the calls service sends it; waits until grants applied it."""
    def entries(proposals, first_rank):
        return [{"proposal_id": p["proposal_id"], "reference": p["reference"], "rank": rank,
                 "score": Decimal("90.00") - Decimal(rank) / 2, "country": p["target_country"],
                 "ec_amount_requested_eur": Decimal(p["ec_amount_requested_eur"])}
                for rank, p in enumerate(proposals, start=first_rank)]

    published_at = datetime.now(timezone.utc)
    event = make_event("ranking_published", {
        "call_id": call_id, "window": window, "threshold": Decimal(threshold), "main": entries(main, 1),
        "reserve": entries(reserve, len(main) + 1), "excluded": [], "published_at": published_at}, producer="calls")
    with Connection(system.amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=Exchange(exchange_name("calls"), type="topic", durable=True))
        producer.publish(json.dumps(event.body), routing_key="ranking_published", content_type="application/json",
                         content_encoding="utf-8", delivery_mode=2)
    applied = (f"SELECT count(*) FROM rankings WHERE call_id = '{call_id}' AND \"window\" = '{window}' "
               f"AND published_at = '{published_at.isoformat()}'")
    eventually(lambda: system.scalar("grants", applied) == 1, 60, 0.3, "ranking applied")


def award(staff, proposal, amount=None, client=None):
    return (client or staff["committee"]).grants.award_grant(
        proposal_id=proposal["proposal_id"], amount_eur=amount or proposal["ec_amount_requested_eur"],
        decision_reference="SC-2009-03", decision_date="2009-06-15")


def rule_of(call, *args, **kwargs) -> str:
    with pytest.raises(Conflict) as refused:
        call(*args, **kwargs)
    return refused.value.rule


def contracted(staff, grant, start_date="2009-03-01", **terms) -> dict:
    """Register the lead applicant with a validated account (four eyes) and sign the contract."""
    lead = grant["lead_applicant"]
    organisation = staff["officer"].grants.register_organisation(
        legal_name=grant["lead_organisation"], registration_number=lead["registration_number"],
        country=lead["country"], iban=MOROCCAN_IBAN, signatory="Jamal Lahlou")
    staff["approver"].grants.validate_bank_account(organisation_id=organisation["organisation_id"], iban=MOROCCAN_IBAN)
    return staff["pm"].grants.sign_contract(grant_id=grant["grant_id"], organisation_id=organisation["organisation_id"],
                                            start_date=start_date, **terms)


def pay(staff, grant_id, tranche, amount, key):
    request = staff["officer"].grants.request_payment(grant_id=grant_id, tranche_number=tranche, amount_eur=amount,
                                                      idempotency_key=key)
    return staff["approver"].grants.approve_payment(payment_id=request["payment_id"], value_date="2009-04-01",
                                                    bank_reference=f"BNK-{key}")


def report(staff, grant_id, kind, total, number=1):
    """A report whose expenditure is spread over two headings, accepted."""
    expenditure = {"human_resources": str(Decimal(total) - Decimal("1000.00")), "travel": "1000.00"}
    submitted = staff["pm"].grants.submit_report(grant_id=grant_id, kind=kind, number=number, expenditure=expenditure)
    return staff["pm"].grants.accept_report(report_id=submitted["report_id"])


def events_of(system, event_type: str, grant_id: str | None = None) -> list[dict]:
    with system.db("grants").connect() as conn:
        bodies = [json.loads(b) for (b,) in conn.execute(
            text("SELECT body FROM outbox WHERE event_type = :t ORDER BY id"), {"t": event_type})]
    return [b["data"] for b in bodies if grant_id is None or b["data"].get("grant_id") == grant_id]


def grant_event_types(system, grant_id: str) -> list[str]:
    with system.db("grants").connect() as conn:
        rows = conn.execute(text("SELECT event_type, body FROM outbox ORDER BY id")).all()
    return [t for t, body in rows if json.loads(body)["data"].get("grant_id") == grant_id]


def window_committed(system, call_id: str, window: str) -> Decimal:
    cents = system.scalar("grants", f"SELECT committed FROM window_budgets WHERE call_id = '{call_id}' "
                                    f"AND \"window\" = '{window}'")
    return Decimal(cents) / 100


def unchanged(system):
    """What a refused operation must leave as it was: the grants rows and the outbox."""
    return tuple(system.count_rows("grants", table) for table in
                 ("grants", "payments", "reports", "amendments", "organisations", "outbox"))


# --- the life of a grant --------------------------------------------------------------------------------------

def test_a_grant_from_award_through_tranches_reports_and_an_amendment_to_closure(system, staff, programme):
    proposal, = submit(system, staff, [1], window="remittances", country="MA", requested="200000.00")
    publish_ranking(system, "JMDI-2008", "remittances", [proposal])

    # refused awards change nothing
    before = unchanged(system)
    assert rule_of(award, staff, proposal, "200000.01") == "award.above_max"
    assert rule_of(award, staff, proposal, "49999.99") == "award.below_min"
    assert unchanged(system) == before and window_committed(system, "JMDI-2008", "remittances") == 0
    grant = award(staff, proposal)
    assert (grant["status"], grant["amount_eur"], grant["ranking_list"], grant["ec_share"]) == \
        ("awarded", "200000.00", "main", "0.8000")
    awarded = events_of(system, "grant_awarded", grant["grant_id"])[0]
    assert (awarded["window"], awarded["country"], awarded["amount_eur"], awarded["decision_reference"]) == \
        ("remittances", "MA", "200000.00", "SC-2009-03")
    assert rule_of(award, staff, proposal) == "award.already_awarded"

    # contract: 24 months, 120,000 + 80,000 EC budget per year -> 96,000 at signature, 64,000 after the interim
    # report, the balance after the final report
    signed = contracted(staff, grant, annual_budgets=["120000.00", "80000.00"])
    assert [(t["number"], t["kind"], t["planned_amount_eur"], t["condition"]) for t in signed["schedule"]] == [
        (1, "pre_financing", "96000.00", None), (2, "further_pre_financing", "64000.00", "interim_report:1"),
        (3, "balance", "40000.00", "final_report")]
    assert [(r["condition"], r["period_end"], r["due_date"]) for r in signed["reports_due"]] == [
        ("interim_report:1", "2010-02-28", "2010-04-29"), ("final_report", "2011-02-28", "2011-05-31")]
    assert (signed["status"], signed["end_date"]) == ("contracted", "2011-02-28")

    gid = grant["grant_id"]
    first = pay(staff, gid, 1, "96000.00", "life-1")
    assert (first["status"], first["approved_by"], first["bank_reference"]) == ("paid", "farid.finance", "BNK-life-1")
    paid = events_of(system, "tranche_paid", gid)[0]
    assert (paid["tranche_number"], paid["amount_eur"], paid["value_date"], paid["bank_reference"]) == \
        (1, "96000.00", "2009-04-01", "BNK-life-1")
    before = unchanged(system)
    assert rule_of(staff["officer"].grants.request_payment, grant_id=gid, tranche_number=2, amount_eur="64000.00",
                   idempotency_key="life-2-early") == "payment.report_required"
    assert unchanged(system) == before

    # interim report: 75,000 spent x 80% = 60,000, under 70% of the 96,000 paid -> tranche 2 cut by 36,000
    report(staff, gid, "interim", "75000.00")
    tranche2 = staff["pm"].grants.get_grant(grant_id=gid)["schedule"][1]
    assert (tranche2["condition_met"], tranche2["payable_eur"]) == (True, "28000.00")
    assert rule_of(staff["officer"].grants.request_payment, grant_id=gid, tranche_number=2, amount_eur="64000.00",
                   idempotency_key="life-2-full") == "payment.above_tranche"
    pay(staff, gid, 2, "28000.00", "life-2")

    # reallocation within 15% of a heading; more needs an amendment
    budget = {k: Decimal(v) for k, v in flows.proposal(1, requested="200000.00")["budget"].items()}
    small = {**budget, "travel": budget["travel"] + 1000, "human_resources": budget["human_resources"] - 1000}
    large = {**budget, "travel": budget["travel"] + 10000, "human_resources": budget["human_resources"] - 10000}
    moved = staff["pm"].grants.reallocate_budget(grant_id=gid, new_budget={k: str(v) for k, v in small.items()},
                                                 reason="more field visits")
    assert moved["budget"]["travel"] == str(small["travel"])
    refused = rule_of(staff["pm"].grants.reallocate_budget, grant_id=gid,
                      new_budget={k: str(v) for k, v in large.items()})
    assert refused == "reallocation.amendment_required"
    assert rule_of(staff["committee"].grants.amend_grant, grant_id=gid, kind="amount", reason="more",
                   new_amount_eur="200000.01") == "amendment.above_call_max"
    amended = staff["committee"].grants.amend_grant(grant_id=gid, kind="budget", reason="revised activity plan",
                                                    new_budget={k: str(v) for k, v in large.items()})
    assert amended["contract_budget"]["travel"] == str(large["travel"]) and amended["amount_eur"] == "200000.00"
    assert [e["kind"] for e in events_of(system, "grant_amended", gid)] == ["reallocation", "budget"]

    # final report: accepted 75,000 + 150,000 = 225,000 x 80% = 180,000 owed; 124,000 paid -> balance 56,000
    assert rule_of(staff["officer"].grants.request_payment, grant_id=gid, tranche_number=3, amount_eur="40000.00",
                   idempotency_key="life-3-early") == "payment.report_required"
    report(staff, gid, "final", "150000.00")
    assert rule_of(staff["pm"].grants.close_grant, grant_id=gid) == "closure.final_payment_pending"
    assert staff["pm"].grants.get_grant(grant_id=gid)["schedule"][2]["payable_eur"] == "56000.00"
    pay(staff, gid, 3, "56000.00", "life-3")
    closed = staff["pm"].grants.close_grant(grant_id=gid)
    assert (closed["status"], closed["paid_eur"], closed["closure"]["kind"], closed["closure"]["recovery_eur"]) == \
        ("closed", "180000.00", "final_payment", "0.00")
    assert [r["status"] for r in closed["reports_due"]] == ["accepted", "accepted"]
    assert grant_event_types(system, gid) == [
        "grant_awarded", "contract_signed", "payment_requested", "tranche_paid", "report_submitted",
        "report_accepted", "payment_requested", "tranche_paid", "grant_amended", "grant_amended",
        "report_submitted", "report_accepted", "payment_requested", "tranche_paid", "grant_closed"]
    ledger = {g["grant_id"]: g for g in staff["auditor"].grants.ledger(programme_id="JMDI")["grants"]}
    assert (ledger[gid]["committed_eur"], ledger[gid]["paid_eur"]) == ("200000.00", "180000.00")
    assert rule_of(staff["officer"].grants.request_payment, grant_id=gid, tranche_number=3, amount_eur="1.00",
                   idempotency_key="after-closure") == "grant.invalid_state"


def test_closing_with_a_recovery_order_when_expenditure_falls_short(system, staff, programme):
    proposal, = submit(system, staff, [2], window="migrants_rights", country="SN", requested="90000.00")
    publish_ranking(system, "JMDI-2008", "migrants_rights", [proposal])
    grant = award(staff, proposal)
    # 12 months and EUR 90,000: PRAG option 1, 80% at signature and the balance after the final report
    signed = contracted(staff, grant, duration_months=12)
    assert [t["planned_amount_eur"] for t in signed["schedule"]] == ["72000.00", "18000.00"]
    pay(staff, grant["grant_id"], 1, "72000.00", "recovery-1")
    report(staff, grant["grant_id"], "final", "50000.00")   # 50,000 x 80% = 40,000 owed of the 72,000 paid
    closed = staff["pm"].grants.close_grant(grant_id=grant["grant_id"])
    assert (closed["closure"]["kind"], closed["closure"]["recovery_eur"]) == ("recovery", "32000.00")
    event = events_of(system, "grant_closed", grant["grant_id"])[0]
    assert (event["kind"], event["paid_eur"], event["accepted_expenditure_eur"], event["recovery_eur"]) == \
        ("recovery", "72000.00", "50000.00", "32000.00")


def test_a_reserve_proposal_takes_the_place_of_a_declined_grant_in_rank_order(system, staff, programme):
    main, first, second = submit(system, staff, [3, 4, 5], window="migrant_communities", requested="150000.00")
    publish_ranking(system, "JMDI-2008", "migrant_communities", [main], reserve=[first, second])
    assert rule_of(award, staff, first) == "award.reserve_not_open"
    grant = award(staff, main)
    declined = staff["pm"].grants.decline_grant(grant_id=grant["grant_id"], reason="the consortium dissolved")
    assert (declined["status"], declined["next_reserve_proposal_id"]) == ("declined", first["proposal_id"])
    assert window_committed(system, "JMDI-2008", "migrant_communities") == 0
    assert events_of(system, "grant_closed", grant["grant_id"])[0]["kind"] == "declined"
    assert rule_of(award, staff, second) == "award.reserve_out_of_order"
    assert award(staff, first)["ranking_list"] == "reserve"
    assert rule_of(award, staff, second) == "award.reserve_not_open"   # one place per declined grant
    assert window_committed(system, "JMDI-2008", "migrant_communities") == Decimal("150000.00")
    ledger = {g["grant_id"]: g for g in staff["auditor"].grants.ledger()["grants"]}
    assert ledger[grant["grant_id"]]["committed_eur"] == "0.00"


def test_rejection_with_reasons_and_proposals_that_cannot_be_awarded(system, staff, programme):
    ranked, unranked = submit(system, staff, [6, 7], window="remittances", requested="100000.00")
    rejected = staff["committee"].grants.reject_proposal(proposal_id=ranked["proposal_id"],
                                                         reasons=["budget not cost-effective"],
                                                         decision_reference="SC-2009-03")
    assert (rejected["status"], rejected["reasons"]) == ("rejected", ["budget not cost-effective"])
    event = events_of(system, "proposal_rejected")[-1]
    assert (event["proposal_id"], event["reasons"]) == (ranked["proposal_id"], ["budget not cost-effective"])
    assert rule_of(staff["committee"].grants.reject_proposal, proposal_id=ranked["proposal_id"],
                   reasons=["again"]) == "proposal.already_rejected"
    assert rule_of(award, staff, ranked) == "award.proposal_rejected"
    assert rule_of(award, staff, unranked) == "award.not_ranked"
    with pytest.raises(NotFound):
        award(staff, {"proposal_id": "no-such-proposal", "ec_amount_requested_eur": "100000.00"})


def test_bad_input_names_the_fields_and_roles_are_enforced(system, staff, programme):
    before = unchanged(system)
    with pytest.raises(InvalidInput) as refused:
        staff["committee"].grants.award_grant(proposal_id="x", amount_eur=100000.5, decision_date="15/06/2009",
                                              colour="blue")
    assert {"amount_eur", "decision_date", "decision_reference", "colour"} <= set(refused.value.errors)
    with pytest.raises(InvalidInput) as refused:
        staff["officer"].grants.register_organisation(legal_name="Org", registration_number="R-1", country="MA",
                                                      iban="MA64 0115 1900 0001 2050 0053 4922", signatory="S")
    assert "checksum" in str(refused.value.errors["iban"])
    with pytest.raises(InvalidInput) as refused:
        staff["pm"].grants.submit_report(grant_id="g", kind="annual", expenditure={"catering": "10.00"})
    assert {"kind", "expenditure"} <= set(refused.value.errors)
    with pytest.raises(InvalidInput) as refused:
        staff["pm"].grants.amend_grant(grant_id="g", kind="amount", reason="more")
    assert "new_amount_eur" in refused.value.errors
    with pytest.raises(NotAllowed):
        staff["officer"].grants.approve_payment(payment_id="p", value_date="2009-04-01", bank_reference="B")
    with pytest.raises(NotAllowed):
        staff["auditor"].grants.award_grant(proposal_id="x", amount_eur="100000.00", decision_reference="SC",
                                            decision_date="2009-06-15")
    assert unchanged(system) == before


# --- payments: organisation register, four eyes, idempotency under concurrency --------------------------------

def test_payments_need_a_validated_account_four_eyes_and_pay_once_under_concurrent_retries(system, staff, programme):
    proposal, = submit(system, staff, [8], window="migrant_associations", country="PH", requested="120000.00")
    publish_ranking(system, "JMDI-2008", "migrant_associations", [proposal])
    grant = award(staff, proposal)
    gid, lead = grant["grant_id"], grant["lead_applicant"]
    other = staff["officer"].grants.register_organisation(legal_name="Someone Else", registration_number="X-1",
                                                          country="PH", iban=MOROCCAN_IBAN, signatory="S")
    assert rule_of(staff["pm"].grants.sign_contract, grant_id=gid, organisation_id=other["organisation_id"],
                   start_date="2009-03-01") == "contract.organisation_not_lead"
    organisation = staff["officer"].grants.register_organisation(
        legal_name=grant["lead_organisation"], registration_number=lead["registration_number"], country=lead["country"],
        iban=MOROCCAN_IBAN, signatory="Maria Santos")
    staff["pm"].grants.sign_contract(grant_id=gid, organisation_id=organisation["organisation_id"],
                                     start_date="2009-03-01", annual_budgets=["60000.00", "60000.00"])
    assert rule_of(staff["officer"].grants.request_payment, grant_id=gid, tranche_number=1, amount_eur="48000.00",
                   idempotency_key="assoc-early") == "payment.no_validated_account"
    # the person who registered the account may not validate it, and the IBAN checked must be the registered one
    dual = system.client("nadia.dual", ["finance_officer", "finance_approver"])
    mine = dual.grants.register_organisation(legal_name="Dual Org", registration_number="D-1", country="PH",
                                             iban=MOROCCAN_IBAN, signatory="S")
    assert rule_of(dual.grants.validate_bank_account, organisation_id=mine["organisation_id"],
                   iban=MOROCCAN_IBAN) == "organisation.four_eyes"
    assert rule_of(staff["approver"].grants.validate_bank_account, organisation_id=organisation["organisation_id"],
                   iban="DE89 3704 0044 0532 0130 00") == "organisation.iban_mismatch"
    staff["approver"].grants.validate_bank_account(organisation_id=organisation["organisation_id"], iban=MOROCCAN_IBAN)

    # ten concurrent retries of one request (each thread its own connection): one request, one event
    results, errors = run_together(10, lambda i, client: client.grants.request_payment(
        grant_id=gid, tranche_number=1, amount_eur="48000.00", idempotency_key="assoc-1"),
        lambda: system.client("nadia.dual", ["finance_officer", "finance_approver"]))
    assert errors == [] and len({r["payment_id"] for r in results}) == 1
    payment_id = results[0]["payment_id"]
    assert system.scalar("grants", f"SELECT count(*) FROM payments WHERE grant_id = '{gid}'") == 1
    assert len(events_of(system, "payment_requested", gid)) == 1
    assert rule_of(dual.grants.request_payment, grant_id=gid, tranche_number=1, amount_eur="47000.00",
                   idempotency_key="assoc-1") == "payment.key_reused"

    # four eyes on the caller's identity: the requester cannot approve, whatever roles they hold
    before = unchanged(system)
    assert rule_of(dual.grants.approve_payment, payment_id=payment_id, value_date="2009-04-01",
                   bank_reference="BNK-A1") == "payment.four_eyes"
    assert unchanged(system) == before

    # concurrent approvals (a retried approval): paid once
    results, errors = run_together(5, lambda i, client: client.grants.approve_payment(
        payment_id=payment_id, value_date="2009-04-01", bank_reference="BNK-A1"),
        lambda: system.client("farid.finance", ["finance_approver"]))
    assert errors == [] and {r["status"] for r in results} == {"paid"}
    assert len(events_of(system, "tranche_paid", gid)) == 1
    assert staff["auditor"].grants.get_grant(grant_id=gid)["paid_eur"] == "48000.00"
    assert rule_of(staff["approver"].grants.approve_payment, payment_id=payment_id, value_date="2009-04-02",
                   bank_reference="BNK-OTHER") == "payment.not_pending"
    payments = staff["auditor"].grants.list_payments(grant_id=gid)
    assert [(p["tranche_number"], p["status"], p["requested_by"], p["approved_by"]) for p in payments] == \
        [(1, "paid", "nadia.dual", "farid.finance")]


# --- the budget guard under concurrency -----------------------------------------------------------------------

def test_fifty_parallel_awards_never_overspend_a_window(system, staff, programme):
    # its own programme: the calls service numbers references per programme, year and country but counts them per
    # call, so a second call of one programme in one year collides with the first (reported to calls)
    staff["pm"].calls.load_programme(programme=flows.programme("RACE"))
    staff["pm"].calls.create_call(**flows.call("RACE-2008", programme_id="RACE", allocation="400000.00"))
    open_call(system, staff, "RACE-2008")
    big, = submit(system, staff, [100], call_id="RACE-2008", window="remittances", requested="200000.00")
    racers = submit(system, staff, range(101, 151), call_id="RACE-2008", window="remittances", requested="50000.00")
    publish_ranking(system, "RACE-2008", "remittances", [big, *racers])
    award(staff, big)   # the window's last EUR 200,000 remain

    results, errors = run_together(50, lambda i, client: award(staff, racers[i], client=client),
                                   lambda: system.client("steering.committee", ["committee"]))
    assert len(results) == 4   # exactly the awards that fit: 4 x 50,000
    assert len(errors) == 46 and {e.rule for e in errors} == {"award.window_allocation_exceeded"}
    assert window_committed(system, "RACE-2008", "remittances") == Decimal("400000.00")
    granted = system.scalar("grants", "SELECT sum(amount) FROM grants WHERE call_id = 'RACE-2008' "
                                      "AND status <> 'declined'")
    assert Decimal(granted) / 100 == Decimal("400000.00")
    race_awards = [e for e in events_of(system, "grant_awarded") if e["call_id"] == "RACE-2008"]
    assert len(race_awards) == 5


def run_together(count: int, action, new_client):
    """Run action(i, client) in `count` threads released at once, each with its own client."""
    clients = [new_client() for _ in range(count)]
    barrier = threading.Barrier(count)
    results, errors, lock = [], [], threading.Lock()

    def worker(i):
        barrier.wait()
        try:
            outcome, bucket = action(i, clients[i]), results
        except Conflict as exc:
            outcome, bucket = exc, errors
        with lock:
            bucket.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) + len(errors) == count, "every call answered"
    return results, errors
