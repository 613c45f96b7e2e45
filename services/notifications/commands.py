"""Use cases behind the notifications service's RPCs that change something: sending a failed message again
(event handling is planning.py, the delivery loop dispatch.py, the report reminders reminders.py)."""

from __future__ import annotations

from sqlalchemy import select

from services.common.storage.db import UnitOfWork, utcnow
from services.common.values.errors import Conflict, NotFound

from .models import Notification
from .views import delivery_view


def retry_notification(uow: UnitOfWork, notification_id: str) -> dict:
    """A failed notification goes back to pending with a fresh retry budget (same Message-ID)."""
    notification = uow.session.execute(
        select(Notification).where(Notification.id == notification_id).with_for_update()
    ).scalar_one_or_none()
    if notification is None:
        raise NotFound("notification", notification_id)
    if notification.status == "sent":
        raise Conflict(
            "notification.already_sent",
            f"notification {notification_id} was sent at {notification.sent_at.isoformat()}",
        )
    if notification.status == "failed":
        uow.audit(
            "notifications.retry_notification",
            f"notification:{notification_id}",
            {"attempts": notification.attempts, "last_error": notification.last_error},
        )
        notification.status, notification.attempts, notification.next_attempt_at = "pending", 0, utcnow()
    # pending: already on its way (a retried call changes nothing)
    return delivery_view(notification)
