"""The notifications service's reads: who got what, for staff following a message up."""

from __future__ import annotations

from sqlalchemy import select

from services.common.storage.db import UnitOfWork

from .models import Notification

FILTERS = ("recipient", "proposal_id", "grant_id", "status", "template")


def delivery_view(n: Notification) -> dict:
    return {
        "notification_id": n.id,
        "template": n.template,
        "recipient": n.recipient,
        "language": n.language,
        "status": n.status,
        "event_type": n.event_type,
        "source_event_id": n.source_event_id,
        "proposal_id": n.proposal_id,
        "grant_id": n.grant_id,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "next_attempt_at": n.next_attempt_at if n.status == "pending" else None,
        "message_id": n.message_id,
        "created_at": n.created_at,
        "sent_at": n.sent_at,
    }


def list_deliveries(uow: UnitOfWork, data: dict) -> list[dict]:
    query = select(Notification).order_by(Notification.created_at, Notification.id).limit(data["limit"])
    for key in FILTERS:
        if data.get(key):
            query = query.where(getattr(Notification, key) == data[key])
    return [delivery_view(n) for n in uow.session.execute(query).scalars()]
