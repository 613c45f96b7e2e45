"""Input and result schemas of the gateway's own operations (the services' operations are validated by the
services)."""

from marshmallow import Schema, fields, validate

from services.common.contracts.topology import SERVICES
from services.common.service.entrypoints import AuditQuery  # the same audit query every service answers
from services.common.service.results import AUDIT_ROWS, Health

__all__ = ["AUDIT_ROWS", "HEALTH", "AuditQuery", "HealthQuery"]

HEALTH = Health(many=True)  # the gateway's own, then each service's (or why it did not answer)


class HealthQuery(Schema):
    service = fields.String(
        load_default=None,
        validate=validate.OneOf(SERVICES),
        metadata={"description": "only this service (default: every service)"},
    )
