"""Tables of the grants service: its copies of calls, proposals and rankings (from the calls service's events),
the organisation register, and the grants with their payments, reports and amendments.

The copies record facts one row per fact (screening, evaluation, withdrawal, ranking), keyed by the calls
service's ids, so they can arrive in any order; the award assembles them. Budget rows (programme, window) are
the rows every award and amount change locks, always programme first, then window.
"""

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.storage.types import Money, UtcDateTime


class Base(DeclarativeBase):
    pass


# --- budget rows (locked by awards and amendments) ------------------------------------------------------------


class ProgrammeBudget(Base):
    """The programme's EC contribution and what is committed against it (locked by every award)."""

    __tablename__ = "programme_budgets"
    programme_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    envelope = mapped_column(Money, nullable=False)
    committed = mapped_column(Money, nullable=False)


class WindowBudget(Base):
    """A call window's allocation and what is committed against it (locked by every award in the window)."""

    __tablename__ = "window_budgets"
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), primary_key=True)
    window: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    allocation = mapped_column(Money, nullable=False)
    committed = mapped_column(Money, nullable=False)


# --- copies from the calls service ----------------------------------------------------------------------------


class CallCopy(Base):
    __tablename__ = "calls"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("programme_budgets.programme_id"))
    title: Mapped[str] = mapped_column(String(300))
    rule_profile: Mapped[str] = mapped_column(String(60))
    min_grant = mapped_column(Money, nullable=False)
    max_grant = mapped_column(Money, nullable=False)
    max_ec_share = mapped_column(Numeric(6, 4), nullable=False)
    opened_at = mapped_column(UtcDateTime, nullable=False)
    # the dates awards and contracts are checked against (None: the call_opened event did not carry them)
    deadline = mapped_column(UtcDateTime, nullable=True)
    programme_start = mapped_column(Date, nullable=True)
    programme_end = mapped_column(Date, nullable=True)
    # ec_monthly | ec_prefinancing | undp_monthly (None: the profile's default, services/grants/domain/currencies.py)
    currency_conversion: Mapped[str | None] = mapped_column(String(30), nullable=True)
    # the rule profile's Annex III caps and longest duration (None: not carried; EC PRAG's caps, no bound)
    contingency_cap = mapped_column(Numeric(6, 4), nullable=True)
    indirect_cap = mapped_column(Numeric(6, 4), nullable=True)
    max_duration_months: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ProposalCopy(Base):
    """A submitted proposal, and the steering committee's decision on it (awarded / rejected)."""

    __tablename__ = "proposals"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    programme_id: Mapped[str] = mapped_column(String(60))
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    applicant_type: Mapped[str] = mapped_column(String(60))
    lead_organisation: Mapped[str] = mapped_column(String(300))
    lead_registration_number: Mapped[str] = mapped_column(String(100))
    lead_country: Mapped[str] = mapped_column(String(2))
    title: Mapped[str] = mapped_column(String(300))
    duration_months: Mapped[int] = mapped_column(Integer)
    ec_amount_requested = mapped_column(Money, nullable=False)
    budget: Mapped[dict] = mapped_column(JSON)  # Annex III, decimal strings
    status: Mapped[str] = mapped_column(String(20))  # submitted | awarded | rejected
    rejection_reasons: Mapped[list | None] = mapped_column(JSON)
    decision_reference: Mapped[str | None] = mapped_column(String(100))
    submitted_at = mapped_column(UtcDateTime, nullable=False)
    logframe: Mapped[list | None] = mapped_column(JSON, nullable=True)  # as submitted (None: submitted without)


class Withdrawal(Base):
    __tablename__ = "proposal_withdrawals"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    reason: Mapped[str] = mapped_column(String(2000))
    withdrawn_at = mapped_column(UtcDateTime, nullable=False)


class Screening(Base):
    """The latest screening outcome of a proposal (clear, flagged, excluded, cleared)."""

    __tablename__ = "proposal_screenings"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))
    occurred_at = mapped_column(UtcDateTime, nullable=False)


