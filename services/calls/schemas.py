"""RPC input schemas of the calls service (docs/api/calls.md).

Marshmallow checks the shape of every argument (unknown fields refused); the domain then checks the programme's
and the call's rules and names the fields it refuses with the same names.
"""

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.common.contracts.events import ANNEX_III_HEADINGS, Applicant
from services.common.values.fields import CountryCode, Logframe, Money, MoneyMap, Text, UtcDateTime

from .domain import ApplicantType, PartnerScope, Stage

STAGES = tuple(s.value for s in Stage)
APPLICANT_TYPES = tuple(t.value for t in ApplicantType)
ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,59}$"


class Strict(Schema):
    class Meta:
        unknown = RAISE


# --- programmes ------------------------------------------------------------------------------------------------


class ProgrammeSource(fields.Field):
    """A programme definition (the shape of services/calls/data/programmes/*.yaml), or the id or path of a
    programme file shipped with the service."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            return value
        if isinstance(value, str) and 0 < len(value.strip()) <= 300:
            return value.strip()
        raise ValidationError("must be a programme definition (object) or a shipped programme id or path")


class LoadProgramme(Strict):
    programme = ProgrammeSource(required=True)


class UpdateProgramme(Strict):
    """Top-level fields of the programme definition to replace; the domain validates the result as a whole."""

    programme_id = Text(60, required=True)
    name = fields.Raw()
    name_fr = fields.Raw(allow_none=True)
    funder = fields.Raw()
    administered_by = fields.Raw()
    budget_line = fields.Raw()
    budget_line_fr = fields.Raw(allow_none=True)
    currency = fields.Raw()
    ec_contribution = fields.Raw()
    period = fields.Raw()
    rule_profile = fields.Raw()
    eligible_countries = fields.Raw()
    eu_member_states = fields.Raw()
    windows = fields.Raw()


class ProgrammeId(Strict):
    programme_id = Text(60, required=True)


class ListProgrammes(Strict):
    pass


# --- calls -----------------------------------------------------------------------------------------------------


class CallWindowSchema(Strict):
    window = Text(60, required=True)
    allocation_eur = Money(required=True)


class ConsortiumSchema(Strict):
    require_eu_partner = fields.Boolean(load_default=True)
    require_target_country_partner = fields.Boolean(load_default=True)
    partner_scope = fields.String(
        load_default=PartnerScope.TARGET_COUNTRY.value, validate=validate.OneOf(tuple(s.value for s in PartnerScope))
    )
    max_co_applicants = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0, max=50)
    )


def _call_fields(required: bool) -> dict:
    """The amendable fields of a call; on amend_call nothing is required and an absent field is not changed."""
    need: dict[str, Any] = {"required": True} if required else {}
    optional: dict[str, Any] = {"load_default": None} if required else {}
    return {
        "title": Text(300, **need),
        "windows": fields.List(fields.Nested(CallWindowSchema), validate=validate.Length(min=1, max=20), **need),
        "deadline": UtcDateTime(**need),
        "min_grant_eur": Money(allow_none=True, **optional),
        "max_grant_eur": Money(allow_none=True, **optional),
        "max_ec_share": fields.Decimal(
            places=4,
            allow_nan=False,
            allow_none=True,
            validate=validate.Range(min=0, max=1, min_inclusive=False),
            **optional,
        ),
        "eligible_applicant_types": fields.List(
            fields.String(validate=validate.OneOf(APPLICANT_TYPES)),
            validate=validate.Length(min=1),
            allow_none=True,
            **optional,
        ),
        "consortium": fields.Nested(ConsortiumSchema, allow_none=True, **optional),
        "min_duration_months": fields.Integer(
            strict=True, allow_none=True, validate=validate.Range(min=1, max=120), **optional
        ),
        "max_duration_months": fields.Integer(
            strict=True, allow_none=True, validate=validate.Range(min=1, max=120), **optional
        ),
    }


CreateCall = Strict.from_dict(
    {
        "call_id": fields.String(required=True, validate=validate.Regexp(ID)),
        "programme_id": Text(60, required=True),
        **_call_fields(required=True),
    },
    name="CreateCall",
)
AmendCall = Strict.from_dict({"call_id": Text(60, required=True), **_call_fields(required=False)}, name="AmendCall")


class CallId(Strict):
    call_id = Text(60, required=True)


class ListCalls(Strict):
    programme_id = Text(60, load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(("draft", "open", "closed", "evaluated")))


# --- proposals -------------------------------------------------------------------------------------------------


class ApplicantSchema(Applicant):
    """An applicant as staff enter it: the fields proposal_submitted carries, its type one the programme knows."""

    type = fields.String(required=True, validate=validate.OneOf(APPLICANT_TYPES))


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
    # outcomes and outputs with their indicators; optional at the concept note, required at the full application
    logframe = Logframe(load_default=None, allow_none=True)

    @validates_schema
    def _one_lead(self, data, **_):
        leads = [a for a in data.get("applicants", []) if a["role"] == "lead"]
        if len(leads) != 1:
            raise ValidationError("exactly one lead applicant is required", "applicants")


class WithdrawProposal(Strict):
    proposal_id = Text(60, required=True)
    reason = Text(2000, min_length=0, load_default="")


class ProposalQuery(Strict):
    proposal_id = Text(60, load_default=None)
    reference = Text(60, load_default=None)

    @validates_schema
    def _one_key(self, data, **_):
        if not data.get("proposal_id") and not data.get("reference"):
            raise ValidationError("give proposal_id or reference", "proposal_id")


class ListProposals(Strict):
    call_id = Text(60, required=True)
    status = fields.String(load_default=None, validate=validate.OneOf(("submitted", "withdrawn", "excluded")))
    window = Text(60, load_default=None)
    country = CountryCode(load_default=None)
    screening = fields.String(
        load_default=None, validate=validate.OneOf(("unscreened", "clear", "flagged", "cleared", "excluded"))
    )
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10000))


# --- exclusion screening ---------------------------------------------------------------------------------------


class LoadExclusionList(Strict):
    csv = Text(10_000_000, required=True)
    source = Text(300, min_length=0, load_default="")


class DecideScreening(Strict):
    proposal_id = Text(60, required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(("cleared", "excluded")))
    reason = Text(2000, min_length=0, load_default="")

    @validates_schema
    def _reason_to_exclude(self, data, **_):
        if data.get("outcome") == "excluded" and not data.get("reason", "").strip():
            raise ValidationError("say why the proposal is excluded", "reason")


# --- evaluation ------------------------------------------------------------------------------------------------


class InterestSchema(Strict):
    name = Text(300, min_length=0, load_default="")
    registration_number = Text(100, min_length=0, load_default="")

    @validates_schema
    def _something(self, data, **_):
        if not data["name"].strip() and not data["registration_number"].strip():
            raise ValidationError("give an organisation name or a registration number", "name")


_INTEREST = InterestSchema()  # built once: a schema keeps no state between loads


class Interest(fields.Field):
    """An organisation the assessor has a link with: its name, or {name, registration_number}."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise ValidationError("must be an organisation name or {name, registration_number}")
        return _INTEREST.load(value)


