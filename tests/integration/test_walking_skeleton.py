"""One thin flow through all four services on the real broker and databases."""

import pytest

from services.common.values.errors import Conflict, InvalidInput, NotAllowed, NotFound
from tests.support import flows
from tests.support.scenario import pay, rank
from tests.support.infra import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def staff(system):
    return {
        "pm": system.client("maria.pm", ["programme_manager"]),
        "committee": system.client("steering.committee", ["committee"]),
        "approver": system.client("farid.finance", ["finance_approver"]),
        "reporter": system.client("ec.reporter", ["ec_reporter"]),
    }


@pytest.fixture(scope="module")
def opened_call(system, staff):
    staff["pm"].calls.load_programme(programme=flows.programme())
    staff["pm"].calls.create_call(**flows.call())
    return staff["pm"].calls.open_call(call_id="JMDI-2008")


def test_a_proposal_travels_from_submission_to_the_ec_totals(system, staff, opened_call):
    assert opened_call["status"] == "open"
    submitted = [
        staff["pm"].calls.submit_proposal(**flows.proposal(n, window=w, country=c, requested=amount))
        for n, (w, c, amount) in enumerate(
            [
                ("remittances", "MA", "150000.00"),
                ("remittances", "SN", "120000.50"),
                ("migrants_rights", "MA", "200000.00"),
            ]
        )
    ]
    rank(system, submitted)  # the steering committee awards ranked proposals only
    year = opened_call["deadline"][:4]  # references number proposals per call year and country
    assert [p["reference"] for p in submitted] == [
        f"JMDI-{year}-MA-0001",
        f"JMDI-{year}-SN-0001",
        f"JMDI-{year}-MA-0002",
    ]

    def award(proposal, amount):
        # grants learns the proposal from proposal_submitted: until then it is unknown there
        return eventually(
            lambda: _try(
                staff["committee"].grants.award_grant,
                proposal_id=proposal["proposal_id"],
                amount_eur=amount,
                decision_reference="SC-2009-01",
            ),
            message="award",
        )

    g1 = award(submitted[0], "150000.00")
    g2 = award(submitted[1], "100000.25")
    g3 = award(submitted[2], "200000.00")
    # first-year EC budgets that make the PRAG pre-financing (80% of year one) the amounts below
    pay(
        system,
        grant_id=g1["grant_id"],
        idempotency_key="pay-1",
        tranche_number=1,
        amount_eur="96000.00",
        value_date=None,
        bank_reference="BNK-1",
        annual_budgets=["120000.00", "30000.00"],
    )
    pay(
        system,
        grant_id=g2["grant_id"],
        idempotency_key="pay-2",
        tranche_number=1,
        amount_eur="64000.16",
        value_date=None,
        bank_reference="BNK-2",
        annual_budgets=["80000.20", "20000.05"],
    )
    pay(
        system,
        grant_id=g3["grant_id"],
        idempotency_key="pay-3",
        tranche_number=1,
        amount_eur="128000.00",
        value_date=None,
        bank_reference="BNK-3",
        annual_budgets=["160000.00", "40000.00"],
    )

    def totals_settled():
        totals = staff["reporter"].reporting.totals(programme_id="JMDI")
        return totals if totals["disbursed_eur"] == "288000.16" else None

    totals = eventually(totals_settled, message="reporting totals")
    assert totals["envelope_eur"] == "15000000.00"
    assert totals["committed_eur"] == "450000.25"
    assert totals["remaining_eur"] == "14549999.75"
    windows = {w["window"]: w for w in totals["windows"]}
    assert windows["remittances"] == {
        "window": "remittances",
        "allocation_eur": "3750000.00",
        "committed_eur": "250000.25",
        "disbursed_eur": "160000.16",
        "grants": 2,
    }
    assert windows["migrants_rights"]["committed_eur"] == "200000.00"
    countries = {c["country"]: c for c in totals["countries"]}
    assert countries["MA"] == {"country": "MA", "committed_eur": "350000.00", "disbursed_eur": "224000.00", "grants": 2}
    assert countries["SN"]["disbursed_eur"] == "64000.16"

    # notifications recorded a receipt per submission and an award notice per grant, in the lead's language
    # (the contracts and payments of the real payment flow are notified too: count the receipts and awards)
    deliveries = eventually(
        lambda: (lambda d: d if len(d) == 6 else None)(
            [d for d in staff["pm"].notifications.list_deliveries() if d["template"] in ("award", "submission_receipt")]
        ),
        message="notifications",
    )
    assert sorted(d["template"] for d in deliveries) == ["award"] * 3 + ["submission_receipt"] * 3
    assert {d["recipient"] for d in deliveries} == {"lead0@example.org", "lead1@example.org", "lead2@example.org"}


