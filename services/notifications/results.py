"""What the notifications service's operations return (views.py, service.py), as schemas for the gateway's
document."""

from marshmallow import fields

from services.common.service.results import Result


class Delivery(Result):
    notification_id = fields.String(required=True)
    template = fields.String(required=True)
    recipient = fields.String(required=True, metadata={"description": "masked for roles that may not see it"})
    language = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "pending | sent | failed | ..."})
    event_type = fields.String(allow_none=True)
    source_event_id = fields.String(allow_none=True)
    proposal_id = fields.String(allow_none=True)
    grant_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True, metadata={"description": "only while pending"})
    message_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


class ReportRecipients(Result):
    ec_report = fields.List(fields.String(), required=True, metadata={"description": "who receives EC reports"})


class RemindersPlanned(Result):
    planned = fields.Integer(required=True, metadata={"description": "reminders planned now"})


DELIVERY = Delivery()
DELIVERIES = Delivery(many=True)
REPORT_RECIPIENTS = ReportRecipients()
REMINDERS_PLANNED = RemindersPlanned()
