"""The grants service on the real broker and PostgreSQL: from award to closure, reserve awards, the organisation
register, payments under four eyes, and the budget guards under concurrency.

Proposals come from the calls service (submit_proposal) on a call closing at the end of today, so awards are
dated today; a grant that must live through its reporting periods belongs to the call of 2008, which closed long
ago (tests/support/history.py). Rankings are published onto the calls exchange exactly as the calls service sends
ranking_published. Payments are made today: a value date is never before the request.
"""

import base64
import io
import json
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from kombu import Connection, Exchange, Producer
from openpyxl import load_workbook
from sqlalchemy import text

from services.common.contracts.events import make_event
from services.common.contracts.topology import exchange_name
from services.common.runtime.config import REPO_ROOT
from services.common.values.errors import Conflict, InvalidInput, NotAllowed, NotFound
from services.reporting.exports import iati
from tests.support import flows
from tests.support.history import past_call, past_proposals
from tests.support.infra import eventually

pytestmark = pytest.mark.integration

MOROCCAN_IBAN = "MA64 0115 1900 0001 2050 0053 4921"
_accounts = iter(range(1, 10**6))


def new_iban() -> str:
    """Each organisation its own account (a shared one is flagged to finance)."""
    return flows.iban(next(_accounts))


PAST = "JMDI-2008-PAST"  # the call of 2008, closed on 2009-03-31


def today() -> date:
    return datetime.now(timezone.utc).date()


@pytest.fixture(scope="module")
def staff(system):
    return {
        "pm": system.client("maria.pm", ["programme_manager"]),
        "pm2": system.client("karim.pm", ["programme_manager"]),  # the second person where money moves
        "committee": system.client("steering.committee", ["committee"]),
        "committee2": system.client("ngozi.committee", ["committee"]),
        "officer": system.client("omar.officer", ["finance_officer"]),
        "approver": system.client("farid.finance", ["finance_approver"]),
        "auditor": system.client("anna.auditor", ["auditor"]),
    }


@pytest.fixture(scope="module")
def programme(system, staff):
    staff["pm"].calls.load_programme(programme=flows.programme())
    staff["pm"].calls.create_call(**flows.call())
    open_call(system, staff, "JMDI-2008")
    past_call(system, PAST)
    return "JMDI"


# --- helpers --------------------------------------------------------------------------------------------------


def open_call(system, staff, call_id: str):
    """Open a call and wait until grants has it: its proposals are budgeted against it (and retried until then)."""
    staff["pm"].calls.open_call(call_id=call_id)
    eventually(
        lambda: system.scalar("grants", f"SELECT count(*) FROM calls WHERE call_id = '{call_id}'") == 1,
        60,
        0.3,
        f"grants knows {call_id}",
    )


def submit(system, staff, numbers, **kwargs) -> list[dict]:
    """Submit proposals through the calls service and wait until grants has its copies."""
    proposals = [staff["pm"].calls.submit_proposal(**flows.proposal(n, **kwargs)) for n in numbers]
    ids = ", ".join(f"'{p['proposal_id']}'" for p in proposals)
    eventually(
        lambda: (
            system.scalar("grants", f"SELECT count(*) FROM proposals WHERE proposal_id IN ({ids})") == len(proposals)
        ),
        60,
        0.3,
        "grants copies of the proposals",
    )
    return proposals


def publish_ranking(system, call_id: str, window: str, main, reserve=(), threshold="60.00"):
    """ranking_published onto the calls exchange, as the calls service sends it; waits until grants applied it."""

    def entries(proposals, first_rank):
        return [
            {
                "proposal_id": p["proposal_id"],
                "reference": p["reference"],
                "rank": rank,
                "score": Decimal("90.00") - Decimal(rank) / 2,
                "country": p["target_country"],
                "ec_amount_requested_eur": Decimal(p["ec_amount_requested_eur"]),
            }
            for rank, p in enumerate(proposals, start=first_rank)
        ]

    published_at = datetime.now(timezone.utc)
    event = make_event(
        "ranking_published",
        {
            "call_id": call_id,
            "window": window,
            "threshold": Decimal(threshold),
            "main": entries(main, 1),
            "reserve": entries(reserve, len(main) + 1),
            "excluded": [],
            "published_at": published_at,
        },
        producer="calls",
    )
    with Connection(system.amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=Exchange(exchange_name("calls"), type="topic", durable=True))
        producer.publish(
            json.dumps(event.body),
            routing_key="ranking_published",
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
        )
    applied = (
        f"SELECT count(*) FROM rankings WHERE call_id = '{call_id}' AND \"window\" = '{window}' "
        f"AND published_at = '{published_at.isoformat()}'"
    )
    eventually(lambda: system.scalar("grants", applied) == 1, 60, 0.3, "ranking applied")


def award(staff, proposal, amount=None, client=None, **dated):
    """The steering committee's award, dated today unless `decision_date` is given."""
    return (client or staff["committee"]).grants.award_grant(
        proposal_id=proposal["proposal_id"],
        amount_eur=amount or proposal["ec_amount_requested_eur"],
        decision_reference="SC-2009-03",
        **dated,
    )


def rule_of(call, *args, **kwargs) -> str:
    with pytest.raises(Conflict) as refused:
        call(*args, **kwargs)
    return refused.value.rule


def contracted(staff, grant, **terms) -> dict:
    """Register the lead applicant with a validated account (four eyes) and sign the contract (starting today
    unless `start_date` is given)."""
    lead, account = grant["lead_applicant"], new_iban()
    organisation = staff["officer"].grants.register_organisation(
        legal_name=grant["lead_organisation"],
        registration_number=lead["registration_number"],
        country=lead["country"],
        iban=account,
        signatory="Jamal Lahlou",
    )
    staff["approver"].grants.validate_bank_account(organisation_id=organisation["organisation_id"], iban=account)
    return staff["pm"].grants.sign_contract(
        grant_id=grant["grant_id"], organisation_id=organisation["organisation_id"], **terms
    )


def pay(staff, grant_id, tranche, amount, key):
    request = staff["officer"].grants.request_payment(
        grant_id=grant_id, tranche_number=tranche, amount_eur=amount, idempotency_key=key
    )
    return staff["approver"].grants.approve_payment(payment_id=request["payment_id"], bank_reference=f"BNK-{key}")


