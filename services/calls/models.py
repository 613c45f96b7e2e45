"""Tables of the calls service (its own database).

Programmes and calls keep the domain's own dict form (`definition`) as the source of truth; the columns beside
it (status, deadline, ...) exist for queries and locks. Proposals keep what was submitted in the wire form of
proposal_submitted, so what staff read is exactly what the other services received.
"""

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.storage.types import IntId, Money, UtcDateTime


class Base(DeclarativeBase):
    pass


class ProgrammeRow(Base):
    __tablename__ = "programmes"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    ec_contribution = mapped_column(Money, nullable=False)
    definition: Mapped[dict] = mapped_column(JSON)  # programme_to_dict: countries, windows, period, profile
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at = mapped_column(UtcDateTime, nullable=False)


class CallRow(Base):
    __tablename__ = "calls"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # draft | open | closed | evaluated
    year: Mapped[int] = mapped_column(Integer)  # of the deadline: proposal references carry it
    deadline = mapped_column(UtcDateTime, nullable=False)
    definition: Mapped[dict] = mapped_column(JSON)  # call_to_dict: windows, bounds, applicant types, consortium
    profile: Mapped[dict] = mapped_column(JSON)  # the rule profile as it was when the call was created
    opened_at = mapped_column(UtcDateTime)
    closed_at = mapped_column(UtcDateTime)
    evaluated_at = mapped_column(UtcDateTime)


# the deadline sweep looks for open calls whose deadline has passed
Index("ix_calls_status_deadline", CallRow.status, CallRow.deadline)


class ProposalRow(Base):
    __tablename__ = "proposals"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # the same key with other content is refused
    window: Mapped[str] = mapped_column(String(60))
    target_country: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))  # submitted | withdrawn | excluded
    ec_amount_requested = mapped_column(Money, nullable=False)
    data: Mapped[dict] = mapped_column(JSON)  # the proposal_submitted payload (wire form)
    submitted_at = mapped_column(UtcDateTime, nullable=False)
    withdrawn_at = mapped_column(UtcDateTime)
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)
    # exclusion screening: unscreened (no list loaded yet) | clear | flagged -> cleared | excluded
    screening: Mapped[str] = mapped_column(String(20), default="unscreened")
    screening_hits: Mapped[list] = mapped_column(JSON, default=list)
    screening_list_id: Mapped[int | None] = mapped_column(Integer)
    screened_at = mapped_column(UtcDateTime)
    screening_decided_by: Mapped[str | None] = mapped_column(String(200))
    screening_reason: Mapped[str | None] = mapped_column(Text)


class ReferenceSequence(Base):
    """Last number used per reference prefix and country: JMDI-2008-MA-0042 is the 42nd of "JMDI-2008", MA.

    Keyed by the prefix the reference shows (programme and year), so two calls of one programme in one year can
    never hand out the same reference."""

    __tablename__ = "reference_sequences"
    prefix: Mapped[str] = mapped_column(String(80), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class ExclusionListRow(Base):
    """One loaded exclusion list; the latest one is the list screenings use."""

    __tablename__ = "exclusion_lists"
    id: Mapped[int] = mapped_column(IntId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(300))
    loaded_at = mapped_column(UtcDateTime, nullable=False)
    loaded_by: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    entries: Mapped[list] = mapped_column(JSON)  # [{name, registration_number, reason, line}]


class DeclarationRow(Base):
    """An assessor's declaration of interests for one call (an empty list declares no conflict)."""

    __tablename__ = "declarations"
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), primary_key=True)
    assessor: Mapped[str] = mapped_column(String(200), primary_key=True)
    interests: Mapped[list] = mapped_column(JSON)  # [{name, registration_number}]
    declared_at = mapped_column(UtcDateTime, nullable=False)


class AssignmentRow(Base):
    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(IntId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"))
    stage: Mapped[str] = mapped_column(String(30))
    assessor: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20))  # active | recused (a conflict declared after assignment)
    reason: Mapped[str] = mapped_column(String(30))  # assignment | third_assessor
    assigned_at = mapped_column(UtcDateTime, nullable=False)
    __table_args__ = (UniqueConstraint("proposal_id", "stage", "assessor", name="uq_assignment"),)


class AssessmentRow(Base):
    __tablename__ = "assessments"
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(30), primary_key=True)
    assessor: Mapped[str] = mapped_column(String(200), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    scores: Mapped[dict] = mapped_column(JSON)  # criterion code -> 1..5
    criterion_comments: Mapped[dict] = mapped_column(JSON, default=dict)
    comments: Mapped[str] = mapped_column(Text, default="")
    total = mapped_column(Numeric(7, 2), nullable=False)
    recorded_at = mapped_column(UtcDateTime, nullable=False)


class EvaluationRow(Base):
    """A proposal's result at one stage, once every assigned assessor has scored it."""

    __tablename__ = "evaluations"
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(30), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    score = mapped_column(Numeric(7, 2), nullable=False)
    passed: Mapped[bool] = mapped_column(Boolean)
    assessments: Mapped[int] = mapped_column(Integer)
    evaluated_at = mapped_column(UtcDateTime, nullable=False)


class RankingRow(Base):
    __tablename__ = "rankings"
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), primary_key=True)
    window: Mapped[str] = mapped_column(String(60), primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)  # ranking_to_dict plus the concept-note failures
    published_at = mapped_column(UtcDateTime, nullable=False)
    published_by: Mapped[str | None] = mapped_column(String(200))
