"""What the calls service's operations return (views.py, commands.py, evaluation.py), as schemas for the
gateway's document."""

from marshmallow import fields

from services.common.service.results import Figure, Many, MoneyText, Open, Result

STATUS_COUNTS = fields.Dict(
    keys=fields.String(), values=fields.Integer(), metadata={"description": "status -> how many"}
)


class Programme(Open):
    """The programme's definition as loaded (its file's keys), with the version it is at."""

    id = fields.String(required=True)
    name = fields.String()
    version = fields.Integer(required=True)
    updated_at = fields.DateTime(required=True)


class LoadedProgramme(Programme):
    created = fields.Boolean(required=True, metadata={"description": "false: the programme was replaced"})


class ProgrammeSummary(Result):
    id = fields.String(required=True)
    name = fields.String(required=True)
    ec_contribution_eur = MoneyText(required=True)
    rule_profile = fields.String(required=True)
    period = fields.Dict()
    windows = fields.List(fields.String())
    eligible_countries = fields.Integer(metadata={"description": "how many"})
    version = fields.Integer(required=True)


class WindowAllocation(Result):
    window = fields.String(required=True)
    allocation_eur = MoneyText(required=True)


class Consortium(Result):
    require_eu_partner = fields.Boolean()
    require_target_country_partner = fields.Boolean()
    partner_scope = fields.String()
    max_co_applicants = fields.Integer(allow_none=True)


class Call(Result):
    call_id = fields.String(required=True)
    programme_id = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "draft | open | closed | evaluated"})
    deadline = fields.DateTime(required=True)
    windows = Many(WindowAllocation)
    min_grant_eur = MoneyText()
    max_grant_eur = MoneyText()
    max_ec_share = Figure("the EC's largest share of a budget")
    contingency_cap = Figure("largest share of contingency")
    indirect_cap = Figure("largest share of indirect costs")
    eligible_applicant_types = fields.List(fields.String())
    consortium = fields.Nested(Consortium)
    min_duration_months = fields.Integer()
    max_duration_months = fields.Integer()
    rule_profile = fields.String()
    opened_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    evaluated_at = fields.DateTime(allow_none=True)


class ClosedCall(Call):
    proposals = fields.Integer(required=True, metadata={"description": "proposals received (not withdrawn)"})


class CallWithCounts(Call):
    proposals = STATUS_COUNTS