def report(staff, grant_id, kind, total, number=1):
    """A report whose expenditure is spread over two headings, accepted by another person (it unlocks a tranche)."""
    expenditure = {"human_resources": str(Decimal(total) - Decimal("1000.00")), "travel": "1000.00"}
    submitted = staff["pm"].grants.submit_report(grant_id=grant_id, kind=kind, number=number, expenditure=expenditure)
    return staff["pm2"].grants.accept_report(report_id=submitted["report_id"])


def events_of(system, event_type: str, grant_id: str | None = None) -> list[dict]:
    with system.db("grants").connect() as conn:
        bodies = [
            json.loads(b)
            for (b,) in conn.execute(
                text("SELECT body FROM outbox WHERE event_type = :t ORDER BY id"), {"t": event_type}
            )
        ]
    return [b["data"] for b in bodies if grant_id is None or b["data"].get("grant_id") == grant_id]


def grant_event_types(system, grant_id: str) -> list[str]:
    with system.db("grants").connect() as conn:
        rows = conn.execute(text("SELECT event_type, body FROM outbox ORDER BY id")).all()
    return [t for t, body in rows if json.loads(body)["data"].get("grant_id") == grant_id]


def window_committed(system, call_id: str, window: str) -> Decimal:
    cents = system.scalar(
        "grants", f"SELECT committed FROM window_budgets WHERE call_id = '{call_id}' AND \"window\" = '{window}'"
    )
    return Decimal(cents) / 100


def unchanged(system):
    """What a refused operation must leave as it was: the grants rows and the outbox."""
    return tuple(
        system.count_rows("grants", table)
        for table in ("grants", "payments", "reports", "amendments", "organisations", "outbox")
    )


# --- the life of a grant --------------------------------------------------------------------------------------


def test_a_grant_from_award_through_tranches_reports_and_an_amendment_to_closure(system, staff, programme):
    (proposal,) = past_proposals(system, PAST, [1], window="remittances", country="MA", requested="200000.00")
    publish_ranking(system, PAST, "remittances", [proposal])

    # refused awards change nothing
    before = unchanged(system)
    assert rule_of(award, staff, proposal, "200000.01") == "award.above_max"
    assert rule_of(award, staff, proposal, "49999.99") == "award.below_min"
    assert unchanged(system) == before and window_committed(system, PAST, "remittances") == 0
    grant = award(staff, proposal, decision_date="2009-06-15")
    assert (grant["status"], grant["amount_eur"], grant["ranking_list"], grant["ec_share"]) == (
        "awarded",
        "200000.00",
        "main",
        "0.8000",
    )
    awarded = events_of(system, "grant_awarded", grant["grant_id"])[0]
    assert (awarded["window"], awarded["country"], awarded["amount_eur"], awarded["decision_reference"]) == (
        "remittances",
        "MA",
        "200000.00",
        "SC-2009-03",
    )
    assert rule_of(award, staff, proposal, decision_date="2009-06-15") == "award.already_awarded"

    # contract: 24 months, 120,000 + 80,000 EC budget per year -> 96,000 at signature, 64,000 after the interim
    # report, the balance after the final report
    signed = contracted(staff, grant, start_date="2009-07-01", annual_budgets=["120000.00", "80000.00"])
    assert [(t["number"], t["kind"], t["planned_amount_eur"], t["condition"]) for t in signed["schedule"]] == [
        (1, "pre_financing", "96000.00", None),
        (2, "further_pre_financing", "64000.00", "interim_report:1"),
        (3, "balance", "40000.00", "final_report"),
    ]
    assert [(r["condition"], r["period_end"], r["due_date"]) for r in signed["reports_due"]] == [
        ("interim_report:1", "2010-06-30", "2010-08-29"),
        ("final_report", "2011-06-30", "2011-09-30"),
    ]
    assert (signed["status"], signed["end_date"]) == ("contracted", "2011-06-30")

    gid = grant["grant_id"]
    first = pay(staff, gid, 1, "96000.00", "life-1")
    assert (first["status"], first["approved_by"], first["bank_reference"]) == ("paid", "farid.finance", "BNK-life-1")
    paid = events_of(system, "tranche_paid", gid)[0]
    assert (paid["tranche_number"], paid["amount_eur"], paid["value_date"], paid["bank_reference"]) == (
        1,
        "96000.00",
        today().isoformat(),
        "BNK-life-1",
    )  # paid the day it is approved
    before = unchanged(system)
    assert (
        rule_of(
            staff["officer"].grants.request_payment,
            grant_id=gid,
            tranche_number=2,
            amount_eur="64000.00",
            idempotency_key="life-2-early",
        )
        == "payment.report_required"
    )
    assert unchanged(system) == before

    # interim report: 75,000 spent x 80% = 60,000, under 70% of the 96,000 paid -> tranche 2 cut by 36,000
    report(staff, gid, "interim", "75000.00")
    tranche2 = staff["pm"].grants.get_grant(grant_id=gid)["schedule"][1]
    assert (tranche2["condition_met"], tranche2["payable_eur"]) == (True, "28000.00")
    assert (
        rule_of(
            staff["officer"].grants.request_payment,
            grant_id=gid,
            tranche_number=2,
            amount_eur="64000.00",
            idempotency_key="life-2-full",
        )
        == "payment.above_tranche"
    )
    pay(staff, gid, 2, "28000.00", "life-2")

    # reallocation within 15% of a heading; more needs an amendment
    budget = {k: Decimal(v) for k, v in flows.proposal(1, requested="200000.00")["budget"].items()}
    small = {**budget, "travel": budget["travel"] + 1000, "human_resources": budget["human_resources"] - 1000}
    large = {**budget, "travel": budget["travel"] + 10000, "human_resources": budget["human_resources"] - 10000}
    moved = staff["pm"].grants.reallocate_budget(
        grant_id=gid, new_budget={k: str(v) for k, v in small.items()}, reason="more field visits"
    )
    assert moved["budget"]["travel"] == str(small["travel"])
    refused = rule_of(
        staff["pm"].grants.reallocate_budget, grant_id=gid, new_budget={k: str(v) for k, v in large.items()}
    )
    assert refused == "reallocation.amendment_required"
    assert (
        rule_of(
            staff["committee"].grants.amend_grant,
            grant_id=gid,
            kind="amount",
            reason="more",
            new_amount_eur="200000.01",
        )
        == "amendment.above_call_max"
    )
    amended = staff["committee"].grants.amend_grant(
        grant_id=gid, kind="budget", reason="revised activity plan", new_budget={k: str(v) for k, v in large.items()}
    )
    assert amended["contract_budget"]["travel"] == str(large["travel"]) and amended["amount_eur"] == "200000.00"
    assert [e["kind"] for e in events_of(system, "grant_amended", gid)] == ["reallocation", "budget"]

    # final report: accepted 75,000 + 150,000 = 225,000 x 80% = 180,000 owed; 124,000 paid -> balance 56,000
    assert (
        rule_of(
            staff["officer"].grants.request_payment,
            grant_id=gid,
            tranche_number=3,
            amount_eur="40000.00",
            idempotency_key="life-3-early",
        )
        == "payment.report_required"
    )
    report(staff, gid, "final", "150000.00")
    assert rule_of(staff["pm"].grants.close_grant, grant_id=gid) == "closure.final_payment_pending"
    assert staff["pm"].grants.get_grant(grant_id=gid)["schedule"][2]["payable_eur"] == "56000.00"
    pay(staff, gid, 3, "56000.00", "life-3")
    closed = staff["pm"].grants.close_grant(grant_id=gid)
    assert (closed["status"], closed["paid_eur"], closed["closure"]["kind"], closed["closure"]["recovery_eur"]) == (
        "closed",
        "180000.00",
        "final_payment",
        "0.00",
    )
    assert [r["status"] for r in closed["reports_due"]] == ["accepted", "accepted"]
    assert grant_event_types(system, gid) == [
        "grant_awarded",
        "contract_signed",
        "payment_requested",
        "tranche_paid",
        "report_submitted",
        "report_accepted",
        "payment_requested",
        "tranche_paid",
        "grant_amended",
        "grant_amended",
        "report_submitted",
        "report_accepted",
        "payment_requested",
        "tranche_paid",
        "grant_closed",
        "grant_decommitted",
    ]
    # the 20,000 of the award the grant did not earn goes back to the window
    assert (closed["committed_eur"], closed["decommitted_eur"]) == ("180000.00", "20000.00")
    assert window_committed(system, PAST, "remittances") == Decimal("180000.00")
    ledger = {g["grant_id"]: g for g in staff["auditor"].grants.ledger(programme_id="JMDI")["grants"]}
    assert (
        ledger[gid]["awarded_eur"],
        ledger[gid]["committed_eur"],
        ledger[gid]["decommitted_eur"],
        ledger[gid]["paid_eur"],
    ) == ("200000.00", "180000.00", "20000.00", "180000.00")
    assert (
        rule_of(
            staff["officer"].grants.request_payment,
            grant_id=gid,
            tranche_number=3,
            amount_eur="1.00",
            idempotency_key="after-closure",
        )
        == "grant.invalid_state"
    )


