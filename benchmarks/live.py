"""The staff operations the live workloads perform, through the services' RPCs as the jmdi CLI would.

The one place to adapt when an RPC's arguments change: the call set-up and a submission (P1), and the awarded,
contracted grants whose first tranche P3 pays (award -> organisation -> bank account -> contract -> payment
request, then the timed `approve_payment`).
"""

from datetime import date
from decimal import Decimal

from tests.support import flows
from tests.support.infra import eventually

LIVE_PROGRAMME = "JMDI-LIVE"  # the live workloads' programme: the data set's "JMDI" stays exactly as generated
LIVE_CALL = "JMDI-LIVE-2010"
COUNTRIES = tuple(flows.programme()["eligible_countries"])  # the 16 countries of the programme


class Staff:
    def __init__(self, system):
        self.pm = system.client("bench.pm", ["programme_manager"], timeout=120)
        self.committee = system.client("bench.committee", ["committee"], timeout=120)
        self.officer = system.client("bench.officer", ["finance_officer"], timeout=120)
        self.approver = system.client("bench.approver", ["finance_approver"], timeout=120)
        self.reporter = system.client("bench.reporter", ["ec_reporter"], timeout=900)
        self.ops = system.client("bench.ops", ["programme_manager"], timeout=900)


def open_call(staff: Staff):
    flows.wait_for_a_whole_day_left()  # near midnight: the call would close while the workload submits
    staff.pm.calls.load_programme(programme=flows.programme(LIVE_PROGRAMME))
    staff.pm.calls.create_call(**flows.call(LIVE_CALL, LIVE_PROGRAMME))  # closes tonight: awards are dated today
    return staff.pm.calls.open_call(call_id=LIVE_CALL)


def proposal(n: int) -> dict:
    return flows.proposal(
        n,
        call_id=LIVE_CALL,
        window=flows.WINDOWS[n % len(flows.WINDOWS)],
        country=COUNTRIES[n % len(COUNTRIES)],
        requested="150000.00",
    )


def submit(client, n: int) -> dict:
    return client.calls.submit_proposal(**proposal(n))


def _retry(call, **kwargs):
    """grants learns proposals and rankings from the calls events: until they are applied it refuses."""
    last = []

    def attempt():
        try:
            return call(**kwargs)
        except Exception as exc:  # NotFound / Conflict until the copies have arrived
            if type(exc).__name__ in ("NotFound", "Conflict"):
                last[:] = [f"{type(exc).__name__}: {exc}"]
                return None
            raise

    try:
        return eventually(attempt, 60, 0.2, f"{call}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last}") from None


def ranking_entries(proposals) -> list[dict]:
    """ranking_published's main list for proposals (calls' rows: id, reference, target_country), best first."""
    return [
        {
            "proposal_id": p["id"],
            "reference": p["reference"],
            "rank": rank,
            "score": Decimal("90.00") - Decimal(rank) / 10,
            "country": p["target_country"],
            "ec_amount_requested_eur": Decimal("150000.00"),
        }
        for rank, p in enumerate(proposals, start=1)
    ]


def award(staff: Staff, proposal_id: str) -> dict:
    return _retry(
        staff.committee.grants.award_grant,
        proposal_id=proposal_id,
        amount_eur="150000.00",
        decision_reference="SC-2010-01",
        decision_date=date.today().isoformat(),
    )


def payable_tranche(staff: Staff, grant: dict, n: int) -> dict:
    """Register and validate the lead organisation (four eyes), sign the contract and request the pre-financing
    tranche: what P3's probe then approves."""
    lead = grant["lead_applicant"]
    org = staff.officer.grants.register_organisation(
        legal_name=grant["lead_organisation"],
        registration_number=lead["registration_number"],
        country=lead["country"],
        iban=flows.iban(n),
        signatory="Director",
    )
    staff.approver.grants.validate_bank_account(organisation_id=org["organisation_id"], iban=flows.iban(n))
    contract = staff.pm.grants.sign_contract(
        grant_id=grant["grant_id"], organisation_id=org["organisation_id"], start_date=date.today().isoformat()
    )
    first = contract["schedule"][0]
    return staff.officer.grants.request_payment(
        grant_id=grant["grant_id"],
        tranche_number=first["number"],
        amount_eur=first["planned_amount_eur"],
        idempotency_key=f"bench-p3-{n}",
    )


def approve(staff: Staff, payment: dict, n: int) -> dict:
    """The timed RPC of P3: the approval that pays the tranche (emits tranche_paid)."""
    return staff.approver.grants.approve_payment(
        payment_id=payment["payment_id"], value_date=date.today().isoformat(), bank_reference=f"BNK-P3-{n}"
    )
