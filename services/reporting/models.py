"""Tables of the reporting service: the append-only event archive, the projections built from it, and the
archive of generated EC reports.

Projections are facts: one row per event or per thing, never a shared running total (design.md §5: hot total
rows serialise concurrent workers). Every fact keeps the date the reports filter on (award decision date, value
date, acceptance date...), so any report can be asked as of a past date. Events of different types travel on
different queues and may arrive out of order, so no fact table has a foreign key to another.

The ORM classes are named *Row: the plain facts the report model consumes (budget_report.GrantFact...) are
dataclasses of their own.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.storage.types import IntId, Money, UtcDateTime
from services.common.values.annex import HEADINGS


class Base(DeclarativeBase):
    if TYPE_CHECKING:  # every class here is mapped to a Table (DeclarativeBase says any FromClause)
        __table__: ClassVar[Table]


class ArchivedEvent(Base):
    """Every consumed event, as received; projections can always be rebuilt from here."""

    __tablename__ = "event_archive"
    seq: Mapped[int] = mapped_column(IntId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(60), index=True)
    producer: Mapped[str] = mapped_column(String(30))
    occurred_at = mapped_column(UtcDateTime, nullable=False, index=True)
    body: Mapped[dict] = mapped_column(JSON)
    archived_at = mapped_column(UtcDateTime, nullable=False)


# --- calls: programmes, calls, proposals ---------------------------------------------------------------------


class ProgrammeRow(Base):
    __tablename__ = "programme_facts"
    programme_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    envelope = mapped_column(Money, nullable=False)
    period_start = mapped_column(Date, nullable=True)  # the programme period (None: not carried by call_opened)
    period_end = mapped_column(Date, nullable=True)


class WindowRow(Base):
    __tablename__ = "window_facts"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    window: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    name: Mapped[str] = mapped_column(String(200))
    allocation = mapped_column(Money, nullable=False)
    position: Mapped[int] = mapped_column(Integer)  # the call's order of windows, kept for the reports


class CallRow(Base):
    __tablename__ = "call_facts"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    title: Mapped[str] = mapped_column(String(300))
    rule_profile: Mapped[str] = mapped_column(String(60))
    deadline = mapped_column(UtcDateTime, nullable=False)
    opened_at = mapped_column(UtcDateTime, nullable=False)


class CallClosureRow(Base):
    __tablename__ = "call_closures"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    closed_at = mapped_column(UtcDateTime, nullable=False)
    proposals: Mapped[int] = mapped_column(Integer)


class ProposalRow(Base):
    __tablename__ = "proposal_facts"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    reference: Mapped[str] = mapped_column(String(60))
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    applicant_type: Mapped[str] = mapped_column(String(60))
    requested = mapped_column(Money, nullable=False)
    submitted_on = mapped_column(Date, nullable=False)


class ProposalOutcomeRow(Base):
    """One row per proposal per event that decides something about it: withdrawn, screened (clear, flagged,
    excluded, cleared), evaluated (passed/failed per stage), ranked (main/reserve/excluded), rejected."""

    __tablename__ = "proposal_outcomes"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(40))
    score = mapped_column(Numeric(10, 2), nullable=True)
    occurred_at = mapped_column(UtcDateTime, nullable=False)  # orders outcomes of the same day
    decided_on = mapped_column(Date, nullable=False)


# --- grants: awards, contracts, amendments, payments, reports, closures --------------------------------------


class GrantRow(Base):
    __tablename__ = "grant_facts"
    # the report's order: its grant lines are paged by this key
    __table_args__ = (Index("ix_grant_facts_reference_grant_id", "reference", "grant_id"),)
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(String(60))
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    reference: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    call_id: Mapped[str] = mapped_column(String(60))
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    applicant_type: Mapped[str] = mapped_column(String(60))
    lead_organisation: Mapped[str] = mapped_column(String(300))
    amount = mapped_column(Money, nullable=False)  # as awarded; amendments are facts of their own
    budget: Mapped[dict] = mapped_column(JSON)
    decision_reference: Mapped[str] = mapped_column(String(100))
    decision_date = mapped_column(Date, nullable=False)  # the award date the reports count from
    awarded_at = mapped_column(UtcDateTime, nullable=False)
    # contract_facts.signed_on of the grant (COPIED_COLUMNS), None until signed: the report reads whether a grant
    # was contracted by its date from the grant's own row, without a join to the contracts
    contract_signed_on = mapped_column(Date, nullable=True)


class BudgetLineRow(Base):
    """One Annex III heading of a grant's budget, as awarded (source "award") or as an amendment set it (source:
    the amendment id), in the budget's order, with the EC's part of it at that source's amount (the amount spread
    over the headings in proportion, to the cent, by the largest remainders: budget_report.ec_part_by_heading).
    The report sums these parts in SQL for every grant whose commitment is still that amount, instead of reading
    each grant's JSON budget."""

    __tablename__ = "budget_line_facts"
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    source: Mapped[str] = mapped_column(String(60), primary_key=True)
    heading: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    amount = mapped_column(Money, nullable=False)
    ec_part = mapped_column(Money, nullable=False)


