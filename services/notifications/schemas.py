"""The input schemas of the notifications service's operations (validated by @operation before any code runs)."""

from marshmallow import RAISE, Schema, fields, validate

from .messages import KINDS


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
