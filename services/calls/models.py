"""Tables of the calls service (its own database)."""
from sqlalchemy import JSON, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.types import Money, UtcDateTime


class Base(DeclarativeBase):
    pass


class ProgrammeRow(Base):
    __tablename__ = "programmes"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    ec_contribution = mapped_column(Money, nullable=False)
    definition: Mapped[dict] = mapped_column(JSON)  # the programme file as loaded: countries, windows, profile


class CallRow(Base):
    __tablename__ = "calls"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # draft | open | closed | evaluated
    year: Mapped[int] = mapped_column(Integer)
    deadline = mapped_column(UtcDateTime, nullable=False)
    min_grant = mapped_column(Money, nullable=False)
    max_grant = mapped_column(Money, nullable=False)
    max_ec_share = mapped_column(Numeric(5, 4), nullable=False)
    windows: Mapped[list] = mapped_column(JSON)  # [{"window", "allocation_eur"}]
    definition: Mapped[dict] = mapped_column(JSON)  # eligible applicant types, consortium rules, ...
    opened_at = mapped_column(UtcDateTime)
    closed_at = mapped_column(UtcDateTime)


class ProposalRow(Base):
    __tablename__ = "proposals"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    window: Mapped[str] = mapped_column(String(60))
    target_country: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20))  # submitted | withdrawn | ...
    ec_amount_requested = mapped_column(Money, nullable=False)
    data: Mapped[dict] = mapped_column(JSON)  # the proposal as submitted (wire form)
    submitted_at = mapped_column(UtcDateTime, nullable=False)


class ReferenceSequence(Base):
    """Next number of proposal references per call and country (JMDI-2008-MA-0042)."""

    __tablename__ = "reference_sequences"
    call_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)