def test_closing_with_a_recovery_order_when_expenditure_falls_short(system, staff, programme):
    (proposal,) = past_proposals(system, PAST, [2], window="migrants_rights", country="SN", requested="90000.00")
    publish_ranking(system, PAST, "migrants_rights", [proposal])
    grant = award(staff, proposal, decision_date="2009-06-20")
    # 12 months and EUR 90,000: PRAG option 1, 80% at signature and the balance after the final report
    signed = contracted(staff, grant, start_date="2009-07-01", duration_months=12)
    assert [t["planned_amount_eur"] for t in signed["schedule"]] == ["72000.00", "18000.00"]
    pay(staff, grant["grant_id"], 1, "72000.00", "recovery-1")
    report(staff, grant["grant_id"], "final", "50000.00")  # 50,000 x 80% = 40,000 owed of the 72,000 paid
    closed = staff["pm"].grants.close_grant(grant_id=grant["grant_id"])
    assert (closed["closure"]["kind"], closed["closure"]["recovery_eur"]) == ("recovery", "32000.00")
    event = events_of(system, "grant_closed", grant["grant_id"])[0]
    assert (event["kind"], event["paid_eur"], event["accepted_expenditure_eur"], event["recovery_eur"]) == (
        "recovery",
        "72000.00",
        "50000.00",
        "32000.00",
    )


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
    assert rule_of(award, staff, second) == "award.reserve_not_open"  # one place per declined grant
    assert window_committed(system, "JMDI-2008", "migrant_communities") == Decimal("150000.00")
    ledger = {g["grant_id"]: g for g in staff["auditor"].grants.ledger()["grants"]}
    assert ledger[grant["grant_id"]]["committed_eur"] == "0.00"


def test_rejection_with_reasons_and_proposals_that_cannot_be_awarded(system, staff, programme):
    ranked, unranked = submit(system, staff, [6, 7], window="remittances", requested="100000.00")
    rejected = staff["committee"].grants.reject_proposal(
        proposal_id=ranked["proposal_id"], reasons=["budget not cost-effective"], decision_reference="SC-2009-03"
    )
    assert (rejected["status"], rejected["reasons"]) == ("rejected", ["budget not cost-effective"])
    event = events_of(system, "proposal_rejected")[-1]
    assert (event["proposal_id"], event["reasons"]) == (ranked["proposal_id"], ["budget not cost-effective"])
    assert (
        rule_of(staff["committee"].grants.reject_proposal, proposal_id=ranked["proposal_id"], reasons=["again"])
        == "proposal.already_rejected"
    )
    assert rule_of(award, staff, ranked) == "award.proposal_rejected"
    assert rule_of(award, staff, unranked) == "award.not_ranked"
    with pytest.raises(NotFound):
        award(staff, {"proposal_id": "no-such-proposal", "ec_amount_requested_eur": "100000.00"})


def test_bad_input_names_the_fields_and_roles_are_enforced(system, staff, programme):
    before = unchanged(system)
    with pytest.raises(InvalidInput) as refused:
        staff["committee"].grants.award_grant(
            proposal_id="x", amount_eur=100000.5, decision_date="15/06/2009", colour="blue"
        )
    assert {"amount_eur", "decision_date", "decision_reference", "colour"} <= set(refused.value.errors)
    with pytest.raises(InvalidInput) as refused:
        staff["officer"].grants.register_organisation(
            legal_name="Org",
            registration_number="R-1",
            country="MA",
            iban="MA64 0115 1900 0001 2050 0053 4922",
            signatory="S",
        )
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
        staff["auditor"].grants.award_grant(
            proposal_id="x", amount_eur="100000.00", decision_reference="SC", decision_date="2009-06-15"
        )
    assert unchanged(system) == before


