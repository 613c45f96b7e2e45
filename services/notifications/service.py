"""nameko entrypoints of the notifications service."""
import logging
import os
from datetime import timedelta

import eventlet
from marshmallow import RAISE, Schema, fields, validate
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from nameko.timer import timer

from services.common.auth import issue_token
from services.common.db import utcnow
from services.common.entrypoints import ServiceBase, handles, operation
from services.common.leases import exclusive_timer
from services.common.topology import SUBSCRIPTIONS, handler_method

from . import commands, planning, reminders
from .dispatch import AttachmentUnavailable, Dispatcher
from .messages import KINDS
from .settings import NotificationSettings

log = logging.getLogger(__name__)

# timers are declared when the class is built, so their intervals come from the environment directly
DELIVERY_SECONDS = float(os.environ.get("NOTIFICATIONS_DELIVERY_SECONDS", "2"))
REMINDER_SECONDS = float(os.environ.get("REPORT_REMINDER_INTERVAL_SECONDS", "3600"))


class DeliveryQuery(Schema):
    class Meta:
        unknown = RAISE
    recipient = fields.String(load_default=None, validate=validate.Length(max=320))
    proposal_id = fields.String(load_default=None, validate=validate.Length(max=60))
    grant_id = fields.String(load_default=None, validate=validate.Length(max=60))
    status = fields.String(load_default=None, validate=validate.OneOf(("pending", "sent", "failed")))
    template = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=10000))


class NotificationId(Schema):
    class Meta:
        unknown = RAISE
    notification_id = fields.String(required=True, validate=validate.Length(min=1, max=60))


class Mailer(DependencyProvider):
    """Settings and transport (SMTP relay or mail folder), built once at start-up: bad settings stop the start."""

    def setup(self):
        self.settings = NotificationSettings.from_config(self.container.config)
        self.transport = self.settings.transport()
        log.info("notifications deliver through %s", f"SMTP {self.settings.smtp.host}:{self.settings.smtp.port}"
                 if self.settings.smtp.host else f"the folder {self.settings.smtp.mail_dir}")

    def get_dependency(self, worker_ctx):
        return self


class NotificationsService(ServiceBase):
    name = "notifications"

    mailer = Mailer()
    reporting = RpcProxy("reporting")

    @operation(DeliveryQuery)
    def list_deliveries(self, data):
        return commands.list_deliveries(self.db, data)

    @operation(NotificationId)
    def retry_notification(self, data):
        return commands.retry_notification(self.db, data["notification_id"])

    @operation()
    def send_due_reminders(self, _data):
        return {"planned": reminders.plan_reminders(self.db, self.mailer.settings, utcnow().date())}

    @exclusive_timer(REMINDER_SECONDS)
    def report_reminders(self):
        reminders.plan_reminders(self.db, self.mailer.settings, utcnow().date())

    @timer(interval=DELIVERY_SECONDS)
    def deliver(self):
        # every replica delivers: rows are claimed one at a time with SKIP LOCKED (dispatch.py)
        self.db.actor = "system:notifications.deliver"
        Dispatcher(self.db, self.mailer.settings, self.mailer.transport, self._fetch_report).deliver_due()

    def _fetch_report(self, report_id: str):
        """reporting.get_report over RPC, as the notifications service (a short-lived service token)."""
        worker_ctx = self.request.worker_ctx
        worker_ctx.data["authorization"] = issue_token(self.request.secret, "notifications", ["service"],
                                                       ttl=timedelta(minutes=10))
        timeout = self.mailer.settings.rpc_timeout
        try:
            reply = self.reporting.get_report.call_async(report_id=report_id)
            with eventlet.Timeout(timeout, False):
                return reply.result()
        except Exception as exc:  # reporting absent, no get_report yet, refused: the attachment step retries
            raise AttachmentUnavailable(f"reporting.get_report({report_id}): {type(exc).__name__}: {exc}") from exc
        raise AttachmentUnavailable(f"reporting.get_report({report_id}) did not answer in {timeout:g}s")


def _planning_handler(event_type: str):
    def handler(self, event, uow):
        planning.plan(uow, event, self.mailer.settings)
    handler.__name__ = handler_method(event_type)
    return handles(event_type)(handler)


for _event_types in SUBSCRIPTIONS["notifications"].values():
    for _event_type in _event_types:
        setattr(NotificationsService, handler_method(_event_type), _planning_handler(_event_type))