class DeclareConflicts(Strict):
    call_id = Text(60, required=True)
    interests = fields.List(Interest(), load_default=list, validate=validate.Length(max=200))


class AssignAssessors(Strict):
    call_id = Text(60, required=True)
    stage = fields.String(load_default=Stage.CONCEPT_NOTE.value, validate=validate.OneOf(STAGES))
    assessors = fields.List(Text(200), load_default=None, validate=validate.Length(min=1, max=500))
    per_proposal = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=1, max=10))


class MyAssignments(Strict):
    call_id = Text(60, load_default=None)
    stage = fields.String(load_default=None, validate=validate.OneOf(STAGES))
    pending_only = fields.Boolean(load_default=False)


class RecordAssessment(Strict):
    proposal_id = Text(60, required=True)
    stage = fields.String(load_default=None, validate=validate.OneOf(STAGES))
    scores = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=20)),
        values=fields.Raw(),
        required=True,
        validate=validate.Length(min=1, max=100),
    )
    comments = Text(20_000, min_length=0, load_default="")
    criterion_comments = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=20)), values=Text(5000, min_length=0), load_default=dict
    )


class GetScores(Strict):
    call_id = Text(60, required=True)
    window = Text(60, load_default=None)


class PublishRanking(Strict):
    call_id = Text(60, required=True)
    window = Text(60, load_default=None)  # none: every window not yet published


class GetRanking(Strict):
    call_id = Text(60, required=True)
    window = Text(60, load_default=None)
