"""RPC input schemas of the grants service."""
from marshmallow import RAISE, Schema, fields, validate

from services.common.fields import Money, Text


class Strict(Schema):
    class Meta:
        unknown = RAISE


class AwardGrant(Strict):
    proposal_id = Text(60, required=True)
    amount_eur = Money(required=True)
    decision_reference = Text(100, required=True)
    decision_date = fields.Date(required=True)


class PayTranche(Strict):
    grant_id = Text(60, required=True)
    idempotency_key = Text(100, required=True)
    tranche_number = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=20))
    amount_eur = Money(required=True)
    value_date = fields.Date(required=True)
    bank_reference = Text(100, required=True)


class GrantId(Strict):
    grant_id = Text(60, required=True)


class Ledger(Strict):
    programme_id = Text(60, load_default=None)
