"""Tables of the notifications service: what it learnt from events (who to write to, about what) and every
notification planned, with its delivery state."""

from sqlalchemy import JSON, Date, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.storage.tables import Id
from services.common.storage.types import Money, UtcDateTime


PENDING = "status = 'pending'"


class Base(DeclarativeBase):
    pass


class Contact(Base):
    """Applicants of a proposal, kept from proposal_submitted so later grant events can reach them."""

    __tablename__ = "contacts"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(2))
    reference: Mapped[str] = mapped_column(String(60))


class Proposal(Base):
    """What the messages about a proposal quote (from proposal_submitted)."""

    __tablename__ = "proposals"
    proposal_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    reference: Mapped[str] = mapped_column(String(60))
    call_id: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    lead_organisation: Mapped[str] = mapped_column(String(300))
    duration_months: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # submitted | withdrawn


class Grant(Base):
    """What the messages about a grant quote, and the contract dates the report reminders follow."""

    __tablename__ = "grants"
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(String(60), index=True)
    reference: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    lead_organisation: Mapped[str] = mapped_column(String(300))
    amount = mapped_column(Money, nullable=False)
    paid = mapped_column(Money, nullable=False)
    status: Mapped[str] = mapped_column(String(20))  # awarded | contracted | terminated | closed
    start_date = mapped_column(Date)
    end_date = mapped_column(Date)
    duration_months: Mapped[int | None] = mapped_column(Integer)
    schedule: Mapped[list] = mapped_column(JSON, default=list)  # contract_signed's tranches (wire form)
    amendments: Mapped[int] = mapped_column(Integer, default=0)


class ReportDue(Base):
    """A report the contract requires (interim n or final) and whether it has come in."""

    __tablename__ = "report_dues"
    grant_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # interim | final
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_end = mapped_column(Date, nullable=False)
    due_date = mapped_column(Date, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(20))  # open | submitted | accepted
    report_id: Mapped[str | None] = mapped_column(String(60), index=True)


class ParkedEvent(Base):
    """An event that arrived before the facts it needs (its proposal or grant): planned when they arrive.

    Consumers of different queues run concurrently, so a grant event can overtake the grant_awarded or
    proposal_submitted it refers to; parking it (in the same transaction as its inbox row) loses nothing.
    """

    __tablename__ = "parked_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    waits_for: Mapped[str] = mapped_column(String(80), index=True)  # "proposal:<id>" or "grant:<id>"
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(60))
    body: Mapped[dict] = mapped_column(JSON)
    parked_at = mapped_column(UtcDateTime, nullable=False)


class Notification(Base):
    """One message to one recipient caused by one event: unique, so a redelivered event plans nothing new.

    Delivery state: `pending` rows are sent once `next_attempt_at` has come (a claimed row's next_attempt_at is
    pushed past the time one delivery can take, so a replica that died mid-send releases it by itself);
    `sent` after the relay accepted it; `failed` after a permanent refusal or the retry budget.
    """

    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    source_event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(60))
    template: Mapped[str] = mapped_column(String(60))
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    recipient_name: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(2))
    proposal_id: Mapped[str | None] = mapped_column(String(60), index=True)
    grant_id: Mapped[str | None] = mapped_column(String(60), index=True)
    context: Mapped[dict] = mapped_column(JSON)  # template variables, wire form
    attachment: Mapped[dict | None] = mapped_column(JSON)  # {"report_id": ...}: fetched from reporting when sent
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at = mapped_column(UtcDateTime, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300))
    created_at = mapped_column(UtcDateTime, nullable=False)
    sent_at = mapped_column(UtcDateTime)
    __table_args__ = (
        UniqueConstraint("source_event_id", "recipient", "template", name="uq_notification_once"),
        # the dispatcher's claim (dispatch.py) reads the pending rows in its ORDER BY's order and stops at its LIMIT;
        # a batch's rows share one next_attempt_at, so an index of (status, next_attempt_at) made it sort whole
        # batches of them at every claim
        Index(
            "ix_notifications_pending_due",
            "next_attempt_at",
            "created_at",
            postgresql_where=text(PENDING),
            sqlite_where=text(PENDING),
        ),
    )