def _heading_columns(suffix: str = "") -> list[Column]:
    """One Money column per Annex III heading, None where the budget or report has no such heading."""
    return [Column(f"{heading}{suffix}", Money, nullable=True) for heading in HEADINGS]


class BudgetRow(Base):
    """A grant's budget as awarded (source "award") or as an amendment set it (source: the amendment id) in one
    row: each Annex III heading's amount and, as <heading>_ec, its EC part (the same figures as its
    budget_line_facts rows). The report's totals by heading are then a sum over one row per counted grant; the
    lines keep the budget's order, which the EC parts recomputed at another amount need."""

    __tablename__ = "budget_facts"
    __table__ = Table(
        __tablename__,
        Base.metadata,
        Column("grant_id", String(60), primary_key=True),
        Column("source", String(60), primary_key=True),
        *_heading_columns(),
        *_heading_columns("_ec"),
    )


class ContractRow(Base):
    __tablename__ = "contract_facts"
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    amount = mapped_column(Money, nullable=False)
    start_date = mapped_column(Date, nullable=False)
    end_date = mapped_column(Date, nullable=False)
    duration_months: Mapped[int] = mapped_column(Integer)
    signed_on = mapped_column(Date, nullable=False)


class AmendmentRow(Base):
    """An amendment sets the grant's award to `amount` from `effective_on` (the event's date)."""

    __tablename__ = "amendment_facts"
    amendment_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    amount = mapped_column(Money, nullable=False)
    duration_months: Mapped[int] = mapped_column(Integer)
    budget: Mapped[dict] = mapped_column(JSON)
    occurred_at = mapped_column(UtcDateTime, nullable=False)
    effective_on = mapped_column(Date, nullable=False)


class PaymentRequestRow(Base):
    __tablename__ = "payment_requests"
    payment_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    tranche_number: Mapped[int] = mapped_column(Integer)
    amount = mapped_column(Money, nullable=False)
    requested_on = mapped_column(Date, nullable=False)


class PaymentCancellationRow(Base):
    """A payment request withdrawn before approval: from `cancelled_on` it is no longer awaiting payment."""

    __tablename__ = "payment_cancellations"
    payment_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    cancelled_on = mapped_column(Date, nullable=False)


class TrancheRow(Base):
    __tablename__ = "tranche_facts"
    payment_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    tranche_number: Mapped[int] = mapped_column(Integer)
    amount = mapped_column(Money, nullable=False)
    value_date = mapped_column(Date, nullable=False)
    bank_reference: Mapped[str] = mapped_column(String(100))
    paid_at = mapped_column(UtcDateTime, nullable=False)


class GrantPaymentsRow(Base):
    """What a grant was paid, as one row: the sum, the number and the distinct tranche numbers of its tranche_facts
    (every tranche recorded, whatever its value date). Not a fact of its own: the fact writer computes it again from
    tranche_facts for the grants whose tranches a batch wrote (repository.tally_payments), whether the grant is
    known here yet or not. The report of everything recorded (no as-of date) reads it instead of aggregating the
    tranches by grant; a report as of a date still aggregates them."""

    __tablename__ = "grant_payments"
    # room on each page for the rows' updated versions (HOT updates, pruned without VACUUM: migration 0011)
    __table_args__ = {"postgresql_with": {"fillfactor": 70}}
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    paid = mapped_column(Money, nullable=False)
    tranches: Mapped[int] = mapped_column(Integer)
    tranche_numbers: Mapped[int] = mapped_column(Integer)  # distinct: fewer than `tranches`, a number paid twice


