"""RPC input schemas of the grants service (unknown fields refused; InvalidInput names every field)."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.common.events import ANNEX_III_HEADINGS
from services.common.fields import CountryCode, Money, MoneyMap, Text

GRANT_STATUSES = ("awarded", "contracted", "closed", "declined")
PAYMENT_STATUSES = ("requested", "approved", "paid")


class Strict(Schema):
    class Meta:
        unknown = RAISE


def _positive(amount):
    if amount <= 0:
        raise ValidationError("must be above zero")


def Months(**kwargs):
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=120), **kwargs)


def Limit():
    return fields.Integer(load_default=500, strict=True, validate=validate.Range(min=1, max=10000))


class AwardGrant(Strict):
    proposal_id = Text(60, required=True)
    amount_eur = Money(required=True, validate=_positive)
    decision_reference = Text(100, required=True)
    decision_date = fields.Date(required=True)


class RejectProposal(Strict):
    proposal_id = Text(60, required=True)
    reasons = fields.List(Text(2000), required=True, validate=validate.Length(min=1, max=20))
    decision_reference = Text(100, min_length=0, load_default="")


class DeclineGrant(Strict):
    grant_id = Text(60, required=True)
    reason = Text(2000, required=True)


class RegisterOrganisation(Strict):
    legal_name = Text(300, required=True)
    registration_number = Text(100, required=True)
    country = CountryCode(required=True)
    iban = Text(50, required=True)  # checked (country length and mod-97) by the register
    bic = Text(11, load_default=None)
    signatory = Text(200, required=True)


class ValidateBankAccount(Strict):
    organisation_id = Text(60, required=True)
    iban = Text(50, required=True)


class ListOrganisations(Strict):
    country = CountryCode(load_default=None)
    registration_number = Text(100, load_default=None)
    limit = Limit()


class SignContract(Strict):
    grant_id = Text(60, required=True)
    organisation_id = Text(60, required=True)
    start_date = fields.Date(required=True)
    duration_months = Months(load_default=None)
    annual_budgets = fields.List(Money(), load_default=None, validate=validate.Length(min=1, max=10))


class RequestPayment(Strict):
    grant_id = Text(60, required=True)
    tranche_number = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=20))
    amount_eur = Money(required=True, validate=_positive)
    idempotency_key = Text(100, required=True)


class ApprovePayment(Strict):
    payment_id = Text(60, required=True)
    value_date = fields.Date(required=True)
    bank_reference = Text(100, required=True)


class ListPayments(Strict):
    grant_id = Text(60, load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(PAYMENT_STATUSES))
    limit = Limit()


class SubmitReport(Strict):
    grant_id = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("interim", "final")))
    number = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=10))
    expenditure = MoneyMap(ANNEX_III_HEADINGS, required=True)


class ReportId(Strict):
    report_id = Text(60, required=True)


class ReturnReport(ReportId):
    reason = Text(2000, required=True)


class ReallocateBudget(Strict):
    grant_id = Text(60, required=True)
    new_budget = MoneyMap(ANNEX_III_HEADINGS, required=True)
    reason = Text(2000, min_length=0, load_default="")


class AmendGrant(Strict):
    grant_id = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("budget", "duration", "amount")))
    reason = Text(2000, required=True)
    new_budget = MoneyMap(ANNEX_III_HEADINGS, load_default=None)
    new_duration_months = Months(load_default=None)
    new_amount_eur = Money(load_default=None, validate=_positive)
    new_annual_budgets = fields.List(Money(), load_default=None, validate=validate.Length(min=1, max=10))

    @validates_schema
    def _what_the_kind_changes(self, data, **_):
        needed = {"budget": "new_budget", "duration": "new_duration_months", "amount": "new_amount_eur"}
        field = needed.get(data.get("kind"))
        if field and data.get(field) is None:
            raise ValidationError(f"is required for a {data['kind']} amendment", field)


class GrantId(Strict):
    grant_id = Text(60, required=True)


class ListGrants(Strict):
    programme_id = Text(60, load_default=None)
    call_id = Text(60, load_default=None)
    window = Text(60, load_default=None)
    country = CountryCode(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(GRANT_STATUSES))
    limit = Limit()


class Ledger(Strict):
    programme_id = Text(60, load_default=None)
