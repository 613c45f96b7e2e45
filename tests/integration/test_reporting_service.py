"""The reporting service on the real broker and PostgreSQL: the EC budget report built from a realistic flow,
its formats, as-of reports, IATI and 360Giving exports, scheduled EC reports, reconciliation with the grants
ledger, gauges, and rebuilding the projections from the event archive.

The flow drives the grants RPCs (awards, organisations, contracts, payments, reports, amendments, declines)
through the gateway. Its awards are dated 2009 and 2010, so its call is one that closed long ago
(tests/support/history.py): the calls service runs calls live and cannot tell that call's opening, proposals,
evaluation, ranking, screening or withdrawal, which are published with kombu to `calls.events`, exactly as the
calls outbox would. The other events published by hand are on purpose: screenings out of order, a payment request
grants would refuse, a closure and a payment the grants ledger never recorded, a redelivery. Tests run in file
order: the later ones add facts (an amendment, a decline, a recovery, a one-sided payment) that the earlier
ones do not expect.
"""

import base64
import csv
import hashlib
import io
import json
import re
import urllib.request
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from kombu import Connection, Exchange
from lxml import etree
from openpyxl import load_workbook

from services.common.contracts.events import make_event
from services.common.contracts.topology import exchange_name, producer_of
from services.common.values.errors import Conflict, InvalidInput, NotAllowed, NotFound
from services.reporting.exports import iati
from services.reporting.models import PROJECTION_TABLES
from services.reporting.domain.periods import last_completed
from tests.support import flows
from tests.support.history import past_call, past_proposals
from tests.support.infra import REPO, eventually
from tests.support.system import System

pytestmark = pytest.mark.integration

D = Decimal
IATI_SCHEMA = REPO / "services" / "reporting" / "standards" / "iati-2.03" / "iati-activities-schema.xsd"


@pytest.fixture(scope="module")
def system():
    # the scheduler ticks every 2 s here (an hour by default)
    with System(extra_env={"REPORT_SCHEDULE_SECONDS": "2"}) as running:
        yield running


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc)


def publish(system, event_type: str, data: dict, occurred_at: datetime | None = None, event_id: str | None = None):
    """Send an event the way its producer's outbox relay does (persistent JSON on `<producer>.events`)."""
    evt = make_event(event_type, data, producer=producer_of(event_type), occurred_at=occurred_at, event_id=event_id)
    exchange = Exchange(exchange_name(producer_of(event_type)), type="topic", durable=True)
    with Connection(system.amqp_uri) as conn:
        conn.Producer().publish(
            evt.body,
            exchange=exchange,
            routing_key=event_type,
            serializer="json",
            delivery_mode=2,
            message_id=evt.event_id,
            type=event_type,
            declare=[exchange],
            retry=True,
        )
    return evt


def _try(fn, retry_rules=(), **kwargs):
    """fn(**kwargs), or None while what it needs has not reached the service yet."""
    try:
        return fn(**kwargs)
    except NotFound:
        return None
    except Conflict as exc:
        if exc.rule in retry_rules:
            return None
        raise


def iban(country: str, bban: str) -> str:
    """A valid IBAN (ISO 13616 mod-97 check digits) for a country and its national account number."""
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


@pytest.fixture(scope="module")
def staff(system):
    return {
        "pm": system.client("maria.pm", ["programme_manager"]),
        "committee": system.client("steering.committee", ["committee"]),
        "officer": system.client("omar.officer", ["finance_officer"]),
        "approver": system.client("farid.finance", ["finance_approver"]),
        "reporter": system.client("ec.reporter", ["ec_reporter"]),
        "auditor": system.client("ana.auditor", ["auditor"]),
    }


# (window, country, requested) of the six proposals; A, B, C, D (the first four) are awarded
PROPOSALS = [
    ("remittances", "MA", "150000.00"),
    ("remittances", "SN", "120000.50"),
    ("migrants_rights", "MA", "200000.00"),
    ("migrant_communities", "PH", "80000.00"),
    ("migrant_associations", "EC", "60000.00"),
    ("remittances", "GE", "90000.00"),
]
AWARDS = [
    ("150000.00", "2009-06-15"),
    ("100000.25", "2009-06-15"),
    ("200000.00", "2009-09-01"),
    ("80000.00", "2010-01-10"),
]
# the contracts of A, B and C: start dates (on or after their award); their pre-financing is paid today
CONTRACT_STARTS = {0: "2009-07-01", 1: "2009-07-01", 2: "2009-09-15"}
EXPENDITURE = {"human_resources": "50000.00", "travel": "12345.67"}  # A's accepted interim report