class GrantReportRow(Base):
    """One row per report event: submitted, then accepted or returned (a returned report may come back)."""

    __tablename__ = "grant_report_facts"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(60), index=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))  # submitted | accepted | returned
    total = mapped_column(Money, nullable=False)
    decided_on = mapped_column(Date, nullable=False)


class ExpenditureRow(Base):
    """Expenditure by Annex III heading of an accepted report."""

    __tablename__ = "expenditure_facts"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    heading: Mapped[str] = mapped_column(String(40), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(60))
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    amount = mapped_column(Money, nullable=False)
    accepted_on = mapped_column(Date, nullable=False)


class ReportExpenditureRow(Base):
    """An accepted report's expenditure in one row, a column per Annex III heading (its expenditure_facts rows
    side by side): the report's spending by heading sums one row per report instead of one per heading."""

    __tablename__ = "report_expenditure_facts"
    __table__ = Table(
        __tablename__,
        Base.metadata,
        Column("event_id", String(36), primary_key=True),
        Column("report_id", String(60), nullable=False),
        Column("grant_id", String(60), nullable=False, index=True),
        Column("accepted_on", Date, nullable=False),
        *_heading_columns(),
    )


class ClosureRow(Base):
    """How a grant ended: final payment, recovery order (recovery > 0) or declined (the commitment goes)."""

    __tablename__ = "closure_facts"
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    paid = mapped_column(Money, nullable=False)
    accepted_expenditure = mapped_column(Money, nullable=False)
    recovery = mapped_column(Money, nullable=False)
    closed_on = mapped_column(Date, nullable=False)


class DecommitmentRow(Base):
    """Money a grant gave back (at closure: award - final amount): its commitment is lower from `decommitted_on`."""

    __tablename__ = "decommitment_facts"
    decommitment_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    amount = mapped_column(Money, nullable=False)
    reason: Mapped[str] = mapped_column(String(2000))
    decommitted_on = mapped_column(Date, nullable=False)


class ExpenditureLineRow(Base):
    """One expenditure line of a submitted report in its own currency, with the rate grants used and its EUR value
    (report_submitted's lines); it counts once its report is accepted (grant_report_facts)."""

    __tablename__ = "expenditure_line_facts"
    report_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    heading: Mapped[str] = mapped_column(String(40))
    amount = mapped_column(Money, nullable=False)  # in `currency`
    currency: Mapped[str] = mapped_column(String(3))
    incurred_on = mapped_column(Date, nullable=False)
    description: Mapped[str] = mapped_column(String(300))
    rate = mapped_column(Numeric(20, 6), nullable=False)
    rate_type: Mapped[str | None] = mapped_column(String(20))
    rate_month: Mapped[str | None] = mapped_column(String(7))
    amount_eur = mapped_column(Money, nullable=False)


class IndicatorResultRow(Base):
    """An accepted report's actual value of one logframe indicator, with the indicator as the contract stated it
    then (results_reported): baseline, target, measure and unit travel with each value."""

    __tablename__ = "indicator_result_facts"
    report_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    reference: Mapped[str] = mapped_column(String(60))
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    report_kind: Mapped[str] = mapped_column(String(10))
    report_number: Mapped[int] = mapped_column(Integer)
    period_start = mapped_column(Date, nullable=False)
    period_end = mapped_column(Date, nullable=False)
    result_type: Mapped[str] = mapped_column(String(10))  # outcome | output
    result_title: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(300))
    measure: Mapped[str] = mapped_column(String(12))  # unit | percentage | qualitative
    unit: Mapped[str] = mapped_column(String(60))
    baseline_value: Mapped[str] = mapped_column(String(500))
    baseline_year: Mapped[int] = mapped_column(Integer)
    target_value: Mapped[str] = mapped_column(String(500))
    target_date = mapped_column(Date, nullable=False)
    actual_value: Mapped[str] = mapped_column(String(500))
    comment: Mapped[str] = mapped_column(String(500))
    decided_on = mapped_column(Date, nullable=False)


class TerminationRow(Base):
    """A grant ended early (its commitment stays until closure decommits): effective and recorded dates."""

    __tablename__ = "termination_facts"
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    effective_on = mapped_column(Date, nullable=False)
    terminated_on = mapped_column(Date, nullable=False)
    reason: Mapped[str] = mapped_column(String(2000))


