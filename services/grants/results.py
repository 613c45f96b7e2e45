"""What the grants service's operations return (views.py, commands.py), as schemas for the gateway's document."""

from marshmallow import fields

from services.common.service.results import DecimalText, Many, MoneyByKey, MoneyText, Result


class LeadApplicant(Result):
    country = fields.String(allow_none=True)
    registration_number = fields.String(allow_none=True)


class GrantSummary(Result):
    grant_id = fields.String(required=True)
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    call_id = fields.String(required=True)
    programme_id = fields.String(required=True)
    window = fields.String()
    country = fields.String()
    applicant_type = fields.String(allow_none=True)
    lead_organisation = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    lead_applicant = fields.Nested(LeadApplicant)
    ranking_list = fields.String(allow_none=True, metadata={"description": "main | reserve"})
    status = fields.String(required=True)
    amount_eur = MoneyText(required=True)
    paid_eur = MoneyText(required=True)
    committed_eur = MoneyText(required=True)
    decommitted_eur = MoneyText(required=True)
    decision_reference = fields.String(allow_none=True)
    decision_date = fields.Date(allow_none=True)
    awarded_at = fields.DateTime(allow_none=True)
    start_date = fields.Date(allow_none=True)
    duration_months = fields.Integer(allow_none=True)


class Organisation(Result):
    organisation_id = fields.String(required=True)
    legal_name = fields.String(required=True)
    registration_number = fields.String(required=True)
    country = fields.String(required=True)
    signatory = fields.String(allow_none=True)
    iban = fields.String(allow_none=True, metadata={"description": "masked for roles that may not see it"})
    bic = fields.String(allow_none=True)
    account_validated = fields.Boolean()
    registered_by = fields.String(allow_none=True)
    registered_at = fields.DateTime(allow_none=True)
    validated_by = fields.String(allow_none=True)
    validated_at = fields.DateTime(allow_none=True)
    iban_shared_with = fields.List(
        fields.Dict(), metadata={"description": "the other organisations registered with the same account"}
    )


class Tranche(Result):
    number = fields.Integer(required=True)
    kind = fields.String(required=True)
    planned_amount_eur = MoneyText(required=True)
    condition = fields.String(allow_none=True)
    condition_met = fields.Boolean()
    due_date = fields.Date(allow_none=True)
    status = fields.String(required=True, metadata={"description": "planned | requested | approved | paid | lapsed"})
    paid_eur = MoneyText()
    payable_eur = MoneyText("what the tranche may carry now (after the 70% rule), EUR")


class ReportDue(Result):
    kind = fields.String(required=True)
    number = fields.Integer()
    condition = fields.String(allow_none=True)
    period_start = fields.Date()
    period_end = fields.Date()
    due_date = fields.Date()
    status = fields.String(required=True)
    report_id = fields.String(allow_none=True)


class Payment(Result):
    payment_id = fields.String(required=True)
    grant_id = fields.String(required=True)
    idempotency_key = fields.String(allow_none=True)
    tranche_number = fields.Integer(required=True)
    amount_eur = MoneyText(required=True)
    status = fields.String(required=True)
    requested_by = fields.String(allow_none=True)
    requested_at = fields.DateTime(allow_none=True)
    approved_by = fields.String(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    value_date = fields.Date(allow_none=True)
    bank_reference = fields.String(allow_none=True)
    cancelled_by = fields.String(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)


class Report(Result):
    report_id = fields.String(required=True)
    grant_id = fields.String(required=True)
    kind = fields.String(required=True)
    number = fields.Integer(allow_none=True)
    period_start = fields.Date(allow_none=True)
    period_end = fields.Date(allow_none=True)
    expenditure = fields.Raw(allow_none=True, metadata={"description": "budget heading -> EUR spent"})
    total_eur = MoneyText(allow_none=True)
    lines = fields.List(fields.Raw())
    actuals = fields.List(fields.Raw())
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    submitted_by = fields.String(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class Closure(Result):
    kind = fields.String(required=True)
    final_payment_eur = MoneyText(allow_none=True)
    ec_eligible_eur = MoneyText(allow_none=True)
    recovery_eur = MoneyText(allow_none=True)
    decommitted_eur = MoneyText(allow_none=True)
    decommitment_reason = fields.String(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)


class Termination(Result):
    effective_date = fields.Date(required=True)
    reason = fields.String(allow_none=True)
    terminated_by = fields.String(allow_none=True)
    terminated_at = fields.DateTime(allow_none=True)


class Grant(GrantSummary):
    """Everything about one grant: schedule, reports due, payments, reports and closure."""

    ec_share = DecimalText("the EC's share of the budget, four places")
    remaining_eur = MoneyText()
    budget = MoneyByKey("budget heading -> EUR", allow_none=True)
    contract_budget = fields.Raw(allow_none=True, metadata={"description": "the budget as contracted"})
    rule_profile = fields.String(allow_none=True)
    end_date = fields.Date(allow_none=True)
    signed_at = fields.DateTime(allow_none=True)
    annual_budgets = fields.Raw(allow_none=True, metadata={"description": "the budget per year of the grant"})
    organisation = fields.Nested(Organisation, allow_none=True)
    schedule = Many(Tranche)
    reports_due = Many(ReportDue)
    payments = Many(Payment)
    reports = Many(Report)
    accepted_expenditure_eur = MoneyText()
    decline_reason = fields.String(allow_none=True)
    logframe = fields.Raw(allow_none=True, metadata={"description": "the contract's outcomes and outputs"})
    closure = fields.Nested(Closure, allow_none=True)
    termination = fields.Nested(Termination, allow_none=True)


class PendingAmendment(Result):
    amendment_id = fields.String(required=True)
    grant_id = fields.String(required=True)
    kind = fields.String(required=True)
    reason = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "awaiting_approval | approved | ..."})
    current_amount_eur = MoneyText(allow_none=True)
    new_amount_eur = MoneyText(allow_none=True)
    new_budget = fields.Raw(allow_none=True)
    new_annual_budgets = fields.Raw(allow_none=True)
    requested_by = fields.String(allow_none=True)
    requested_at = fields.DateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class GrantInFull(Grant):
    amendments_awaiting_approval = Many(PendingAmendment)