class Evaluation(Base):
    __tablename__ = "proposal_evaluations"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    stage: Mapped[str] = mapped_column(String(30), primary_key=True)
    score = mapped_column(Numeric(7, 2), nullable=False)
    max_score: Mapped[int] = mapped_column(Integer)
    threshold = mapped_column(Numeric(7, 2), nullable=False)
    passed: Mapped[bool] = mapped_column(Boolean)
    occurred_at = mapped_column(UtcDateTime, nullable=False)


class RankingCopy(Base):
    """The latest published ranking of a call window: main and reserve lists in the event's wire form."""

    __tablename__ = "rankings"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    window: Mapped[str] = mapped_column(String(60), primary_key=True)
    threshold = mapped_column(Numeric(7, 2), nullable=False)
    main: Mapped[list] = mapped_column(JSON)
    reserve: Mapped[list] = mapped_column(JSON)
    excluded: Mapped[list] = mapped_column(JSON)
    published_at = mapped_column(UtcDateTime, nullable=False)


# --- the organisation register --------------------------------------------------------------------------------


class OrganisationRow(Base):
    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(300))
    registration_number: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    signatory: Mapped[str] = mapped_column(String(200))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    account_validated: Mapped[bool] = mapped_column(Boolean)
    registered_by: Mapped[str] = mapped_column(String(200))
    registered_at = mapped_column(UtcDateTime, nullable=False)
    validated_by: Mapped[str | None] = mapped_column(String(200))
    validated_at = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("country", "registration_number", name="uq_organisation_registration"),)


# --- grants ---------------------------------------------------------------------------------------------------


class GrantRow(Base):
    __tablename__ = "grants"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.proposal_id"), unique=True)
    reference: Mapped[str] = mapped_column(String(60), index=True)
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    applicant_type: Mapped[str] = mapped_column(String(60))
    lead_organisation: Mapped[str] = mapped_column(String(300))
    lead_registration_number: Mapped[str] = mapped_column(String(100))  # the contract is signed with the lead
    lead_country: Mapped[str] = mapped_column(String(2))
    title: Mapped[str] = mapped_column(String(300))
    ranking_list: Mapped[str] = mapped_column(String(10))  # main | reserve
    amount = mapped_column(Money, nullable=False)
    paid = mapped_column(Money, nullable=False)  # sum of the paid tranches, kept for the ledger
    ec_share: Mapped[str] = mapped_column(String(50))  # exact Decimal (award / total eligible costs) as text
    rule_profile: Mapped[str] = mapped_column(String(60))
    duration_months: Mapped[int] = mapped_column(Integer)
    budget: Mapped[dict] = mapped_column(JSON)  # current Annex III budget
    contract_budget: Mapped[dict] = mapped_column(JSON)  # as signed or last amended (the 15% baseline)
    status: Mapped[str] = mapped_column(String(20))  # awarded | contracted | terminated | closed | declined
    decision_reference: Mapped[str] = mapped_column(String(100))
    decision_date = mapped_column(Date, nullable=False)
    awarded_at = mapped_column(UtcDateTime, nullable=False)
    organisation_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"))
    start_date = mapped_column(Date)
    annual_budgets: Mapped[list | None] = mapped_column(JSON)
    schedule: Mapped[list] = mapped_column(JSON)  # tranches in contract_signed's wire form
    logframe: Mapped[list | None] = mapped_column(JSON, nullable=True)  # the contract's, targets as last amended
    signed_at = mapped_column(UtcDateTime)
    signed_by: Mapped[str | None] = mapped_column(String(200))  # who signed (termination's four eyes)
    decline_reason: Mapped[str | None] = mapped_column(String(2000))
    closure_kind: Mapped[str | None] = mapped_column(String(20))
    closure_final_payment = mapped_column(Money)
    closure_eligible = mapped_column(Money)  # the final amount
    recovery = mapped_column(Money)
    decommitted = mapped_column(Money)  # award - final amount, given back at closure (None before)
    closed_at = mapped_column(UtcDateTime)
    # early termination (None: not terminated): the effective date, why, who decided and when
    terminated_on = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(String(2000))
    terminated_by: Mapped[str | None] = mapped_column(String(200))
    terminated_at = mapped_column(UtcDateTime)