def pay(staff, grant_id: str, number: int) -> dict:
    """Request (finance officer) and approve (finance approver) what the tranche may carry now: paid today."""
    tranche = next(t for t in staff["pm"].grants.get_grant(grant_id=grant_id)["schedule"] if t["number"] == number)
    requested = staff["officer"].grants.request_payment(
        grant_id=grant_id,
        tranche_number=number,
        amount_eur=tranche["payable_eur"],
        idempotency_key=f"{grant_id}-{number}",
    )
    return staff["approver"].grants.approve_payment(
        payment_id=requested["payment_id"], bank_reference=f"BNK-{grant_id[:8]}-{number}"
    )


@pytest.fixture(scope="module")
def flow(system, staff):
    """The JMDI call of 2008 in miniature: the call (closed on 2009-03-31) and its proposals, evaluations, rankings,
    screening and withdrawal as the calls service announced them (tests/support/history.py); awards of 2009 and
    2010, contracts and an accepted interim report through the grants service; the tranches paid today (a value
    date is never before its request). Returns proposals, grants and the payments made."""
    pm = staff["pm"]
    past_call(system, "JMDI-2008")
    proposals = [
        past_proposals(system, "JMDI-2008", [n], window=w, country=c, requested=amount)[0]
        for n, (w, c, amount) in enumerate(PROPOSALS)
    ]

    def ids(i):
        return {
            "proposal_id": proposals[i]["proposal_id"],
            "reference": proposals[i]["reference"],
            "call_id": "JMDI-2008",
        }

    # the past call's evaluation, ranking, withdrawal and screening: the calls service never ran that call
    for i in range(4):
        publish(
            system,
            "proposal_evaluated",
            {
                **ids(i),
                "stage": "full_application",
                "score": D("81.50"),
                "max_score": 100,
                "threshold": D("60.00"),
                "passed": True,
            },
        )
    for window, ranked in (("remittances", (0, 1)), ("migrants_rights", (2,)), ("migrant_communities", (3,))):
        publish(
            system,
            "ranking_published",
            {
                "call_id": "JMDI-2008",
                "window": window,
                "threshold": D("60.00"),
                "reserve": [],
                "main": [
                    {
                        "proposal_id": proposals[i]["proposal_id"],
                        "reference": proposals[i]["reference"],
                        "rank": rank,
                        "score": D("81.50"),
                        "country": PROPOSALS[i][1],
                        "ec_amount_requested_eur": D(PROPOSALS[i][2]),
                    }
                    for rank, i in enumerate(ranked, start=1)
                ],
                "excluded": [proposals[5]["proposal_id"]] if window == "remittances" else [],
                "published_at": at("2009-05-30"),
            },
        )
    now = datetime.now(timezone.utc)
    publish(system, "proposal_withdrawn", {**ids(4), "reason": "consortium dissolved", "withdrawn_at": now})
    # the screening that excluded proposal 5 arrives before the earlier one that flagged it: the latest decides
    publish(system, "proposal_screened", {**ids(5), "outcome": "excluded"}, occurred_at=now)
    publish(system, "proposal_screened", {**ids(5), "outcome": "flagged"}, occurred_at=now - timedelta(minutes=5))
    publish(system, "proposal_screened", {**ids(3), "outcome": "clear"})

    grants = [
        eventually(
            lambda p=p, a=a, d=d: _try(
                staff["committee"].grants.award_grant,
                ("award.not_ranked",),
                proposal_id=p["proposal_id"],
                amount_eur=a,
                decision_reference="SC-2009-01",
                decision_date=d,
            ),
            timeout=60,
            message="award",
        )
        for p, (a, d) in zip(proposals, AWARDS)
    ]

    # contracts with the leads of A, B and C (registered, bank account validated by a second person)
    for i, start in CONTRACT_STARTS.items():
        country = PROPOSALS[i][1]
        org = staff["officer"].grants.register_organisation(
            legal_name=f"Association Migrations et Développement {i}",
            registration_number=f"REG-{country}-{i:05d}",
            country=country,
            iban=iban(country, f"{i + 1:024d}"),
            signatory=f"Director {i}",
        )
        staff["approver"].grants.validate_bank_account(organisation_id=org["organisation_id"], iban=org["iban"])
        pm.grants.sign_contract(
            grant_id=grants[i]["grant_id"], organisation_id=org["organisation_id"], start_date=start
        )
    payments = [pay(staff, grants[i]["grant_id"], 1) for i in CONTRACT_STARTS]
    # A's interim report, accepted; then its second pre-financing
    report = pm.grants.submit_report(grant_id=grants[0]["grant_id"], kind="interim", number=1, expenditure=EXPENDITURE)
    system.client("karim.pm", ["programme_manager"]).grants.accept_report(report_id=report["report_id"])  # 4 eyes
    payments.append(pay(staff, grants[0]["grant_id"], 2))
    # a payment request of D (not contracted: grants would refuse it), published by hand so that only reporting
    # sees it — an unpaid request the report counts until D is declined
    publish(
        system,
        "payment_requested",
        {
            "grant_id": grants[3]["grant_id"],
            "reference": grants[3]["reference"],
            "payment_id": "PAY-D-1",
            "tranche_number": 1,
            "amount_eur": D("20000.00"),
            "requested_by": "finance.officer",
            "requested_at": at("2010-02-01"),
        },
    )

    paid = {g["grant_id"]: D("0.00") for g in grants}
    for p in payments:
        paid[p["grant_id"]] += D(p["amount_eur"])
    expected_disbursed = sum(paid.values())

    def settled():
        report = staff["reporter"].reporting.budget_report(programme_id="JMDI")
        return (
            report
            if (
                D(report["disbursed_eur"]) == expected_disbursed
                and report["counts"]["eligible_proposals"] == 4
                and report["counts"]["proposals"] == 6
                and report["counts"]["evaluated"] == 4
                and report["counts"]["ranked_main"] == 4
                and report["contracted_eur"] == "450000.25"
                and report["reported_expenditure_eur"] == "62345.67"
                and report["payments_requested_unpaid_eur"] == "20000.00"
            )
            else None
        )

    eventually(settled, timeout=90, message="reporting settled on the flow")
    return {
        "proposals": proposals,
        "grants": grants,
        "payments": payments,
        "paid": paid,
        "disbursed": expected_disbursed,
    }