# --- dates: programme period and the chain call closed ≤ award ≤ contract ≤ request ≤ value date ---------------


def test_dates_out_of_their_chain_are_refused_by_name_and_change_nothing(system, staff, programme):
    # a call whose deadline is still ahead: no award can be dated before it closes
    staff["pm"].calls.create_call(**flows.call("LATER-2008", deadline_in=timedelta(days=3)))
    open_call(system, staff, "LATER-2008")
    (early,) = submit(system, staff, [20], call_id="LATER-2008", window="remittances", requested="100000.00")
    publish_ranking(system, "LATER-2008", "remittances", [early])
    before = unchanged(system)
    assert rule_of(award, staff, early) == "award.before_call_closed"

    (proposal,) = submit(system, staff, [21], window="migrant_associations", requested="100000.00")
    publish_ranking(system, "JMDI-2008", "migrant_associations", [proposal])
    tomorrow = (today() + timedelta(days=1)).isoformat()
    assert rule_of(award, staff, proposal, decision_date=tomorrow) == "award.decision_in_future"
    assert rule_of(award, staff, proposal, decision_date="2031-01-01") == "award.decision_in_future"
    assert rule_of(award, staff, proposal, decision_date="2009-06-15") == "award.before_call_closed"
    assert unchanged(system) == before
    grant = award(staff, proposal)
    assert grant["decision_date"] == today().isoformat()  # the day it is recorded, when not given

    yesterday = (today() - timedelta(days=1)).isoformat()
    lead, account = grant["lead_applicant"], new_iban()
    organisation = staff["officer"].grants.register_organisation(
        legal_name=grant["lead_organisation"],
        registration_number=lead["registration_number"],
        country=lead["country"],
        iban=account,
        signatory="Director",
    )
    staff["approver"].grants.validate_bank_account(organisation_id=organisation["organisation_id"], iban=account)
    sign = dict(grant_id=grant["grant_id"], organisation_id=organisation["organisation_id"])
    before = unchanged(system)
    assert rule_of(staff["pm"].grants.sign_contract, **sign, start_date=yesterday) == "contract.starts_before_award"
    programme_end = date.fromisoformat(staff["pm"].calls.get_programme(programme_id="JMDI")["period"]["end"])
    assert (
        rule_of(staff["pm"].grants.sign_contract, **sign, start_date=programme_end.isoformat(), duration_months=12)
        == "contract.ends_after_programme"
    )
    assert (
        rule_of(staff["pm"].grants.sign_contract, **sign, start_date=(programme_end + timedelta(days=1)).isoformat())
        == "contract.outside_programme_period"
    )
    assert unchanged(system) == before
    signed = staff["pm"].grants.sign_contract(**sign, start_date=(today() + timedelta(days=10)).isoformat())
    assert signed["start_date"] == (today() + timedelta(days=10)).isoformat()  # a later start is a plan

    request = staff["officer"].grants.request_payment(
        grant_id=grant["grant_id"],
        tranche_number=1,
        amount_eur=signed["schedule"][0]["payable_eur"],
        idempotency_key="dates-1",
    )
    approve = dict(payment_id=request["payment_id"], bank_reference="BNK-DATES-1")
    before = unchanged(system)
    assert (
        rule_of(staff["approver"].grants.approve_payment, **approve, value_date=tomorrow)
        == "payment.value_date_in_future"
    )
    assert (
        rule_of(staff["approver"].grants.approve_payment, **approve, value_date=yesterday)
        == "payment.value_date_before_request"
    )
    assert unchanged(system) == before
    assert staff["approver"].grants.approve_payment(**approve)["value_date"] == today().isoformat()


def test_a_calls_own_rules_hold_at_amendment_as_they_held_at_submission(system, staff, programme):
    """call_opened carries the call's Annex III caps and longest duration: a call that allows 30 months (its
    profile, 36) refuses a 36-month duration amendment in grants as calls refused a 36-month proposal."""
    staff["pm"].calls.create_call(**flows.call("SHORT-2008"), max_duration_months=30)
    open_call(system, staff, "SHORT-2008")
    with system.db("grants").connect() as conn:
        rules = conn.execute(
            text("SELECT contingency_cap, indirect_cap, max_duration_months FROM calls WHERE call_id = 'SHORT-2008'")
        ).one()
    assert tuple(rules) == (Decimal("0.0500"), Decimal("0.0700"), 30)
    (proposal,) = submit(system, staff, [22], call_id="SHORT-2008", window="remittances", requested="100000.00")
    publish_ranking(system, "SHORT-2008", "remittances", [proposal])
    grant = award(staff, proposal)
    contracted(staff, grant, start_date=(today() + timedelta(days=10)).isoformat())
    before = unchanged(system)
    assert (
        rule_of(
            staff["pm"].grants.amend_grant,
            grant_id=grant["grant_id"],
            kind="duration",
            new_duration_months=36,
            reason="a longer action",
        )
        == "amendment.above_max_duration"
    )
    assert unchanged(system) == before
    amended = staff["pm"].grants.amend_grant(
        grant_id=grant["grant_id"], kind="duration", new_duration_months=30, reason="a longer action"
    )
    assert amended["duration_months"] == 30


# --- payments: organisation register, four eyes, idempotency under concurrency --------------------------------