class GrantStandingRow(Base):
    """How each grant stands in the budget report of everything recorded (no as-of date), as one row: what the
    report's statement otherwise computes from seven fact tables for every grant on every call (report_sql's
    `awarded`: the award as amended, declined or not, decommitted, contracted, paid, terminated, the source of its
    budget) and its accepted expenditure by heading (sum and lines). Not a fact of its own: derived from the facts
    by one statement (standing.py), for the grants a batch wrote (FactWriter.flush, PostgreSQL only: the SQLite
    path computes the report in Python and leaves this table empty), for every grant by the rebuild and the
    migration. A grant not known here (payments or expenditure before its award, or of no award) has a row too,
    `listed` false: the report shows such money as not counted or unmatched."""

    __tablename__ = "grant_standing"
    # room on each page for the rows' updated versions (HOT updates, as grant_payments')
    __table__ = Table(
        __tablename__,
        Base.metadata,
        Column("grant_id", String(60), primary_key=True),
        Column("programme_id", String(60), nullable=True),  # None: not known here
        Column("listed", Boolean, nullable=False),  # the grant's award is known here
        Column("window", String(60), nullable=True),
        Column("country", String(2), nullable=True),
        Column("applicant_type", String(60), nullable=True),
        Column("decision_date", Date, nullable=True),
        Column("closure_kind", String(20), nullable=True),
        Column("recovery", Money, nullable=True),
        Column("amended", Boolean, nullable=False),
        Column("budget_source", String(60), nullable=True),  # 'award', an amendment id, None once declined
        Column("parts_hold", Boolean, nullable=False),  # the EC parts stored with the budget lines still hold
        Column("gross", Money, nullable=False),  # the award as amended, 0 once declined
        Column("has_payments", Boolean, nullable=False),
        Column("paid", Money, nullable=False),
        Column("tranches", Integer, nullable=False),
        Column("number_twice", Boolean, nullable=True),  # a tranche number may be there twice
        Column("decommitted", Money, nullable=False),
        Column("decommitting", Boolean, nullable=False),
        Column("contracted", Boolean, nullable=False),
        Column("terminated", Boolean, nullable=False),
        *_heading_columns("_spent"),  # accepted expenditure by heading
        *(Column(f"{heading}_lines", Integer, nullable=False) for heading in HEADINGS),
        postgresql_with={"fillfactor": 70},
    )


@dataclass(frozen=True)
class CopiedColumn:
    """A column of one fact table that holds another's column for the same key (`target.column` =
    `source.source_column` where `key` is equal): a fact the report needs on the target's row, whichever of the two
    events arrived first. The first value stays, as the source's first row does (FactWriter.flush keeps it)."""

    target: type[Base]
    column: str
    source: type[Base]
    source_column: str
    key: str


COPIED_COLUMNS = (CopiedColumn(GrantRow, "contract_signed_on", ContractRow, "signed_on", "grant_id"),)


PROJECTION_TABLES = (
    ProgrammeRow,
    WindowRow,
    CallRow,
    CallClosureRow,
    ProposalRow,
    ProposalOutcomeRow,
    GrantRow,
    BudgetLineRow,
    BudgetRow,
    ContractRow,
    AmendmentRow,
    PaymentRequestRow,
    PaymentCancellationRow,
    TrancheRow,
    GrantPaymentsRow,
    GrantReportRow,
    ExpenditureRow,
    ReportExpenditureRow,
    ClosureRow,
    DecommitmentRow,
    ExpenditureLineRow,
    IndicatorResultRow,
    TerminationRow,
    GrantStandingRow,  # derived from the facts above (standing.py)
)


# --- generated EC reports (not a projection: a rebuild keeps them) --------------------------------------------


class ReportFile(Base):
    """A generated report file, kept as sent. One per (kind, period): the scheduler and on-demand requests
    for the same period get the same file."""

    __tablename__ = "report_files"
    __table_args__ = (UniqueConstraint("kind", "period", name="uq_report_files_kind_period"),)
    report_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # monthly | quarterly | on_demand
    period: Mapped[str] = mapped_column(String(40))
    as_of = mapped_column(Date, nullable=False)
    format: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(200))
    mimetype: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    generated_at = mapped_column(UtcDateTime, nullable=False, index=True)
    generated_by: Mapped[str] = mapped_column(String(200))