def budget(staff, **kwargs):
    return staff["reporter"].reporting.budget_report(**kwargs)


# --- the budget report ----------------------------------------------------------------------------------------


def test_the_budget_report_adds_up_the_flow_to_the_cent(staff, flow):
    # A: 60,000.00 + 60,000.00 paid; B: 40,000.10; C: 80,000.00 (pre-financing: 80% of the first year)
    a, b, c, d = (g["grant_id"] for g in flow["grants"])
    assert {k: str(v) for k, v in flow["paid"].items()} == {a: "120000.00", b: "40000.10", c: "80000.00", d: "0.00"}
    report = budget(staff, programme_id="JMDI")
    assert report["format"] == "json" and report["filename"].endswith(".json")
    assert (report["envelope_eur"], report["committed_eur"], report["disbursed_eur"], report["remaining_eur"]) == (
        "15000000.00",
        "530000.25",
        "240000.10",
        "14469999.75",
    )
    assert report["contracted_eur"] == "450000.25"
    assert report["absorption_rate"] == str((D("240000.10") / D("530000.25")).quantize(D("0.0001"), ROUND_HALF_UP))
    windows = {w["window"]: w for w in report["windows"]}
    assert set(windows) == set(flows.WINDOWS)  # every window of the call, awarded or not
    assert {k: windows["remittances"][k] for k in ("allocation_eur", "committed_eur", "disbursed_eur", "grants")} == {
        "allocation_eur": "3750000.00",
        "committed_eur": "250000.25",
        "disbursed_eur": "160000.10",
        "grants": 2,
    }
    assert (windows["migrants_rights"]["committed_eur"], windows["migrants_rights"]["disbursed_eur"]) == (
        "200000.00",
        "80000.00",
    )
    assert (windows["migrant_associations"]["committed_eur"], windows["migrant_associations"]["grants"]) == ("0.00", 0)
    countries = {c["country"]: (c["committed_eur"], c["disbursed_eur"], c["grants"]) for c in report["countries"]}
    assert countries == {
        "MA": ("350000.00", "200000.00", 2),
        "SN": ("100000.25", "40000.10", 1),
        "PH": ("80000.00", "0.00", 1),
    }
    this_year = datetime.now(timezone.utc).year  # the tranches were paid today
    assert [(y["year"], y["committed_eur"], y["disbursed_eur"]) for y in report["years"]] == [
        (2009, "450000.25", "0.00"),
        (2010, "80000.00", "0.00"),
        (this_year, "0.00", "240000.10"),
    ]
    assert {x["applicant_type"] for x in report["applicant_types"]} == {"civil_society_organisation"}
    counts = report["counts"]
    assert (counts["proposals"], counts["eligible_proposals"], counts["awards"]) == (6, 4, 4)
    assert (counts["withdrawn"], counts["excluded_by_screening"], counts["evaluated"], counts["ranked_main"]) == (
        1,
        1,
        4,
        4,
    )
    headings = {h["heading"]: h["reported_expenditure_eur"] for h in report["headings"]}
    assert (headings["human_resources"], headings["travel"], headings["local_office"]) == (
        "50000.00",
        "12345.67",
        "0.00",
    )
    assert report["payments_requested_unpaid_eur"] == "20000.00"
    grants = {g["grant_id"]: g for g in report["grants"]}
    assert (
        grants[a]["committed_eur"],
        grants[a]["paid_eur"],
        grants[a]["outstanding_eur"],
        grants[a]["contracted"],
    ) == ("150000.00", "120000.00", "30000.00", True)
    assert grants[d]["contracted"] is False
    assert sum(D(g["paid_eur"]) for g in grants.values()) == D(report["disbursed_eur"])
    assert report["unmatched_facts"] == {"tranches": 0, "expenditures": 0, "decommitments": 0}

    # the walking skeleton's totals come from the same report
    totals = staff["reporter"].reporting.totals(programme_id="JMDI")
    assert (totals["committed_eur"], totals["disbursed_eur"]) == ("530000.25", "240000.10")
    assert {w["window"]: w["committed_eur"] for w in totals["windows"]} == {
        w: windows[w]["committed_eur"] for w in windows
    }
    # without programme_id: every programme (here the only one)
    assert budget(staff)["committed_eur"] == "530000.25"
    with pytest.raises(NotFound):
        budget(staff, programme_id="NO-SUCH")