def test_payments_need_a_validated_account_four_eyes_and_pay_once_under_concurrent_retries(system, staff, programme):
    (proposal,) = submit(system, staff, [8], window="migrant_associations", country="PH", requested="120000.00")
    publish_ranking(system, "JMDI-2008", "migrant_associations", [proposal])
    grant = award(staff, proposal)
    gid, lead = grant["grant_id"], grant["lead_applicant"]
    other = staff["officer"].grants.register_organisation(
        legal_name="Someone Else", registration_number="X-1", country="PH", iban=new_iban(), signatory="S"
    )
    assert (
        rule_of(staff["pm"].grants.sign_contract, grant_id=gid, organisation_id=other["organisation_id"])
        == "contract.organisation_not_lead"
    )
    organisation = staff["officer"].grants.register_organisation(
        legal_name=grant["lead_organisation"],
        registration_number=lead["registration_number"],
        country=lead["country"],
        iban=MOROCCAN_IBAN,
        signatory="Maria Santos",
    )
    assert organisation["iban_shared_with"] == []
    # the contract names the account the grant is paid to: it waits for a finance approver's validation
    before = unchanged(system)
    assert (
        rule_of(
            staff["pm"].grants.sign_contract,
            grant_id=gid,
            organisation_id=organisation["organisation_id"],
            annual_budgets=["60000.00", "60000.00"],
        )
        == "contract.account_not_validated"
    )
    assert unchanged(system) == before
    # the person who registered the account may not validate it, and the IBAN checked must be the registered one
    dual = system.client("nadia.dual", ["finance_officer", "finance_approver"])
    mine = dual.grants.register_organisation(
        legal_name="Dual Org", registration_number="D-1", country="PH", iban=new_iban(), signatory="S"
    )
    assert (
        rule_of(dual.grants.validate_bank_account, organisation_id=mine["organisation_id"], iban=mine["iban"])
        == "organisation.four_eyes"
    )
    assert (
        rule_of(
            staff["approver"].grants.validate_bank_account,
            organisation_id=organisation["organisation_id"],
            iban="DE89 3704 0044 0532 0130 00",
        )
        == "organisation.iban_mismatch"
    )
    # the same account registered for a second organisation is flagged to finance: validating it takes a reason
    twin = staff["officer"].grants.register_organisation(
        legal_name="Réseau Fantôme", registration_number="PH-TWIN", country="PH", iban=MOROCCAN_IBAN, signatory="S"
    )
    assert [o["organisation_id"] for o in twin["iban_shared_with"]] == [organisation["organisation_id"]]
    listed = {o["organisation_id"]: o for o in staff["auditor"].grants.list_organisations(country="PH")}
    assert listed[organisation["organisation_id"]]["iban_shared_with"] == [{"organisation_id": twin["organisation_id"]}]
    assert listed[other["organisation_id"]]["iban_shared_with"] == []
    before = unchanged(system)
    assert (
        rule_of(
            staff["approver"].grants.validate_bank_account,
            organisation_id=organisation["organisation_id"],
            iban=MOROCCAN_IBAN,
        )
        == "organisation.iban_shared"
    )
    assert unchanged(system) == before
    reason = "the federation holds the account of its member associations (statutes, art. 12)"
    validated = staff["approver"].grants.validate_bank_account(
        organisation_id=organisation["organisation_id"], iban=MOROCCAN_IBAN, shared_iban_reason=reason
    )
    assert validated["account_validated"] is True and validated["validated_by"] == "farid.finance"
    audited = staff["auditor"].grants.query_audit(entity=f"organisation:{organisation['organisation_id']}")
    assert audited[-1]["detail"]["shared_iban_reason"] == reason and audited[-1]["user"] == "farid.finance"
    staff["pm"].grants.sign_contract(
        grant_id=gid, organisation_id=organisation["organisation_id"], annual_budgets=["60000.00", "60000.00"]
    )

    # ten concurrent retries of one request (each thread its own connection): one request, one event
    results, errors = run_together(
        10,
        lambda i, client: client.grants.request_payment(
            grant_id=gid, tranche_number=1, amount_eur="48000.00", idempotency_key="assoc-1"
        ),
        lambda: system.client("nadia.dual", ["finance_officer", "finance_approver"]),
    )
    assert errors == [] and len({r["payment_id"] for r in results}) == 1
    payment_id = results[0]["payment_id"]
    assert system.scalar("grants", f"SELECT count(*) FROM payments WHERE grant_id = '{gid}'") == 1
    assert len(events_of(system, "payment_requested", gid)) == 1
    with pytest.raises(Conflict) as reused:
        dual.grants.request_payment(grant_id=gid, tranche_number=1, amount_eur="47000.00", idempotency_key="assoc-1")
    assert reused.value.rule == "payment.key_reused"
    assert "'assoc-1'" in reused.value.reason and payment_id not in reused.value.reason  # the key the officer gave

    # four eyes on the caller's identity: the requester cannot approve, whatever roles they hold
    before = unchanged(system)
    assert rule_of(dual.grants.approve_payment, payment_id=payment_id, bank_reference="BNK-A1") == "payment.four_eyes"
    assert unchanged(system) == before

    # concurrent approvals (a retried approval): paid once
    results, errors = run_together(
        5,
        lambda i, client: client.grants.approve_payment(
            payment_id=payment_id, value_date=today().isoformat(), bank_reference="BNK-A1"
        ),
        lambda: system.client("farid.finance", ["finance_approver"]),
    )
    assert errors == [] and {r["status"] for r in results} == {"paid"}
    assert len(events_of(system, "tranche_paid", gid)) == 1
    assert staff["auditor"].grants.get_grant(grant_id=gid)["paid_eur"] == "48000.00"
    assert (
        rule_of(staff["approver"].grants.approve_payment, payment_id=payment_id, bank_reference="BNK-OTHER")
        == "payment.not_pending"
    )
    payments = staff["auditor"].grants.list_payments(grant_id=gid)
    assert [(p["tranche_number"], p["status"], p["requested_by"], p["approved_by"]) for p in payments] == [
        (1, "paid", "nadia.dual", "farid.finance")
    ]


# --- the budget guard under concurrency -----------------------------------------------------------------------


def test_fifty_parallel_awards_never_overspend_a_window(system, staff, programme):
    # its own programme: the calls service numbers references per programme, year and country but counts them per
    # call, so a second call of one programme in one year collides with the first (reported to calls)
    staff["pm"].calls.load_programme(programme=flows.programme("RACE"))
    staff["pm"].calls.create_call(**flows.call("RACE-2008", programme_id="RACE", allocation="400000.00"))
    open_call(system, staff, "RACE-2008")
    (big,) = submit(system, staff, [100], call_id="RACE-2008", window="remittances", requested="200000.00")
    racers = submit(system, staff, range(101, 151), call_id="RACE-2008", window="remittances", requested="50000.00")
    publish_ranking(system, "RACE-2008", "remittances", [big, *racers])
    award(staff, big)  # the window's last EUR 200,000 remain

    results, errors = run_together(
        50,
        lambda i, client: award(staff, racers[i], client=client),
        lambda: system.client("steering.committee", ["committee"]),
    )
    assert len(results) == 4  # exactly the awards that fit: 4 x 50,000
    assert len(errors) == 46 and {e.rule for e in errors} == {"award.window_allocation_exceeded"}
    assert window_committed(system, "RACE-2008", "remittances") == Decimal("400000.00")
    granted = system.scalar(
        "grants", "SELECT sum(amount) FROM grants WHERE call_id = 'RACE-2008' AND status <> 'declined'"
    )
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


