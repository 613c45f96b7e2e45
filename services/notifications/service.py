"""nameko entrypoints of the notifications service."""

import logging
import os

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.common.contracts.topology import SUBSCRIPTIONS
from services.common.messaging.batch import handles_batch
from services.common.service.entrypoints import ServiceBase, operation
from services.common.service.rpc import NoAnswerInTime, ServiceClient
from services.common.storage.db import utcnow
from services.common.storage.leases import exclusive_timer

from . import commands, planning, reminders, results, views
from .dispatch import AttachmentUnavailable, Dispatcher
from .schemas import DeliveryQuery, NotificationId
from .settings import NotificationSettings

log = logging.getLogger(__name__)

# timers are declared when the class is built, so their intervals come from the environment directly
DELIVERY_SECONDS = float(os.environ.get("NOTIFICATIONS_DELIVERY_SECONDS", "2"))
REMINDER_SECONDS = float(os.environ.get("REPORT_REMINDER_INTERVAL_SECONDS", "3600"))


class Mailer(DependencyProvider):
    """Settings and transport (SMTP relay or mail folder), built once at start-up: bad settings stop the start."""

    def setup(self):
        self.settings = NotificationSettings.from_config(self.container.config)
        self.transport = self.settings.transport()
        log.info(
            "notifications deliver through %s",
            f"SMTP {self.settings.smtp.host}:{self.settings.smtp.port}"
            if self.settings.smtp.host
            else f"the folder {self.settings.smtp.mail_dir}",
        )

    def get_dependency(self, worker_ctx):
        return self


class NotificationsService(ServiceBase):
    name = "notifications"

    mailer = Mailer()
    reporting = ServiceClient("reporting")

    @operation(DeliveryQuery, result=results.DELIVERIES)
    def list_deliveries(self, data):
        return views.list_deliveries(self.db, data)

    @operation(NotificationId, result=results.DELIVERY)
    def retry_notification(self, data):
        return commands.retry_notification(self.db, data["notification_id"])

    @operation(result=results.REPORT_RECIPIENTS)
    def report_recipients(self, _data):
        """Who receives what this service sends by configuration: the EC contacts of generated reports."""
        return {"ec_report": [r.email for r in self.mailer.settings.ec_report_recipients]}

    @operation(result=results.REMINDERS_PLANNED)
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

    @handles_batch(*(t for types in SUBSCRIPTIONS["notifications"].values() for t in types))
    def plan_events(self, events, uow):
        """Plan a batch of new events in one transaction (the kit's batch consumer: inbox rows for the batch, the
        events seen before skipped; a failing batch is applied again one event at a time, so a poison event is
        retried and dead-lettered alone). Events are planned in the order they came, so a fact recorded by one is
        seen by the next, and an event parked for a fact is released by the event of the same batch that brings
        it. The inbox keys are the per-event handlers' (`notifications.on_<event_type>`)."""
        planning.plan_all(uow, events, self.mailer.settings)

    def _fetch_report(self, report_id: str):
        """reporting.get_report over RPC, as the notifications service (its own short-lived service token)."""
        timeout = self.mailer.settings.rpc_timeout
        try:
            return self.reporting.call("get_report", timeout, report_id=report_id)
        except NoAnswerInTime:
            raise AttachmentUnavailable(f"reporting.get_report({report_id}) did not answer in {timeout:g}s") from None
        except Exception as exc:  # reporting absent, no get_report yet, refused: the attachment step retries
            raise AttachmentUnavailable(f"reporting.get_report({report_id}): {type(exc).__name__}: {exc}") from exc