def test_the_report_as_of_a_past_date_shows_what_was_true_then(staff, flow):
    june = budget(staff, programme_id="JMDI", as_of="2009-06-30")
    assert june["as_of"] == "2009-06-30"
    assert (june["committed_eur"], june["disbursed_eur"], june["contracted_eur"]) == ("250000.25", "0.00", "0.00")
    assert june["counts"]["awards"] == 2 and june["counts"]["proposals"] == 6  # submitted in March 2009
    year_end = budget(staff, programme_id="JMDI", as_of="2009-12-31")
    assert (year_end["committed_eur"], year_end["disbursed_eur"], year_end["reported_expenditure_eur"]) == (
        "450000.25",
        "0.00",
        "0.00",
    )
    assert budget(staff, programme_id="JMDI", as_of="2010-12-31")["committed_eur"] == "530000.25"
    before_the_first_award = budget(staff, programme_id="JMDI", as_of="2009-01-01")
    assert (before_the_first_award["committed_eur"], before_the_first_award["grants"]) == ("0.00", [])
    # contracts were signed, tranches paid and the report accepted today (the dates the grants service recorded)
    today = datetime.now(timezone.utc).date()
    yesterday = budget(staff, programme_id="JMDI", as_of=(today - timedelta(days=1)).isoformat())
    assert (yesterday["contracted_eur"], yesterday["disbursed_eur"], yesterday["reported_expenditure_eur"]) == (
        "0.00",
        "0.00",
        "0.00",
    )
    # ... and a report as of today holds everything done today
    as_of_today = budget(staff, programme_id="JMDI", as_of=today.isoformat())
    assert (as_of_today["contracted_eur"], as_of_today["disbursed_eur"]) == ("450000.25", "240000.10")


