"""RPC input schemas of the calls service."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.common.events import ANNEX_III_HEADINGS, LANGUAGES
from services.common.fields import CountryCode, Money, MoneyMap, Text


class Strict(Schema):
    class Meta:
        unknown = RAISE


class WindowSchema(Strict):
    code = Text(60, required=True)
    name = Text(200, required=True)
    allocation_eur = Money(required=True)


class ProgrammeSchema(Strict):
    id = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9][A-Z0-9_-]{1,39}$"))
    name = Text(300, required=True)
    funder = Text(200, load_default="European Commission")
    budget_line = Text(200, load_default="Migration and Asylum")
    ec_contribution_eur = Money(required=True)
    eligible_countries = fields.List(CountryCode(), required=True, validate=validate.Length(min=1, max=250))
    eu_member_states = fields.List(CountryCode(), load_default=list)
    windows = fields.List(fields.Nested(WindowSchema), required=True, validate=validate.Length(min=1, max=20))
    rule_profile = fields.String(load_default="ec_prag", validate=validate.OneOf(("ec_prag", "undp")))

    @validates_schema
    def _allocations_within_contribution(self, data, **_):
        total = sum(w["allocation_eur"] for w in data["windows"])
        if total > data["ec_contribution_eur"]:
            raise ValidationError("window allocations exceed the EC contribution", "windows")


class LoadProgramme(Strict):
    programme = fields.Nested(ProgrammeSchema, required=True)


class CallWindowSchema(Strict):
    window = Text(60, required=True)
    allocation_eur = Money(required=True)


class CreateCall(Strict):
    call_id = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,59}$"))
    programme_id = Text(60, required=True)
    title = Text(300, required=True)
    windows = fields.List(fields.Nested(CallWindowSchema), required=True, validate=validate.Length(min=1, max=20))
    deadline = fields.AwareDateTime(required=True)
    min_grant_eur = Money(load_default=None)
    max_grant_eur = Money(load_default=None)
    max_ec_share = fields.Decimal(load_default=None, places=4, validate=validate.Range(min=0, max=1),
                                  allow_nan=False)


class CallId(Strict):
    call_id = Text(60, required=True)


class ApplicantSchema(Strict):
    name = Text(300, required=True)
    type = Text(60, required=True)
    country = CountryCode(required=True)
    registration_number = Text(100, required=True)
    email = fields.Email(required=True)
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    role = fields.String(required=True, validate=validate.OneOf(("lead", "co_applicant")))


class SubmitProposal(Strict):
    call_id = Text(60, required=True)
    idempotency_key = Text(100, required=True)
    window = Text(60, required=True)
    target_country = CountryCode(required=True)
    title = Text(300, required=True)
    summary = Text(5000, min_length=0, load_default="")
    duration_months = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=120))
    applicants = fields.List(fields.Nested(ApplicantSchema), required=True, validate=validate.Length(min=1, max=30))
    budget = MoneyMap(ANNEX_III_HEADINGS, required=True)
    total_eligible_cost_eur = Money(required=True)
    ec_amount_requested_eur = Money(required=True)
    co_financing_eur = Money(required=True)

    @validates_schema
    def _one_lead(self, data, **_):
        leads = [a for a in data["applicants"] if a["role"] == "lead"]
        if len(leads) != 1:
            raise ValidationError("exactly one lead applicant is required", "applicants")


class ProposalQuery(Strict):
    proposal_id = Text(60, load_default=None)
    reference = Text(60, load_default=None)


class ListProposals(Strict):
    call_id = Text(60, required=True)
    status = Text(20, load_default=None)
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10000))