class Proposal(Result):
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    call_id = fields.String(required=True)
    status = fields.String(required=True)
    window = fields.String()
    target_country = fields.String()
    title = fields.String(allow_none=True)
    lead_organisation = fields.Raw(allow_none=True, metadata={"description": "as the proposal gives it"})
    ec_amount_requested_eur = MoneyText(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    screening = fields.String(allow_none=True)


class Submitted(Proposal):
    created = fields.Boolean(required=True, metadata={"description": "false: answered from its idempotency key"})


class ProposalInFull(Proposal):
    proposal = fields.Dict(metadata={"description": "the proposal as submitted"})
    withdrawal_reason = fields.String(allow_none=True)
    screening_hits = fields.List(fields.Dict())
    screening_reason = fields.String(allow_none=True)
    screening_decided_by = fields.String(allow_none=True)
    screened_at = fields.DateTime(allow_none=True)


class ExclusionListLoaded(Result):
    list_id = fields.Integer(required=True)
    entries = fields.Integer(required=True)
    source = fields.String(allow_none=True)
    screened = fields.Integer(required=True, metadata={"description": "pending proposals screened against it"})
    flagged = fields.List(fields.String(), required=True, metadata={"description": "references of proposals it flags"})


class Interest(Result):
    name = fields.String(required=True)
    registration_number = fields.String(required=True)


class ProposalAtStage(Result):
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    stage = fields.String(required=True)


class Declared(Result):
    call_id = fields.String(required=True)
    assessor = fields.String(required=True)
    interests = Many(Interest)
    declared_at = fields.DateTime(required=True)
    recused = Many(ProposalAtStage)


class Assigned(Result):
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    assessors = fields.List(fields.String())


class Assignments(Result):
    call_id = fields.String(required=True)
    stage = fields.String(required=True)
    per_proposal = fields.Integer(required=True)
    assigned = Many(Assigned)
    assessor_load = fields.Dict(
        data_key="load", keys=fields.String(), values=fields.Integer(), metadata={"description": "assessor -> load"}
    )


class Criterion(Result):
    code = fields.String(required=True)
    label = fields.String()
    section = fields.String(allow_none=True)
    weight = Figure("the criterion's weight")
    scale = fields.List(Figure("scale bound"), metadata={"description": "[lowest, highest]"})


class MyAssignment(Result):
    call_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    stage = fields.String(required=True)
    assigned_at = fields.DateTime()
    status = fields.String(required=True, metadata={"description": "pending | assessed"})
    window = fields.String()
    target_country = fields.String()
    proposal = fields.Dict()
    out_of = Figure("the grid's maximum")
    threshold = Figure("the grid's pass mark", nullable=True)
    criteria = Many(Criterion)


class Recorded(Result):
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    stage = fields.String(required=True)
    assessor = fields.String(required=True)
    total = Figure("this assessment's total")
    out_of = Figure("the grid's maximum")
    assessments = fields.Integer()
    needs_third_assessor = fields.Boolean()
    third_assessor = fields.String(allow_none=True)
    waiting_for = fields.List(fields.String())
    complete = fields.Boolean(required=True)
    score = Figure("the stage's score once complete", nullable=True)
    passed = fields.Boolean(allow_none=True)


class Assessment(Result):
    assessor = fields.String(required=True)
    total = Figure("total")
    scores = fields.Dict()
    comments = fields.Raw(allow_none=True)
    criterion_comments = fields.Raw(allow_none=True)
    recorded_at = fields.DateTime()


class StageScores(Result):
    assessors = fields.List(fields.String())
    assessments = Many(Assessment)
    needs_third_assessor = fields.Boolean()
    score = Figure("the stage's score", nullable=True)
    passed = fields.Boolean(allow_none=True)
    out_of = Figure("the grid's maximum")
    threshold = Figure("the grid's pass mark", nullable=True)


class ProposalScores(Result):
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    window = fields.String()
    target_country = fields.String()
    screening = fields.String(allow_none=True)
    stages = fields.Dict(keys=fields.String(), values=fields.Nested(StageScores), metadata={"description": "CN | FA"})


class RankedProposal(Result):
    rank = fields.Integer(required=True)
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    country = fields.String()
    ec_amount_requested_eur = MoneyText()
    score = Figure("full-application score")
    submitted_at = fields.DateTime()


class CountryRanking(Result):
    main = fields.Integer()
    main_amount = MoneyText()
    reserve = fields.Integer()
    reserve_amount = MoneyText()
    excluded = fields.Integer()


class FailedConceptNote(Result):
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    country = fields.String()
    score = Figure("concept-note score")


class Ranking(Result):
    call_id = fields.String(required=True)
    window = fields.String(required=True)
    allocation = MoneyText()
    threshold = Figure("pass mark")
    main_total = MoneyText()
    remaining = MoneyText()
    main = Many(RankedProposal)
    reserve = Many(RankedProposal)
    excluded = Many(RankedProposal)
    by_country = fields.Dict(keys=fields.String(), values=fields.Nested(CountryRanking))
    concept_note_failed = Many(FailedConceptNote)
    published_at = fields.DateTime()


class PublishedRanking(Ranking):
    published_by = fields.String(allow_none=True)


class Published(Result):
    call_id = fields.String(required=True)
    status = fields.String(required=True)
    rankings = Many(Ranking)


PROGRAMME = Programme()
LOADED_PROGRAMME = LoadedProgramme()
PROGRAMMES = ProgrammeSummary(many=True)
CALL = Call()
CALLS = Call(many=True)
CLOSED_CALL = ClosedCall()
CALL_WITH_COUNTS = CallWithCounts()
SUBMITTED = Submitted()
PROPOSAL = Proposal()
PROPOSAL_IN_FULL = ProposalInFull()
PROPOSALS = Proposal(many=True)
EXCLUSION_LIST = ExclusionListLoaded()
DECLARED = Declared()
ASSIGNMENTS = Assignments()
MY_ASSIGNMENTS = MyAssignment(many=True)
RECORDED = Recorded()
SCORES = ProposalScores(many=True)
PUBLISHED = Published()
RANKINGS = PublishedRanking(many=True)
