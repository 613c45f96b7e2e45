"""Tables of the reporting service: the append-only event archive and the projections built from it."""
from sqlalchemy import JSON, Date, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.types import IntId, Money, UtcDateTime


class Base(DeclarativeBase):
    pass


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


# --- projections (facts, one row per thing; reports aggregate when asked) ---------------------------------

class ProgrammeFact(Base):
    __tablename__ = "programme_facts"
    programme_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    envelope = mapped_column(Money, nullable=False)


class WindowFact(Base):
    __tablename__ = "window_facts"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    window: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    name: Mapped[str] = mapped_column(String(200))
    allocation = mapped_column(Money, nullable=False)


class GrantFact(Base):
    __tablename__ = "grant_facts"
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    reference: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    call_id: Mapped[str] = mapped_column(String(60))
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    applicant_type: Mapped[str] = mapped_column(String(60))
    lead_organisation: Mapped[str] = mapped_column(String(300))
    committed = mapped_column(Money, nullable=False)
    budget: Mapped[dict] = mapped_column(JSON)
    awarded_at = mapped_column(UtcDateTime, nullable=False)
    decision_date = mapped_column(Date, nullable=False)


class TrancheFact(Base):
    __tablename__ = "tranche_facts"
    payment_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(60), index=True)
    tranche_number: Mapped[int] = mapped_column(Integer)
    amount = mapped_column(Money, nullable=False)
    value_date = mapped_column(Date, nullable=False)
    paid_at = mapped_column(UtcDateTime, nullable=False)


class ProposalFact(Base):
    __tablename__ = "proposal_facts"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(60), index=True)
    programme_id: Mapped[str] = mapped_column(String(60), index=True)
    window: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))
    submitted_at = mapped_column(UtcDateTime, nullable=False)


PROJECTION_TABLES = (ProgrammeFact, WindowFact, GrantFact, TrancheFact, ProposalFact)
