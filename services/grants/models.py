"""Tables of the grants service: its copies of calls and proposals (from events) and its ledger."""
from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.types import Money, UtcDateTime
from sqlalchemy import Date


class Base(DeclarativeBase):
    pass


class ProgrammeBudget(Base):
    """The programme's EC contribution and what is committed against it (locked by every award)."""

    __tablename__ = "programme_budgets"
    programme_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    envelope = mapped_column(Money, nullable=False)
    committed = mapped_column(Money, nullable=False)


class CallCopy(Base):
    __tablename__ = "calls"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("programme_budgets.programme_id"))
    rule_profile: Mapped[str] = mapped_column(String(60))
    min_grant = mapped_column(Money, nullable=False)
    max_grant = mapped_column(Money, nullable=False)
    status: Mapped[str] = mapped_column(String(20))


class WindowBudget(Base):
    """A call window's allocation and what is committed against it (locked by every award in the window)."""

    __tablename__ = "window_budgets"
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), primary_key=True)
    window: Mapped[str] = mapped_column(String(60), primary_key=True)
    allocation = mapped_column(Money, nullable=False)
    committed = mapped_column(Money, nullable=False)


class ProposalCopy(Base):
    __tablename__ = "proposals"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    applicant_type: Mapped[str] = mapped_column(String(60))
    lead_organisation: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(300))
    duration_months: Mapped[int] = mapped_column(Integer)
    ec_amount_requested = mapped_column(Money, nullable=False)
    budget: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))  # submitted | withdrawn | awarded | rejected


class GrantRow(Base):
    __tablename__ = "grants"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.proposal_id"), unique=True)
    reference: Mapped[str] = mapped_column(String(60))
    call_id: Mapped[str] = mapped_column(String(60))
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    amount = mapped_column(Money, nullable=False)
    paid = mapped_column(Money, nullable=False)
    status: Mapped[str] = mapped_column(String(20))  # awarded | contracted | closed | declined
    decision_reference: Mapped[str] = mapped_column(String(100))
    decision_date = mapped_column(Date, nullable=False)
    awarded_at = mapped_column(UtcDateTime, nullable=False)


class PaymentRow(Base):
    __tablename__ = "payments"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    tranche_number: Mapped[int] = mapped_column(Integer)
    amount = mapped_column(Money, nullable=False)
    status: Mapped[str] = mapped_column(String(20))  # paid
    value_date = mapped_column(Date)
    bank_reference: Mapped[str] = mapped_column(String(100))
    paid_at = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("grant_id", "tranche_number", name="uq_payment_tranche"),)