class PaymentRow(Base):
    __tablename__ = "payments"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    tranche_number: Mapped[int] = mapped_column(Integer)
    amount = mapped_column(Money, nullable=False)
    status: Mapped[str] = mapped_column(String(20))  # requested | approved | paid | cancelled
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at = mapped_column(UtcDateTime, nullable=False)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at = mapped_column(UtcDateTime)
    value_date = mapped_column(Date)
    bank_reference: Mapped[str | None] = mapped_column(String(100))
    cancelled_by: Mapped[str | None] = mapped_column(String(200))
    cancelled_at = mapped_column(UtcDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(2000))
    # one live payment per tranche, whatever the keys: the database's own guard against paying a tranche twice
    # (a cancelled request keeps its row and its key, and no longer holds the tranche)
    __table_args__ = (
        Index(
            "uq_payment_tranche",
            "grant_id",
            "tranche_number",
            unique=True,
            postgresql_where=text("status <> 'cancelled'"),
            sqlite_where=text("status <> 'cancelled'"),
        ),
    )


class DecommitmentRow(Base):
    """Money a grant gave back to its window and programme, and why (the grant row holds the total)."""

    __tablename__ = "decommitments"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    amount = mapped_column(Money, nullable=False)
    committed_before = mapped_column(Money, nullable=False)
    reason: Mapped[str] = mapped_column(String(2000))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at = mapped_column(UtcDateTime, nullable=False)


class ReportRow(Base):
    __tablename__ = "reports"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # interim | final
    number: Mapped[int] = mapped_column(Integer)
    period_start = mapped_column(Date, nullable=False)
    period_end = mapped_column(Date, nullable=False)
    expenditure: Mapped[dict] = mapped_column(JSON)
    total = mapped_column(Money, nullable=False)
    status: Mapped[str] = mapped_column(String(20))  # submitted | accepted | returned
    reason: Mapped[str] = mapped_column(String(2000))
    submitted_by: Mapped[str | None] = mapped_column(String(200))
    submitted_at = mapped_column(UtcDateTime, nullable=False)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at = mapped_column(UtcDateTime)
    # the report's expenditure lines in their currencies, each with the rate used and its EUR value (None: the
    # report gave EUR per heading only)
    lines: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # actual values of the logframe's indicators for the report's period: [{code, value, comment}]
    actuals: Mapped[list | None] = mapped_column(JSON, nullable=True)


class AmendmentRow(Base):
    """The history of reallocations and amendments (the grant row holds the result)."""

    __tablename__ = "amendments"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # reallocation | budget | duration | amount
    reason: Mapped[str] = mapped_column(String(2000))
    amount = mapped_column(Money, nullable=False)
    duration_months: Mapped[int] = mapped_column(Integer)
    budget: Mapped[dict] = mapped_column(JSON)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at = mapped_column(UtcDateTime, nullable=False)
    targets: Mapped[list | None] = mapped_column(JSON, nullable=True)  # a targets amendment: before and after


# --- exchange rates -------------------------------------------------------------------------------------------


class ExchangeRateRow(Base):
    """One published rate: units of `currency` one EUR buys in `month` (InforEuro or UN operational). Never
    changed once published, so every converted report line can be re-derived."""

    __tablename__ = "exchange_rates"
    rate_type: Mapped[str] = mapped_column(String(20), primary_key=True)  # inforeuro | un_operational
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)  # ISO 4217
    rate = mapped_column(Numeric(20, 6), nullable=False)
    source: Mapped[str] = mapped_column(String(300))
    published_by: Mapped[str] = mapped_column(String(200))
    published_at = mapped_column(UtcDateTime, nullable=False)


class PendingAmendmentRow(Base):
    """An amendment that raises the award, waiting for a second person (four eyes): applied only when someone
    other than its proposer approves it (`approve_amendment`), with every rule checked again then."""

    __tablename__ = "pending_amendments"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # amount
    reason: Mapped[str] = mapped_column(String(2000))
    current_amount = mapped_column(Money, nullable=False)  # the award when it was proposed
    new_amount = mapped_column(Money, nullable=False)
    new_budget: Mapped[dict | None] = mapped_column(JSON)
    new_annual_budgets: Mapped[list | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))  # awaiting_approval | approved
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at = mapped_column(UtcDateTime, nullable=False)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at = mapped_column(UtcDateTime)