def test_the_report_in_table_csv_and_xlsx_form(staff, flow):
    text = budget(staff, programme_id="JMDI", format="table")
    assert text["format"] == "table" and text["filename"].endswith(".txt")
    assert "530,000.25" in text["content"] and "240,000.10" in text["content"]
    assert "Migration and Asylum" in text["content"]

    sheet = budget(staff, programme_id="JMDI", format="csv", as_of="2009-12-31")
    assert sheet["filename"] == "jmdi-budget-report-2009-12-31.csv"
    rows = list(csv.reader(io.StringIO(sheet["content"])))
    summary = {r[0]: r[1] for r in rows if len(r) == 2}
    assert summary["Committed (awards)"] == "450000.25" and summary["As of"] == "2009-12-31"

    workbook = budget(staff, programme_id="JMDI", format="xlsx")
    assert workbook["filename"].endswith(".xlsx") and "content" not in workbook
    assert workbook["mimetype"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(base64.b64decode(workbook["content_base64"])))
    assert book.sheetnames[0] == "Summary" and "Grants" in book.sheetnames
    assert len(book["Summary"]._charts) == 2  # the charts, native to the workbook
    assert D(str(book["Summary"]["B5"].value)) == D("15000000.00")
    grant_rows = [r for r in book["Grants"].iter_rows(min_row=5, values_only=True) if r[0]]
    paid = [c.value for c in book["Grants"][4]].index("Paid EUR")
    assert sorted(D(str(r[paid])) for r in grant_rows) == sorted(D(x) for x in ("120000", "40000.10", "80000", "0"))
    # the cover says what the report covers: from the programme's start (call_opened carries it) to today
    today = datetime.now(timezone.utc).date()
    assert book["Summary"]["A3"].value.startswith(f"Period covered: 2008-12-01 to {today} · As of {today}")
    with pytest.raises(InvalidInput) as refused:
        budget(staff, programme_id="JMDI", format="pdf")
    assert "format" in refused.value.errors


def test_the_iati_file_validates_against_the_schema_and_matches_the_report(staff, flow):
    export = staff["reporter"].reporting.iati_export(programme_id="JMDI")
    assert export["valid"] is True and export["filename"].endswith(".xml")
    xml = export["content"].encode("utf-8")
    assert iati.validate_iati(xml, IATI_SCHEMA) == []  # the official 2.03 schema, checked again here
    doc = etree.fromstring(xml)
    assert len(doc.findall("iati-activity")) == export["activities"] == 4
    report = budget(staff, programme_id="JMDI")
    sums = iati.totals(xml)
    assert (sums["2"], sums["3"]) == (D(report["committed_eur"]), D(report["disbursed_eur"]))
    assert (export["commitments_eur"], export["disbursements_eur"]) == (
        report["committed_eur"],
        report["disbursed_eur"],
    )
    past = staff["reporter"].reporting.iati_export(programme_id="JMDI", as_of="2009-12-31")
    assert past["commitments_eur"] == "450000.25" and past["activities"] == 3


def test_the_360giving_file_lists_each_grant_with_exact_amounts(staff, flow):
    export = staff["reporter"].reporting.giving360_export(programme_id="JMDI")
    package = json.loads(export["content"], parse_float=Decimal)
    assert export["grants"] == len(package["grants"]) == 4
    assert sum(g["amountAwarded"] for g in package["grants"]) == D("530000.25")
    assert sum(g["amountDisbursed"] for g in package["grants"]) == D("240000.10")


def test_a_redelivered_event_is_archived_and_applied_once(system, staff, flow):
    body = system.scalar(
        "reporting", "SELECT body FROM event_archive WHERE event_type = 'tranche_paid' ORDER BY seq LIMIT 1"
    )
    body = json.loads(body) if isinstance(body, str) else body
    exchange = Exchange(exchange_name("grants"), type="topic", durable=True)
    with Connection(system.amqp_uri) as conn:  # the same message again, as a redelivery would bring it
        conn.Producer().publish(
            body,
            exchange=exchange,
            routing_key="tranche_paid",
            serializer="json",
            delivery_mode=2,
            declare=[exchange],
            retry=True,
        )
    eventually(
        lambda: (
            _gauge(_metrics(system), "jmdi_inbox_duplicates_total", service="reporting", event_type="tranche_paid")
            == 1.0
        ),
        message="duplicate seen",
    )
    assert system.scalar("reporting", f"SELECT count(*) FROM event_archive WHERE event_id = '{body['event_id']}'") == 1
    assert budget(staff, programme_id="JMDI")["disbursed_eur"] == "240000.10"