# --- four eyes wherever money moves; bank details by role --------------------------------------------------------


def test_money_moves_only_with_a_second_person_however_the_first_writes_their_name(system, staff, programme):
    """Validating a bank account, accepting the report that unlocks a tranche, raising the award: each refused to
    the person who did the first step — `Farid` is `farid`, `ＭＡＲＩＡ.PM` is `maria.pm` — and done by another."""
    (proposal,) = past_proposals(system, PAST, [44], window="migrants_rights", country="MA", requested="150000.00")
    publish_ranking(system, PAST, "migrants_rights", [proposal])
    grant = award(staff, proposal, decision_date="2009-06-15")
    gid, lead, account = grant["grant_id"], grant["lead_applicant"], new_iban()

    # the bank account: registered by farid (finance officer), refused to Farid holding the approver's role too
    farid = system.client("farid", ["finance_officer", "finance_approver"])
    organisation = farid.grants.register_organisation(
        legal_name=grant["lead_organisation"],
        registration_number=lead["registration_number"],
        country=lead["country"],
        iban=account,
        signatory="Jamal Lahlou",
    )
    before = unchanged(system)
    for same in ("Farid", "FARID", "ｆａｒｉｄ", "farid "):
        assert (
            rule_of(
                system.client(same, ["finance_approver"]).grants.validate_bank_account,
                organisation_id=organisation["organisation_id"],
                iban=account,
            )
            == "organisation.four_eyes"
        )
    assert unchanged(system) == before
    validated = staff["approver"].grants.validate_bank_account(
        organisation_id=organisation["organisation_id"], iban=account
    )
    assert (validated["account_validated"], validated["validated_by"]) == (True, "farid.finance")

    # full IBANs for finance and audit only; the programme manager and the committee see them masked
    masked = f"{account[:4]} **** **** {account[-4:]}"
    signed = staff["pm"].grants.sign_contract(
        grant_id=gid,
        organisation_id=organisation["organisation_id"],
        start_date="2009-07-01",
        annual_budgets=["90000.00", "60000.00"],
    )
    assert signed["organisation"]["iban"] == masked
    listed = {o["organisation_id"]: o["iban"] for o in staff["pm"].grants.list_organisations(limit=10000)}
    assert listed[organisation["organisation_id"]] == masked and account not in listed.values()
    for who, expected in (
        ("committee", masked),
        ("pm", masked),
        ("officer", account),
        ("approver", account),
        ("auditor", account),
    ):
        assert staff[who].grants.get_grant(grant_id=gid)["organisation"]["iban"] == expected, who
    for who, expected in (("officer", account), ("auditor", account)):
        listed = {o["organisation_id"]: o["iban"] for o in staff[who].grants.list_organisations(limit=10000)}
        assert listed[organisation["organisation_id"]] == expected, who
    assert system.client("amal.assessor", ["assessor"]).grants.get_grant(grant_id=gid)["organisation"]["iban"] == masked
    trail = staff["pm"].grants.query_audit(entity=f"organisation:{organisation['organisation_id']}")
    assert account not in json.dumps(trail) and masked in json.dumps(trail)
    assert account in json.dumps(
        staff["auditor"].grants.query_audit(entity=f"organisation:{organisation['organisation_id']}")
    )

    # the interim report unlocks tranche 2: its submitter may not accept it, another programme manager does
    pay(staff, gid, 1, "72000.00", "eyes-1")
    submitted = staff["pm"].grants.submit_report(
        grant_id=gid, kind="interim", number=1, expenditure={"human_resources": "70000.00", "travel": "5000.00"}
    )
    before = unchanged(system)
    for same in ("maria.pm", "Maria.PM", "ＭＡＲＩＡ.PM"):
        assert (
            rule_of(system.client(same, ["programme_manager"]).grants.accept_report, report_id=submitted["report_id"])
            == "report.four_eyes"
        )
    assert unchanged(system) == before
    accepted = staff["pm2"].grants.accept_report(report_id=submitted["report_id"])
    assert (accepted["status"], accepted["submitted_by"], accepted["decided_by"]) == (
        "accepted",
        "maria.pm",
        "karim.pm",
    )

    # raising the award: checked, then waiting for a second person; lowering applies at once
    proposed = staff["committee"].grants.amend_grant(
        grant_id=gid, kind="amount", new_amount_eur="160000.00", reason="a fourth partner joins"
    )
    assert (
        proposed["status"],
        proposed["current_amount_eur"],
        proposed["new_amount_eur"],
        proposed["requested_by"],
    ) == ("awaiting_approval", "150000.00", "160000.00", "steering.committee")
    waiting = staff["pm"].grants.get_grant(grant_id=gid)
    assert waiting["amount_eur"] == "150000.00"
    assert [a["amendment_id"] for a in waiting["amendments_awaiting_approval"]] == [proposed["amendment_id"]]
    assert events_of(system, "grant_amended", gid) == []
    committed_before = window_committed(system, PAST, "migrants_rights")
    for same in ("steering.committee", "Steering.Committee"):
        assert (
            rule_of(system.client(same, ["committee"]).grants.approve_amendment, amendment_id=proposed["amendment_id"])
            == "amendment.four_eyes"
        )
    assert (
        rule_of(
            staff["committee"].grants.amend_grant,
            grant_id=gid,
            kind="amount",
            reason="more",
            new_amount_eur="200000.01",
        )
        == "amendment.above_call_max"
    )  # the rules still apply when proposing
    approved = staff["committee2"].grants.approve_amendment(amendment_id=proposed["amendment_id"])
    assert (approved["amount_eur"], approved["requested_by"], approved["approved_by"]) == (
        "160000.00",
        "steering.committee",
        "ngozi.committee",
    )
    assert window_committed(system, PAST, "migrants_rights") == committed_before + Decimal("10000.00")
    assert [e["kind"] for e in events_of(system, "grant_amended", gid)] == ["amount"]
    assert (
        rule_of(staff["pm"].grants.approve_amendment, amendment_id=proposed["amendment_id"]) == "amendment.not_pending"
    )
    assert staff["pm"].grants.get_grant(grant_id=gid)["amendments_awaiting_approval"] == []
    lowered = staff["committee"].grants.amend_grant(
        grant_id=gid, kind="amount", new_amount_eur="155000.00", reason="the fourth partner's share is smaller"
    )
    assert (lowered["amount_eur"], lowered["status"]) == ("155000.00", "contracted")


