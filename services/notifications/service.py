"""nameko entrypoints of the notifications service."""
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select

from services.common.entrypoints import ServiceBase, handles, operation
from services.common.topology import SUBSCRIPTIONS, handler_method

from . import planning
from .models import Notification


class DeliveryQuery(Schema):
    class Meta:
        unknown = RAISE
    recipient = fields.String(load_default=None, validate=validate.Length(max=320))
    proposal_id = fields.String(load_default=None, validate=validate.Length(max=60))
    grant_id = fields.String(load_default=None, validate=validate.Length(max=60))
    status = fields.String(load_default=None, validate=validate.OneOf(("pending", "sent", "failed")))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=10000))


class NotificationsService(ServiceBase):
    name = "notifications"

    @operation(DeliveryQuery)
    def list_deliveries(self, data):
        query = select(Notification).order_by(Notification.created_at).limit(data["limit"])
        for key in ("recipient", "proposal_id", "grant_id", "status"):
            if data[key]:
                query = query.where(getattr(Notification, key) == data[key])
        return [{"notification_id": n.id, "template": n.template, "recipient": n.recipient, "language": n.language,
                 "status": n.status, "event_type": n.event_type, "source_event_id": n.source_event_id,
                 "proposal_id": n.proposal_id, "grant_id": n.grant_id, "attempts": n.attempts,
                 "created_at": n.created_at, "sent_at": n.sent_at}
                for n in self.db.session.execute(query).scalars()]


def _planning_handler(event_type: str):
    def handler(self, event, uow):
        planning.plan(uow, event)
    handler.__name__ = handler_method(event_type)
    return handles(event_type)(handler)


for _event_types in SUBSCRIPTIONS["notifications"].values():
    for _event_type in _event_types:
        setattr(NotificationsService, handler_method(_event_type), _planning_handler(_event_type))
