"""Use cases behind the notifications service's RPCs: who got what, and sending a failed message again."""
from __future__ import annotations

from sqlalchemy import select

from services.common.db import UnitOfWork, utcnow
from services.common.errors import Conflict, NotFound

from .models import Notification

FILTERS = ("recipient", "proposal_id", "grant_id", "status", "template")


def delivery_view(n: Notification) -> dict:
    return {"notification_id": n.id, "template": n.template, "recipient": n.recipient, "language": n.language,
            "status": n.status, "event_type": n.event_type, "source_event_id": n.source_event_id,
            "proposal_id": n.proposal_id, "grant_id": n.grant_id, "attempts": n.attempts,
            "last_error": n.last_error, "next_attempt_at": n.next_attempt_at if n.status == "pending" else None,
            "message_id": n.message_id, "created_at": n.created_at, "sent_at": n.sent_at}


def list_deliveries(uow: UnitOfWork, data: dict) -> list[dict]:
    query = select(Notification).order_by(Notification.created_at, Notification.id).limit(data["limit"])
    for key in FILTERS:
        if data.get(key):
            query = query.where(getattr(Notification, key) == data[key])
    return [delivery_view(n) for n in uow.session.execute(query).scalars()]


def retry_notification(uow: UnitOfWork, notification_id: str) -> dict:
    """A failed notification goes back to pending with a fresh retry budget (same Message-ID)."""
    notification = uow.session.execute(select(Notification).where(Notification.id == notification_id)
                                       .with_for_update()).scalar_one_or_none()
    if notification is None:
        raise NotFound("notification", notification_id)
    if notification.status == "sent":
        raise Conflict("notification.already_sent", f"notification {notification_id} was sent at "
                                                    f"{notification.sent_at.isoformat()}")
    if notification.status == "failed":
        uow.audit("notifications.retry_notification", f"notification:{notification_id}",
                  {"attempts": notification.attempts, "last_error": notification.last_error})
        notification.status, notification.attempts, notification.next_attempt_at = "pending", 0, utcnow()
    # pending: already on its way (a retried call changes nothing)
    return delivery_view(notification)
