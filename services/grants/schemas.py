"""RPC input schemas of the grants service (unknown fields refused; InvalidInput names every field)."""

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.common.contracts.events import ANNEX_III_HEADINGS
from services.common.values.fields import CountryCode, Money, MoneyMap, Text

GRANT_STATUSES = ("awarded", "contracted", "terminated", "closed", "declined")
PAYMENT_STATUSES = ("requested", "approved", "paid", "cancelled")


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
    decision_date = fields.Date(load_default=None)  # the steering committee's; default: the day it is recorded


class RejectProposal(Strict):
    proposal_id = Text(60, required=True)
    reasons = fields.List(Text(2000), required=True, validate=validate.Length(min=1, max=20))
    decision_reference = Text(100, min_length=0, load_default="")


class DeclineGrant(Strict):
    grant_id = Text(60, required=True)
    reason = Text(2000, required=True)


class TerminateGrant(Strict):
    grant_id = Text(60, required=True)
    reason = Text(2000, required=True)
    effective_date = fields.Date(load_default=None)  # the day the action stops; default: the day it is recorded


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
    shared_iban_reason = Text(2000, load_default=None)  # required when another organisation has the same IBAN


class ListOrganisations(Strict):
    country = CountryCode(load_default=None)
    registration_number = Text(100, load_default=None)
    limit = Limit()


class SignContract(Strict):
    grant_id = Text(60, required=True)
    organisation_id = Text(60, required=True)
    start_date = fields.Date(load_default=None)  # default: the day the contract is signed
    duration_months = Months(load_default=None)
    annual_budgets = fields.List(Money(), load_default=None, validate=validate.Length(min=1, max=10))


class RequestPayment(Strict):
    grant_id = Text(60, required=True)
    tranche_number = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=20))
    amount_eur = Money(required=True, validate=_positive)
    idempotency_key = Text(100, required=True)


class ApprovePayment(Strict):
    payment_id = Text(60, required=True)
    value_date = fields.Date(load_default=None)  # the bank's value date; default: the day it is approved
    bank_reference = Text(100, required=True)


class CancelPayment(Strict):
    payment_id = Text(60, required=True)
    reason = Text(2000, required=True)


class ListPayments(Strict):
    grant_id = Text(60, load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(PAYMENT_STATUSES))
    limit = Limit()


class ExpenditureLine(Strict):
    heading = fields.String(required=True, validate=validate.OneOf(ANNEX_III_HEADINGS))
    amount = Money(required=True, validate=_positive)  # in `currency`, two places
    currency = Text(3, min_length=3, required=True)  # ISO 4217, checked by the grants domain
    incurred_on = fields.Date(required=True)  # within the report's period; its month picks the rate
    description = Text(300, min_length=0, load_default="")


class Actual(Strict):
    code = Text(20, required=True)
    value = fields.Raw(required=True)  # a decimal string or a text, judged against the indicator's measure
    comment = Text(500, min_length=0, load_default="")


class SubmitReport(Strict):
    grant_id = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("interim", "final")))
    number = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=10))
    # EUR per heading, or the lines in their currencies (converted under the programme's rule): one of the two
    expenditure = MoneyMap(ANNEX_III_HEADINGS, load_default=None)
    lines = fields.List(fields.Nested(ExpenditureLine), load_default=None, validate=validate.Length(min=1, max=2000))
    # actual values of the grant's logframe indicators over the period (optional)
    actuals = fields.List(fields.Nested(Actual), load_default=None, validate=validate.Length(min=1, max=500))

    @validates_schema
    def _one_form(self, data, **_):
        if (data.get("expenditure") is None) == (data.get("lines") is None):
            raise ValidationError("give the expenditure per heading in EUR or the lines, one of the two", "expenditure")


MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
RATE_TYPES = ("inforeuro", "un_operational")


class Rate(Strict):
    currency = Text(3, min_length=3, required=True)  # ISO 4217 (EUR is the base, not a rate)
    rate = Text(30, required=True)  # units of the currency per EUR, a decimal string (never a float), <= 6 places


class SetRates(Strict):
    month = fields.String(required=True, validate=validate.Regexp(MONTH, error="must be a month as YYYY-MM"))
    rate_type = fields.String(load_default="inforeuro", validate=validate.OneOf(RATE_TYPES))
    source = Text(300, required=True)  # e.g. "InforEuro accounting rates, 2026-03 (file inforeuro-2026-03.csv)"
    rates = fields.List(fields.Nested(Rate), required=True, validate=validate.Length(min=1, max=500))


class ListRates(Strict):
    month = fields.String(load_default=None, validate=validate.Regexp(MONTH, error="must be a month as YYYY-MM"))
    from_month = fields.String(load_default=None, validate=validate.Regexp(MONTH, error="must be a month as YYYY-MM"))
    to_month = fields.String(load_default=None, validate=validate.Regexp(MONTH, error="must be a month as YYYY-MM"))
    currency = Text(3, min_length=3, load_default=None)
    rate_type = fields.String(load_default=None, validate=validate.OneOf(RATE_TYPES))
    limit = Limit()


class ReportId(Strict):
    report_id = Text(60, required=True)


class ReturnReport(ReportId):
    reason = Text(2000, required=True)


class ReallocateBudget(Strict):
    grant_id = Text(60, required=True)
    new_budget = MoneyMap(ANNEX_III_HEADINGS, required=True)
    reason = Text(2000, min_length=0, load_default="")


class TargetChange(Strict):
    code = Text(20, required=True)
    target_value = fields.Raw(required=True)  # a decimal string or a text, judged against the indicator's measure
    target_date = fields.Date(load_default=None)


class AmendmentId(Strict):
    amendment_id = Text(60, required=True)


class AmendGrant(Strict):
    grant_id = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("budget", "duration", "amount", "targets")))
    reason = Text(2000, required=True)
    new_budget = MoneyMap(ANNEX_III_HEADINGS, load_default=None)
    new_duration_months = Months(load_default=None)
    new_amount_eur = Money(load_default=None, validate=_positive)
    new_annual_budgets = fields.List(Money(), load_default=None, validate=validate.Length(min=1, max=10))
    # a targets amendment: [{code, target_value, target_date?}], checked against the grant's logframe
    new_targets = fields.List(fields.Nested(TargetChange), load_default=None, validate=validate.Length(min=1, max=200))

    @validates_schema
    def _what_the_kind_changes(self, data, **_):
        needed = {
            "budget": "new_budget",
            "duration": "new_duration_months",
            "amount": "new_amount_eur",
            "targets": "new_targets",
        }
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
