"""Tables of the notifications service: who to write to (from events) and every notification planned."""
from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.types import UtcDateTime


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


class Notification(Base):
    """One message to one recipient caused by one event: unique, so a redelivered event plans nothing new."""

    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    source_event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(60))
    template: Mapped[str] = mapped_column(String(60))
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    language: Mapped[str] = mapped_column(String(2))
    proposal_id: Mapped[str | None] = mapped_column(String(60), index=True)
    grant_id: Mapped[str | None] = mapped_column(String(60), index=True)
    context: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UtcDateTime, nullable=False)
    sent_at = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("source_event_id", "recipient", "template", name="uq_notification_once"),)