class Decided(Grant):
    """A declined or closed grant, with the reserve proposal that may take its place."""

    next_reserve_proposal_id = fields.String(allow_none=True)


class Amended(Grant):
    amendment_id = fields.String(required=True)
    requested_by = fields.String(metadata={"description": "approve_amendment: who asked for it"})
    approved_by = fields.String(metadata={"description": "approve_amendment: who approved it"})


class AmendOutcome(Amended):
    """amend_grant: the amended grant, or (when the change needs a second approval) only the pending amendment's
    keys: amendment_id, grant_id, kind, reason, status, current/new amounts and budgets, requested/decided."""

    kind = fields.String()
    reason = fields.String(allow_none=True)
    current_amount_eur = MoneyText(allow_none=True)
    new_amount_eur = MoneyText(allow_none=True)
    new_budget = fields.Raw(allow_none=True)
    new_annual_budgets = fields.Raw(allow_none=True)
    requested_at = fields.DateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)

    ALWAYS = frozenset({"amendment_id", "grant_id", "status"})  # the keys both answers carry

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():  # the instance's own copies: Grant's stay required
            field.required = name in self.ALWAYS


class ProposalDecision(Result):
    proposal_id = fields.String(required=True)
    reference = fields.String(required=True)
    call_id = fields.String(required=True)
    window = fields.String(allow_none=True)
    status = fields.String(required=True)
    reasons = fields.List(fields.Raw())
    decision_reference = fields.String(allow_none=True)


class RatesSet(Result):
    month = fields.String(required=True)
    rate_type = fields.String(required=True)
    source = fields.String(allow_none=True)
    published = fields.List(fields.String(), metadata={"description": "currencies published now"})
    unchanged = fields.List(fields.String(), metadata={"description": "currencies already published"})


class PublishedRate(Result):
    rate_type = fields.String(required=True)
    month = fields.String(required=True)
    currency = fields.String(required=True)
    rate = DecimalText("units of the currency for one EUR", required=True)
    source = fields.String(allow_none=True)
    published_by = fields.String(allow_none=True)
    published_at = fields.DateTime(allow_none=True)


class LedgerGrant(Result):
    grant_id = fields.String(required=True)
    reference = fields.String(required=True)
    programme_id = fields.String(required=True)
    call_id = fields.String(required=True)
    window = fields.String()
    country = fields.String()
    status = fields.String(required=True)
    awarded_eur = MoneyText(required=True)
    committed_eur = MoneyText(required=True)
    decommitted_eur = MoneyText(required=True)
    paid_eur = MoneyText(required=True)
    recovery_eur = MoneyText(required=True)


class GrantsLedger(Result):
    grants = Many(LedgerGrant)


GRANT = Grant()
GRANT_IN_FULL = GrantInFull()
DECIDED = Decided()
AMENDED = Amended()
AMEND_OUTCOME = AmendOutcome()
GRANTS = GrantSummary(many=True)
PROPOSAL_DECISION = ProposalDecision()
ORGANISATION = Organisation()
ORGANISATIONS = Organisation(many=True)
PAYMENT = Payment()
PAYMENTS = Payment(many=True)
REPORT = Report()
RATES_SET = RatesSet()
RATES = PublishedRate(many=True)
LEDGER = GrantsLedger()