# --- expenditure in local currency ------------------------------------------------------------------------------


def test_a_report_in_local_currencies_is_converted_line_by_line_at_the_published_rates(system, staff, programme):
    (proposal,) = past_proposals(system, PAST, [41], window="migrants_rights", country="MA", requested="90000.00")
    publish_ranking(system, PAST, "migrants_rights", [proposal])
    grant = award(staff, proposal, decision_date="2009-06-20")
    contracted(staff, grant, start_date="2009-07-01", duration_months=12)
    pay(staff, grant["grant_id"], 1, "72000.00", "fx-1")
    # finance publishes August's InforEuro rates; the same file again changes nothing; another value is refused
    first = staff["officer"].grants.set_rates(
        month="2009-08",
        source="InforEuro 2009-08 (test)",
        rates=[{"currency": "MAD", "rate": "11.2345"}, {"currency": "xof", "rate": "655.957"}],
    )
    assert (first["published"], first["unchanged"]) == (["MAD", "XOF"], [])
    again = staff["approver"].grants.set_rates(
        month="2009-08", source="InforEuro 2009-08 (test)", rates=[{"currency": "MAD", "rate": "11.234500"}]
    )
    assert (again["published"], again["unchanged"]) == ([], ["MAD"])
    assert (
        rule_of(
            staff["officer"].grants.set_rates,
            month="2009-08",
            source="a correction",
            rates=[{"currency": "MAD", "rate": "11.3"}, {"currency": "PHP", "rate": "64.1"}],
        )
        == "rates.already_published"
    )
    with pytest.raises(InvalidInput) as bad:
        staff["officer"].grants.set_rates(month="2009-08", source="x", rates=[{"currency": "ABC", "rate": "1.5"}])
    assert "rates.0.currency" in bad.value.errors or "rates" in bad.value.errors
    with pytest.raises(NotAllowed):
        staff["pm"].grants.set_rates(month="2009-08", source="x", rates=[{"currency": "MAD", "rate": "11"}])
    listed = staff["auditor"].grants.list_rates(month="2009-08")
    assert [(r["currency"], r["rate"], r["published_by"]) for r in listed] == [
        ("MAD", "11.2345", "omar.officer"),
        ("XOF", "655.957", "omar.officer"),
    ]
    assert [e["rates"] for e in events_of(system, "rates_published") if e["month"] == "2009-08"] == [
        [{"currency": "MAD", "rate": "11.2345"}, {"currency": "XOF", "rate": "655.957"}]
    ]

    lines = [
        {"heading": "human_resources", "amount": "100.00", "currency": "MAD", "incurred_on": "2009-08-03"},
        {"heading": "human_resources", "amount": "100.00", "currency": "MAD", "incurred_on": "2009-08-04"},
        {
            "heading": "travel",
            "amount": "6559570.00",
            "currency": "XOF",
            "incurred_on": "2009-08-31",
            "description": "regional workshop, Dakar",
        },
        {"heading": "travel", "amount": "900.00", "currency": "EGP", "incurred_on": "2009-09-15"},
        {"heading": "local_office", "amount": "30000.00", "currency": "EUR", "incurred_on": "2010-01-10"},
    ]
    before = unchanged(system)
    with pytest.raises(Conflict) as missing:
        staff["pm"].grants.submit_report(grant_id=grant["grant_id"], kind="final", lines=lines)
    assert missing.value.rule == "conversion.rate_missing" and "EGP in 2009-09" in missing.value.reason
    assert unchanged(system) == before
    staff["approver"].grants.set_rates(
        month="2009-09", source="InforEuro 2009-09 (test)", rates=[{"currency": "EGP", "rate": "8.1234"}]
    )
    submitted = staff["pm"].grants.submit_report(grant_id=grant["grant_id"], kind="final", lines=lines)
    # 100 MAD / 11.2345 = 8.90 a line (8.90115...), twice 17.80; 6,559,570 XOF = 10,000.00; 900 EGP = 110.79
    assert submitted["expenditure"]["human_resources"] == "17.80"
    assert submitted["expenditure"]["travel"] == "10110.79" and submitted["total_eur"] == "40128.59"
    assert [(ln["currency"], ln["rate"], ln["rate_month"], ln["amount_eur"]) for ln in submitted["lines"]] == [
        ("MAD", "11.2345", "2009-08", "8.90"),
        ("MAD", "11.2345", "2009-08", "8.90"),
        ("XOF", "655.957", "2009-08", "10000.00"),
        ("EGP", "8.1234", "2009-09", "110.79"),
        ("EUR", "1", None, "30000.00"),
    ]
    event = events_of(system, "report_submitted", grant["grant_id"])[-1]
    assert event["conversion"] == "ec_monthly" and event["total_eur"] == "40128.59" and len(event["lines"]) == 5
    staff["pm2"].grants.accept_report(report_id=submitted["report_id"])  # four eyes: it unlocks the balance
    closed = staff["pm"].grants.close_grant(grant_id=grant["grant_id"])
    # the closure works on the EUR values: 40,128.59 x 80% = 32,102.87 owed of the 72,000 paid
    assert closed["accepted_expenditure_eur"] == "40128.59"
    assert closed["closure"]["recovery_eur"] == "39897.13"
    # reporting: the lines beside their EUR values, the report's expenditure in EUR, the books still agree
    auditor = staff["auditor"]
    eventually(
        lambda: (
            system.scalar(
                "reporting", f"SELECT count(*) FROM expenditure_line_facts WHERE grant_id = '{grant['grant_id']}'"
            )
            == 5
        ),
        60,
        0.3,
        "reporting has the lines",
    )
    listed = [
        ln
        for ln in auditor.reporting.budget_report(programme_id="JMDI")["expenditure_lines"]
        if ln["reference"] == grant["reference"]
    ]
    assert [(ln["currency"], ln["amount"], ln["rate_per_eur"], ln["eur"]) for ln in listed] == [
        ("MAD", "100.00", "11.2345", "8.90"),
        ("MAD", "100.00", "11.2345", "8.90"),
        ("XOF", "6559570.00", "655.957", "10000.00"),
        ("EGP", "900.00", "8.1234", "110.79"),
        ("EUR", "30000.00", "1", "30000.00"),
    ]
    workbook = auditor.reporting.budget_report(programme_id="JMDI", format="xlsx")
    book = load_workbook(io.BytesIO(base64.b64decode(workbook["content_base64"])))
    sheet = book["Expenditure lines"]
    header = [c.value for c in sheet[4]]
    mine = [r for r in sheet.iter_rows(min_row=5, values_only=True) if r[0] == grant["reference"]]
    assert [
        (r[header.index("Amount")], r[header.index("Currency")], Decimal(str(r[header.index("EUR")]))) for r in mine
    ][2] == ("6559570.00", "XOF", Decimal("10000.00"))
    eventually(lambda: auditor.reporting.reconcile()["clean"], 60, 0.5, "reporting agrees with the grants ledger")