def test_the_same_submission_twice_creates_one_proposal(system, staff, opened_call):
    first = staff["pm"].calls.submit_proposal(**flows.proposal(40))
    again = staff["pm"].calls.submit_proposal(**flows.proposal(40))
    assert again["proposal_id"] == first["proposal_id"]
    assert system.scalar("calls", "SELECT count(*) FROM proposals WHERE idempotency_key = 'JMDI-2008-40'") == 1


def test_a_retried_payment_never_pays_twice(system, staff, opened_call):
    proposal = staff["pm"].calls.submit_proposal(**flows.proposal(41, requested="90000.00"))
    rank(system, [proposal])
    grant = eventually(
        lambda: _try(
            staff["committee"].grants.award_grant,
            proposal_id=proposal["proposal_id"],
            amount_eur="90000.00",
            decision_reference="SC-2",
        )
    )
    payment = dict(
        grant_id=grant["grant_id"],
        idempotency_key="retry-me",
        tranche_number=1,
        amount_eur="72000.00",
        value_date=None,
        bank_reference="BNK-9",
    )
    first = pay(system, **payment)
    second = pay(system, **payment)
    assert first == second
    assert staff["pm"].grants.get_grant(grant_id=grant["grant_id"])["paid_eur"] == "72000.00"
    with pytest.raises(Conflict) as refused:
        pay(system, **{**payment, "idempotency_key": "other", "tranche_number": 2, "amount_eur": "18000.01"})
    assert refused.value.rule == "payment.exceeds_award"


BAD_PROPOSALS = [
    ("ec_amount_requested_eur", 150000.5, "not a float"),
    ("ec_amount_requested_eur", "-10.00", "must not be negative"),
    ("ec_amount_requested_eur", "12.345", "more than two decimal places"),
    ("ec_amount_requested_eur", "NaN", "finite"),
    ("duration_months", "twelve", "integer"),
    ("target_country", "Morocco", "ISO 3166"),
    ("title", "x" * 301, "Length must be between"),
    ("window", None, "Field may not be null"),
]


@pytest.mark.parametrize("field,value,reason", BAD_PROPOSALS)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(system, staff, opened_call, field, value, reason):
    before = (system.count_rows("calls", "proposals"), system.outbox_events("calls"))
    payload = {**flows.proposal(90), field: value}
    with pytest.raises(InvalidInput) as refused:
        staff["pm"].calls.submit_proposal(**payload)
    assert field in refused.value.errors
    assert reason.lower() in str(refused.value.errors[field]).lower()
    assert (system.count_rows("calls", "proposals"), system.outbox_events("calls")) == before


def test_unknown_fields_and_enum_values_are_refused(system, staff, opened_call):
    payload = flows.proposal(91)
    payload["applicants"][0]["language"] = "de"
    with pytest.raises(InvalidInput) as refused:
        staff["pm"].calls.submit_proposal(**payload, colour="blue")
    assert "colour" in refused.value.errors
    assert "language" in refused.value.errors["applicants"]["0"]


def test_a_rule_refusal_is_a_conflict_listing_every_failed_rule(system, staff, opened_call):
    payload = flows.proposal(92, requested="250000.00", country="FR")
    with pytest.raises(Conflict) as refused:
        staff["pm"].calls.submit_proposal(**payload)
    rules = {d["rule"] for d in refused.value.details}
    assert len(rules) >= 2
    with pytest.raises(NotFound):
        staff["pm"].grants.get_grant(grant_id="no-such-grant")


def test_a_caller_without_the_role_is_refused_and_the_refusal_audited(system, staff, opened_call):
    with pytest.raises(NotAllowed):
        staff["reporter"].calls.submit_proposal(**flows.proposal(93))
    anonymous = system.client(None)
    with pytest.raises(NotAllowed):
        anonymous.grants.ledger()
    # refused at the door: audited by the gateway, never seen by the service
    assert (
        system.scalar(
            "gateway",
            "SELECT count(*) FROM audit_log WHERE outcome = 'refused' "
            "AND operation = 'calls.submit_proposal' AND \"user\" = 'ec.reporter'",
        )
        == 1
    )
    assert system.scalar("calls", "SELECT count(*) FROM audit_log WHERE outcome = 'refused'") == 0


def test_every_service_serves_prometheus_metrics(system):
    import urllib.request

    for service in ("calls", "grants", "notifications", "reporting"):
        with urllib.request.urlopen(system.metrics_url(service), timeout=10) as response:
            body = response.read().decode()
        assert f'jmdi_service_info{{service="{service}"' in body
        # the runner froze start-up's objects and times every collection since (services/common/runtime/heap.py)
        assert f'jmdi_gc_pause_seconds_count{{generation="2",service="{service}"}}' in body


def _try(fn, **kwargs):
    try:
        return fn(**kwargs)
    except NotFound:
        return None