# --- scheduled and on-demand EC reports -----------------------------------------------------------------------


def _lease_expiry(system):
    return system.scalar(
        "reporting", "SELECT expires_at FROM leases WHERE name = 'reporting.produce_scheduled_reports'"
    )


def test_the_scheduler_produces_each_periods_report_once_and_keeps_it(system, staff, flow):
    today = datetime.now(timezone.utc).date()
    expected = {
        ("monthly", last_completed("monthly", today).label),
        ("quarterly", last_completed("quarterly", today).label),
    }
    reports = eventually(
        lambda: (lambda r: r if {(x["kind"], x["period"]) for x in r} >= expected else None)(
            staff["reporter"].reporting.list_reports()
        ),
        message="scheduled reports",
    )
    generated = system.scalar("reporting", "SELECT count(*) FROM outbox WHERE event_type = 'report_generated'")
    assert generated == 2
    # two more ticks of the timer change nothing: one report per (kind, period)
    seen = _lease_expiry(system)
    eventually(lambda: _lease_expiry(system) > seen + timedelta(seconds=3), timeout=60, message="two more ticks")
    assert system.scalar("reporting", "SELECT count(*) FROM report_files") == 2
    assert system.scalar("reporting", "SELECT count(*) FROM outbox WHERE event_type = 'report_generated'") == 2
    eventually(lambda: system.pending_outbox("reporting") == 0, message="report_generated published")

    monthly = next(r for r in reports if r["kind"] == "monthly")
    stored = staff["reporter"].reporting.get_report(report_id=monthly["report_id"])
    content = base64.b64decode(stored["content_base64"])
    assert stored["filename"] == f"jmdi-ec-report-monthly-{monthly['period']}.xlsx"
    assert stored["mimetype"].endswith("spreadsheetml.sheet")
    assert (hashlib.sha256(content).hexdigest(), len(content)) == (stored["sha256"], stored["size"])
    book = load_workbook(io.BytesIO(content))
    assert f"Period covered: 2008-12-01 to {stored['as_of']} · As of {stored['as_of']}" in book["Summary"]["A3"].value
    event = json.loads(
        system.scalar(
            "reporting",
            f"SELECT body FROM outbox WHERE event_type = 'report_generated' AND body LIKE '%{monthly['report_id']}%'",
        )
    )
    assert event["data"] == {
        "report_id": monthly["report_id"],
        "kind": "monthly",
        "period": monthly["period"],
        "format": "xlsx",
        "filename": stored["filename"],
        "sha256": stored["sha256"],
        "size": stored["size"],
        "generated_at": event["data"]["generated_at"],
    }
    # the notifications service fetches the file with its service identity, over the broker; a service identity
    # does not come in by the staff door
    service = system.service_client("notifications", "reporting")
    assert service.reporting.get_report(report_id=monthly["report_id"])["sha256"] == stored["sha256"]
    with pytest.raises(NotAllowed):
        system.client(None, token=system.service_token("notifications", "reporting")).reporting.get_report(
            report_id=monthly["report_id"]
        )

    again = staff["pm"].reporting.generate_report(kind="monthly", period=monthly["period"])
    assert (again["created"], again["report_id"]) == (False, monthly["report_id"])


def test_a_report_on_demand_is_kept_and_announced(system, staff, flow):
    made = staff["pm"].reporting.generate_report(kind="on_demand", period="2009-12-31")
    assert made["created"] is True and made["as_of"] == "2009-12-31"
    book = load_workbook(
        io.BytesIO(
            base64.b64decode(staff["auditor"].reporting.get_report(report_id=made["report_id"])["content_base64"])
        )
    )
    assert len([r for r in book["Grants"].iter_rows(min_row=5, values_only=True) if r[0]]) == 3
    assert staff["pm"].reporting.generate_report(kind="on_demand", period="2009-12-31")["created"] is False
    assert [r["period"] for r in staff["reporter"].reporting.list_reports(kind="on_demand")] == ["2009-12-31"]
    assert system.scalar("reporting", "SELECT count(*) FROM outbox WHERE event_type = 'report_generated'") == 3

    this_month = datetime.now(timezone.utc).strftime("%Y-%m")
    with pytest.raises(Conflict) as refused:
        staff["pm"].reporting.generate_report(kind="monthly", period=this_month)
    assert refused.value.rule == "report.period_not_ended"
    with pytest.raises(InvalidInput) as bad:
        staff["pm"].reporting.generate_report(kind="quarterly", period="2026-Q5")
    assert "period" in bad.value.errors
    with pytest.raises(NotFound):
        staff["pm"].reporting.get_report(report_id="no-such-report")
    for reader in ("auditor", "reporter"):  # read-only roles produce nothing
        with pytest.raises(NotAllowed):
            staff[reader].reporting.generate_report(kind="on_demand", period="2010-01-01")