def test_the_logframe_goes_from_proposal_to_contract_to_reported_results(system, staff, programme):
    (proposal,) = past_proposals(system, PAST, [42], window="migrants_rights", country="SN", requested="80000.00")
    publish_ranking(system, PAST, "migrants_rights", [proposal])
    grant = award(staff, proposal, decision_date="2009-06-20")
    contracted(staff, grant, start_date="2009-07-01", duration_months=12)
    # the contract keeps the proposal's logframe
    kept = staff["pm"].grants.get_grant(grant_id=grant["grant_id"])["logframe"]
    assert [r["type"] for r in kept] == ["outcome", "output"]
    assert [i["code"] for i in kept[0]["indicators"]] == ["OC1.1", "OC1.2"]
    # a targets amendment: an unknown indicator refused by name, then OC1.1 raised from 40 to 50 (audited)
    with pytest.raises(InvalidInput) as unknown:
        staff["pm"].grants.amend_grant(
            grant_id=grant["grant_id"],
            kind="targets",
            reason="more investors",
            new_targets=[{"code": "XX9", "target_value": "5"}],
        )
    assert "new_targets.0.code" in unknown.value.errors
    amended = staff["pm"].grants.amend_grant(
        grant_id=grant["grant_id"],
        kind="targets",
        reason="more investors",
        new_targets=[{"code": "OC1.1", "target_value": "50"}],
    )
    assert amended["logframe"][0]["indicators"][0]["target_value"] == "50"
    assert events_of(system, "grant_amended", grant["grant_id"])[-1]["kind"] == "targets"
    audit = system.scalar(
        "grants",
        "SELECT count(*) FROM audit_log WHERE operation = 'grants.amend_targets' "
        f"AND entity = 'grant:{grant['grant_id']}'",
    )
    assert audit == 1
    # the final report's actual values: an unknown code is refused by name, nothing changes
    before = unchanged(system)
    with pytest.raises(InvalidInput) as bad:
        staff["pm"].grants.submit_report(
            grant_id=grant["grant_id"],
            kind="final",
            expenditure={"human_resources": "50000.00"},
            actuals=[{"code": "OC1.1", "value": "12"}, {"code": "OC9.9", "value": "1"}],
        )
    assert "actuals.1.code" in bad.value.errors and "OC9.9" in str(bad.value.errors["actuals.1.code"])
    with pytest.raises(InvalidInput) as percent:
        staff["pm"].grants.submit_report(
            grant_id=grant["grant_id"],
            kind="final",
            expenditure={"human_resources": "50000.00"},
            actuals=[{"code": "OC1.2", "value": "130"}],
        )
    assert "actuals.0.value" in percent.value.errors
    assert unchanged(system) == before
    # actuals above the targets are recorded as they are (60 investments against 50)
    report_ = staff["pm"].grants.submit_report(
        grant_id=grant["grant_id"],
        kind="final",
        expenditure={"human_resources": "50000.00"},
        actuals=[
            {"code": "OC1.1", "value": "60", "comment": "two more cooperatives joined"},
            {"code": "OC1.2", "value": "31.5"},
            {"code": "OP1.1", "value": "Twelve complete plans"},
        ],
    )
    assert [a["code"] for a in report_["actuals"]] == ["OC1.1", "OC1.2", "OP1.1"]
    assert events_of(system, "results_reported", grant["grant_id"]) == []
    staff["pm2"].grants.accept_report(report_id=report_["report_id"])
    reported = eventually(lambda: events_of(system, "results_reported", grant["grant_id"]), 30, 0.3, "results_reported")
    results = {r["code"]: r for r in reported[-1]["results"]}
    assert (results["OC1.1"]["target_value"], results["OC1.1"]["actual_value"]) == ("50", "60")
    assert results["OP1.1"]["measure"] == "qualitative" and reported[-1]["country"] == "SN"
    assert reported[-1]["period_start"] == "2009-07-01" and reported[-1]["period_end"] == "2010-06-30"
    # reporting: progress against the amended target (60 of 50 = 120 %), the Results sheet, IATI with <result>
    auditor = staff["auditor"]
    eventually(
        lambda: (
            system.scalar(
                "reporting", f"SELECT count(*) FROM indicator_result_facts WHERE grant_id = '{grant['grant_id']}'"
            )
            == 3
        ),
        60,
        0.3,
        "reporting has the results",
    )
    mine = {
        r["code"]: r
        for r in auditor.reporting.budget_report(programme_id="JMDI")["results"]
        if r["reference"] == grant["reference"]
    }
    assert (mine["OC1.1"]["target"], mine["OC1.1"]["actual"], mine["OC1.1"]["progress"]) == ("50", "60", "120.00")
    assert mine["OC1.2"]["progress"] == "108.57" and mine["OP1.1"]["progress"] == ""
    workbook = auditor.reporting.budget_report(programme_id="JMDI", format="xlsx")
    book = load_workbook(io.BytesIO(base64.b64decode(workbook["content_base64"])))
    assert any(r[0] == grant["reference"] for r in book["Results"].iter_rows(min_row=5, values_only=True))
    exported = auditor.reporting.iati_export(programme_id="JMDI")
    xml = exported["content"].encode("utf-8")
    assert exported["valid"] is True  # the service refuses a file the 2.03 schema does not accept; checked again:
    assert (
        iati.validate_iati(
            xml, REPO_ROOT / "services" / "reporting" / "standards" / "iati-2.03" / "iati-activities-schema.xsd"
        )
        == []
    )
    assert b"<result " in xml and b'<actual value="60"' in xml
    eventually(lambda: auditor.reporting.reconcile()["clean"], 60, 0.5, "reporting agrees with the grants ledger")
