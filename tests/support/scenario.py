"""Steps of the programme's life that several tests walk through, done the way staff and services do them."""

from datetime import datetime, timezone
from decimal import Decimal

from tests.support import flows
from tests.support.bus import event_body, publish
from tests.support.infra import eventually


def rank(system, proposals, call_id="JMDI-2008"):
    """Publish each window's ranking as the calls service does (ranking_published), all on the main list."""
    for window in {p["window"] for p in proposals}:
        ranked = [p for p in proposals if p["window"] == window]
        published_at = datetime.now(timezone.utc)
        publish(
            system.amqp_uri,
            event_body(
                "ranking_published",
                {
                    "call_id": call_id,
                    "window": window,
                    "threshold": Decimal("60"),
                    "reserve": [],
                    "main": [
                        {
                            "proposal_id": p["proposal_id"],
                            "reference": p["reference"],
                            "rank": rank,
                            "score": Decimal("80"),
                            "country": p["target_country"],
                            "ec_amount_requested_eur": Decimal(p["ec_amount_requested_eur"]),
                        }
                        for rank, p in enumerate(ranked, start=1)
                    ],
                    "published_at": published_at,
                },
            ),
        )
        applied = (
            f"SELECT count(*) FROM rankings WHERE \"window\" = '{window}' "
            f"AND published_at = '{published_at.isoformat()}'"
        )
        eventually(lambda: system.scalar("grants", applied) == 1, message=f"ranking of {window} applied")


def pay(system, grant_id, idempotency_key, tranche_number, amount_eur, value_date, bank_reference, annual_budgets=None):
    """The real payment flow: the lead applicant registered with a validated account (four eyes), the contract
    signed (starting today), then a finance officer's request and a finance approver's approval (retry-safe on
    both). `value_date` None: paid today."""
    officer = system.client("omar.officer", ["finance_officer"])
    approver = system.client("farid.finance", ["finance_approver"])
    grant = approver.grants.get_grant(grant_id=grant_id)
    if grant["status"] == "awarded":
        lead = grant["lead_applicant"]
        organisation = officer.grants.register_organisation(
            legal_name=grant["lead_organisation"],
            registration_number=lead["registration_number"],
            country=lead["country"],
            iban=flows.iban(int(grant_id.replace("-", ""), 16) % 10**12),
            signatory="Jamal Lahlou",
        )
        approver.grants.validate_bank_account(
            organisation_id=organisation["organisation_id"], iban=organisation["iban"]
        )
        system.client("maria.pm", ["programme_manager"]).grants.sign_contract(
            grant_id=grant_id, organisation_id=organisation["organisation_id"], annual_budgets=annual_budgets
        )
    request = officer.grants.request_payment(
        grant_id=grant_id, idempotency_key=idempotency_key, tranche_number=tranche_number, amount_eur=amount_eur
    )
    return approver.grants.approve_payment(
        payment_id=request["payment_id"], value_date=value_date, bank_reference=bank_reference
    )