# --- gauges ---------------------------------------------------------------------------------------------------


def _metrics(system) -> str:
    with urllib.request.urlopen(system.metrics_url("reporting"), timeout=30) as response:
        return response.read().decode()


def _gauge(text: str, name: str, **labels) -> float | None:
    """The value of one series in a Prometheus exposition (labels in any order), None when absent."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:{{(.*)}})? (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or "")) == labels:
            return float(match.group(2))
    return None


def test_the_finance_gauges_show_the_report(system, staff, flow):
    report = budget(staff)
    text = _metrics(system)
    for w in report["windows"]:
        assert _gauge(text, "jmdi_committed_eur", window=w["window"]) == float(w["committed_eur"])
        assert _gauge(text, "jmdi_disbursed_eur", window=w["window"]) == float(w["disbursed_eur"])
        assert _gauge(text, "jmdi_window_allocation_eur", window=w["window"]) == float(w["allocation_eur"])
    for c in report["countries"]:
        assert _gauge(text, "jmdi_country_committed_eur", country=c["country"]) == float(c["committed_eur"])
        assert _gauge(text, "jmdi_country_disbursed_eur", country=c["country"]) == float(c["disbursed_eur"])
    assert _gauge(text, "jmdi_projection_lag_seconds") is not None
    assert _gauge(text, "jmdi_report_generation_duration_seconds_count", format="xlsx") >= 1


# --- reconciliation with the grants ledger --------------------------------------------------------------------


def test_reconciliation_is_clean_then_finds_every_planted_difference(system, staff, flow):
    clean = staff["auditor"].reporting.reconcile()
    assert clean["clean"] is True and clean["differences"] == [] and clean["grants_compared"] == 4
    assert (
        clean["totals"]["grants"]
        == clean["totals"]["reporting"]
        == {"committed_eur": "530000.25", "paid_eur": "240000.10", "decommitted_eur": "0.00"}
    )
    assert _gauge(_metrics(system), "jmdi_reconciliation_differences") == 0.0

    a, c = flow["grants"][0]["grant_id"], flow["grants"][2]["grant_id"]
    with system.db("reporting").begin() as conn:  # a lost tranche and an altered award in reporting's facts
        conn.exec_driver_sql(f"DELETE FROM tranche_facts WHERE grant_id = '{a}' AND tranche_number = 2")
        conn.exec_driver_sql(f"UPDATE grant_facts SET amount = amount + 1 WHERE grant_id = '{c}'")
    found = staff["auditor"].reporting.reconcile()
    assert found["clean"] is False
    assert sorted(
        (d["grant_id"], d["kind"], d["reporting_eur"], d["grants_eur"], d["difference_eur"])
        for d in found["differences"]
    ) == sorted(
        [
            (a, "paid_differs", "60000.00", "120000.00", "-60000.00"),
            (c, "committed_differs", "200000.01", "200000.00", "0.01"),
        ]
    )
    assert _gauge(_metrics(system), "jmdi_reconciliation_differences") == 2

    # the archive still holds the events: a rebuild repairs the facts
    rebuilt = staff["pm"].reporting.rebuild_projections()
    assert rebuilt["events_replayed"] == system.count_rows("reporting", "event_archive")
    assert staff["auditor"].reporting.reconcile()["clean"] is True
    assert _gauge(_metrics(system), "jmdi_reconciliation_differences") == 0.0
    with pytest.raises(NotAllowed):
        staff["reporter"].reporting.rebuild_projections()


# --- amendments, a decline, a recovery, a payment only reporting saw ------------------------------------------


def test_amendments_declines_and_recoveries_change_the_report_from_their_dates(system, staff, flow):
    a, b, c, d = (g["grant_id"] for g in flow["grants"])
    staff["pm"].grants.amend_grant(grant_id=c, kind="amount", new_amount_eur="180000.00", reason="scope reduced")
    staff["pm"].grants.decline_grant(grant_id=d, reason="the consortium dissolved")
    now = eventually(
        lambda: (lambda r: r if r["committed_eur"] == "430000.25" and r["declined_grants"] == 1 else None)(
            budget(staff, programme_id="JMDI")
        ),
        message="amendment and decline",
    )
    assert now["amended_grants"] == 1 and now["counts"]["awards"] == 3
    assert d not in {g["grant_id"] for g in now["grants"]}
    assert now["payments_requested_unpaid_eur"] == "0.00"  # D's request went with D
    windows = {w["window"]: w["committed_eur"] for w in now["windows"]}
    assert (windows["migrants_rights"], windows["migrant_communities"]) == ("180000.00", "0.00")
    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    assert budget(staff, programme_id="JMDI", as_of=yesterday)["committed_eur"] == "530000.25"
    # the grants ledger agrees: a real amendment and a real decline are no difference
    assert staff["auditor"].reporting.reconcile()["clean"] is True

    # a recovery order closing B, and a payment of A, that the grants ledger never recorded: published by hand,
    # as a producer the ledger does not know would, for reconciliation to find them
    publish(
        system,
        "grant_closed",
        {
            "grant_id": b,
            "reference": flow["grants"][1]["reference"],
            "kind": "recovery",
            "paid_eur": D("40000.10"),
            "accepted_expenditure_eur": D("30000.00"),
            "recovery_eur": D("16000.10"),
            "closed_at": at("2011-01-31"),
        },
    )
    publish(
        system,
        "tranche_paid",
        {
            "grant_id": a,
            "reference": flow["grants"][0]["reference"],
            "payment_id": "PAY-ONLY-HERE",
            "tranche_number": 3,
            "amount_eur": D("5000.00"),
            "value_date": date(2011, 2, 1),
            "bank_reference": "BNK-X",
        },
    )
    later = eventually(
        lambda: (lambda r: r if r["recovered_eur"] == "16000.10" and r["disbursed_eur"] == "245000.10" else None)(
            budget(staff, programme_id="JMDI")
        ),
        message="recovery and payment",
    )
    assert later["committed_eur"] == "430000.25"
    assert budget(staff, programme_id="JMDI", as_of="2010-12-31")["recovered_eur"] == "0.00"
    found = staff["auditor"].reporting.reconcile(programme_id="JMDI")
    assert sorted(
        (x["grant_id"], x["kind"], x["reporting_eur"], x["grants_eur"]) for x in found["differences"]
    ) == sorted([(a, "paid_differs", "125000.00", "120000.00"), (b, "recovery_differs", "16000.10", "0.00")])


# --- rebuild --------------------------------------------------------------------------------------------------


def _projections(system) -> dict:
    with system.db("reporting").connect() as conn:
        return {
            table.__tablename__: sorted(
                tuple(map(str, row)) for row in conn.exec_driver_sql(f"SELECT * FROM {table.__tablename__}")
            )
            for table in PROJECTION_TABLES
        }


def test_rebuilding_the_projections_from_the_archive_gives_the_live_result(system, staff, flow):
    live = _projections(system)
    assert all(
        live[name]
        for name in (
            "grant_facts",
            "tranche_facts",
            "amendment_facts",
            "closure_facts",
            "expenditure_facts",
            "proposal_outcomes",
            "contract_facts",
        )
    )
    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    dates = (None, "2009-06-30", "2009-12-31", "2011-12-31", yesterday)
    reports = {d: budget(staff, as_of=d) for d in dates}
    reports["reconcile"] = staff["auditor"].reporting.reconcile()["differences"]
    result = staff["pm"].reporting.rebuild_projections()
    assert result["events_replayed"] == system.count_rows("reporting", "event_archive")
    assert _projections(system) == live
    rebuilt = {d: budget(staff, as_of=d) for d in dates}
    rebuilt["reconcile"] = staff["auditor"].reporting.reconcile()["differences"]
    assert rebuilt == reports
    assert system.count_rows("reporting", "report_files") == 3  # generated reports are not projections
