"""Delivering planned notifications, outside the transactions that planned them.

Each round claims due rows a few at a time (`CLAIM_BATCH`, one transaction; FOR UPDATE SKIP LOCKED on PostgreSQL,
so replicas share the work and never take the same row): the claim counts the attempt and pushes `next_attempt_at`
past the time one delivery can take, then commits. The claimed rows are then delivered one after the other; one
whose claim no longer leaves the time a delivery can take (the ones before it were slow) is released unsent, so a
claim never runs out while its message is being sent. The message is built and handed to the relay with a Message-ID derived from the
notification id. The messages of a claim the relay accepted are recorded sent together, in one transaction after
the claim's last delivery (one UPDATE, one multi-row INSERT of their notification_sent events into the outbox: per
message that transaction cost more CPU than building and sending it); a failure is recorded at once, in its own
transaction (with notification_failed when it is final). The claims of a batch all run out at the same time and
each delivery starts only while the claim still covers it, so the recording still comes before the claims run
out. A process that dies between the relay's acceptance and that commit leaves the rows claimed; when the claim runs out it is sent again with the same Message-ID, which is how the
duplicate is recognised (and FolderTransport does not write it twice).

Temporary failures (relay down, 4xx, report file not available yet) are retried with exponential backoff until
the retry budget is spent; permanent ones (5xx, a template that does not render) fail at once.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import logging
import re
import time
from datetime import timedelta, timezone
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import DBAPIError

from services.common.security.privacy import mask_email
from services.common.storage.db import UnitOfWork, index_scans_only, utcnow
from services.common.values.retry import RECORD_SENT

from .delivery import PermanentDeliveryError, TemporaryDeliveryError
from .messages import TemplateError, build_message, message_id_for
from .metrics import EMAILS
from .models import Notification
from .settings import NotificationSettings

log = logging.getLogger(__name__)

CLAIM_BATCH = 20  # rows claimed per transaction; each is released unsent if its claim runs short


class AttachmentUnavailable(Exception):
    """The file to attach could not be fetched now (reporting down, RPC missing or refused): retry later."""


def decode_report(reply) -> tuple[str, bytes, str]:
    """reporting.get_report's reply -> (filename, bytes, mimetype) for build_message.

    Expected: {"filename": ..., "mimetype": ..., "content_base64": ...} ("content" is accepted for the file).
    """
    if not isinstance(reply, dict):
        raise AttachmentUnavailable(f"get_report answered {type(reply).__name__}, not an object")
    encoded = reply.get("content_base64", reply.get("content"))
    filename, mimetype = reply.get("filename"), reply.get("mimetype") or "application/octet-stream"
    if not isinstance(filename, str) or not filename or not isinstance(encoded, str):
        raise AttachmentUnavailable(f"get_report answered without filename/content_base64: {sorted(reply)}")
    try:
        return filename, base64.b64decode(encoded, validate=True), mimetype
    except (binascii.Error, ValueError) as exc:
        raise AttachmentUnavailable(f"get_report content is not base64: {exc}") from None


class Dispatcher:
    def __init__(self, uow: UnitOfWork, settings: NotificationSettings, transport, fetch_report=None):
        self.uow = uow
        self.settings = settings
        self.transport = transport
        self.fetch_report = fetch_report  # report_id -> reply of reporting.get_report

    def deliver_due(self, limit: int = 100) -> int:
        """Deliver due notifications, up to `limit` in this round; returns how many were tried."""
        tried = 0
        while tried < limit:
            claimed = self.claim_due(min(CLAIM_BATCH, limit - tried))
            if not claimed:
                break
            sent: list[Notification] = []
            try:
                for notification in claimed:
                    if self._claim_holds(notification):
                        if self.send(notification):
                            sent.append(notification)
                        tried += 1
                    else:
                        self.record_sent_persistently(sent)  # before the claims they share can run short
                        sent = []
                        self.release(notification)
            finally:
                self.record_sent_persistently(sent)
        return tried

    def claim(self) -> Notification | None:
        claimed = self.claim_due(1)
        return claimed[0] if claimed else None

    def claim_due(self, count: int) -> list[Notification]:
        """Up to `count` due rows, claimed in one transaction (each attempt counted, each row reserved)."""
        session, now = self.uow.session, utcnow()
        try:
            index_scans_only(session.connection())  # the index in the claim's order, whatever the statistics
            claimed = list(
                session.execute(
                    select(Notification)
                    .where(Notification.status == "pending", Notification.next_attempt_at <= now)
                    .order_by(Notification.next_attempt_at, Notification.created_at)
                    .limit(count)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if not claimed:
                self.uow.rollback()
                return []
            until = now + timedelta(seconds=self.settings.claim_seconds)
            for notification in claimed:
                notification.attempts += 1
                notification.next_attempt_at = until
                notification.message_id = message_id_for(f"notification-{notification.id}")
            self.uow.commit()  # rows stay readable after commit (expire_on_commit=False)
        except BaseException:
            self.uow.rollback()
            raise
        return claimed

    def _claim_holds(self, notification: Notification) -> bool:
        """Whether the claim still leaves the time one delivery can take (SMTP + RPC, and a margin)."""
        until = notification.next_attempt_at
        if until.tzinfo is None:  # SQLite gives naive UTC back
            until = until.replace(tzinfo=timezone.utc)
        return utcnow() + timedelta(seconds=self.settings.delivery_seconds) < until

    def release(self, claimed: Notification):
        """A claimed row not tried: due again now, its attempt not counted (unless another claim has it since)."""
        try:
            self.uow.session.execute(
                update(Notification)
                .where(
                    Notification.id == claimed.id,
                    Notification.status == "pending",
                    Notification.attempts == claimed.attempts,
                )
                .values(attempts=claimed.attempts - 1, next_attempt_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            self.uow.commit()
        except BaseException:
            self.uow.rollback()
            raise

    def deliver(self, notification: Notification):
        if self.send(notification):
            self.record_sent_persistently([notification])

    def send(self, notification: Notification) -> bool:
        """Build and hand over the message; True when the relay accepted it (its outcome is for the caller to
        record), False when the failure has been recorded."""
        try:
            attachments = []
            if notification.attachment:
                if self.fetch_report is None:
                    raise AttachmentUnavailable("no way to fetch reports configured")
                attachments.append(decode_report(self.fetch_report(notification.attachment["report_id"])))
            msg = build_message(
                notification.template,
                notification.language,
                notification.context,
                to=[_address(notification.recipient_name, notification.recipient)],
                sender=self.settings.smtp.sender,
                attachments=attachments,
                message_id=notification.message_id,
                template_dir=self.settings.template_dir,
            )
            self.transport.send(msg)
        except (PermanentDeliveryError, TemplateError) as exc:
            self.record_failure(notification, exc, temporary=False)
        except (TemporaryDeliveryError, AttachmentUnavailable) as exc:
            self.record_failure(notification, exc, temporary=True)
        except Exception as exc:  # unforeseen: keep the message and try again later rather than lose it
            log.exception("delivering notification %s failed unexpectedly", notification.id)
            self.record_failure(notification, exc, temporary=True)
        else:
            return True
        return False

    def record_sent_persistently(self, notifications: list[Notification], attempts: int = 8):
        """The SMTP server has the messages: recording that must outlast a short database outage, or the claims
        expire and the messages go out again (with the same Message-IDs)."""
        if not notifications:
            return
        for attempt in range(attempts):
            try:
                return self.record_sent_all(notifications)
            except DBAPIError as exc:
                if attempt == attempts - 1:
                    raise
                ids = ", ".join(n.id for n in notifications)
                log.warning("recording notifications %s as sent failed (%s); retrying", ids, exc)
                time.sleep(RECORD_SENT.delay(attempt + 1))

    def _locked(self, notification_id: str) -> Notification | None:
        return self.uow.session.execute(
            select(Notification).where(Notification.id == notification_id).with_for_update()
        ).scalar_one_or_none()

    def record_sent(self, claimed: Notification):
        self.record_sent_all([claimed])

    def record_sent_all(self, claimed: list[Notification]):
        """The relay accepted these messages: one transaction marks them sent (one UPDATE … RETURNING) and puts
        their notification_sent events in the outbox (one multi-row INSERT). A row already sent (another replica
        took over an expired claim and finished) is left alone and announced once, by whoever sent it first."""
        table = cast(Table, Notification.__table__)
        try:
            now = utcnow()
            rows = self.uow.session.execute(
                update(table)
                .where(table.c.id.in_(sorted(n.id for n in claimed)), table.c.status != "sent")
                .values(status="sent", sent_at=now, last_error=None)
                .returning(*(table.c[name] for name in _SENT_COLUMNS))
            ).all()
            for row in rows:
                self.uow.emit("notification_sent", {**_delivery(row), "sent_at": now, "message_id": row.message_id})
            self.uow.commit()
        except BaseException:
            self.uow.rollback()
            raise
        for row in rows:
            EMAILS.labels(row.template, "sent").inc()
            log.info("notification %s (%s) sent to %s", row.id, row.template, mask_email(row.recipient))

    def record_failure(self, claimed: Notification, exc: BaseException, temporary: bool):
        error = f"{type(exc).__name__}: {exc}"[:2000]
        try:
            row = self._locked(claimed.id)
            if row is None or row.status != "pending":
                self.uow.rollback()
                return
            delay = self.settings.retry.after_failure(row.attempts, temporary)
            row.last_error = error
            if delay is None:
                row.status = "failed"
                self.uow.emit("notification_failed", {**_delivery(row), "error": error, "attempts": row.attempts})
            else:
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
            self.uow.commit()
        except BaseException:
            self.uow.rollback()
            raise
        outcome = "failed" if delay is None else "retried"
        EMAILS.labels(row.template, outcome).inc()
        log.warning(
            "notification %s (%s) to %s %s after attempt %d: %s",
            row.id,
            row.template,
            mask_email(row.recipient),
            "failed" if delay is None else f"will be retried in {delay:.1f}s",
            row.attempts,
            error,
        )


def _address(name: str | None, address: str) -> str:
    """ "Name <address>"; address specials are dropped from the name (Python's e-mail headers split an encoded
    display name at a comma: "Association X, Taroudant" would become two recipients)."""
    name = " ".join(re.sub(r'[,;:<>@"()\[\]\\]', " ", name or "").split())
    return email.utils.formataddr((name, address)) if name else address


_SENT_COLUMNS = (
    "id",
    "source_event_id",
    "template",
    "recipient",
    "language",
    "proposal_id",
    "grant_id",
    "message_id",
)


def _delivery(row) -> dict:
    return {
        "notification_id": row.id,
        "source_event_id": row.source_event_id,
        "template": row.template,
        "recipient": row.recipient,
        "language": row.language,
        "proposal_id": row.proposal_id,
        "grant_id": row.grant_id,
    }
