"""nameko entrypoints of the gateway: the one door for staff (docs/api.md).

`POST /api/v1/<service>/<operation>` forwards an admitted request (door.py) to the service that owns the
operation, with the caller's own token (commands.py); the gateway's own operations answer health for every
service and the audit of refusals; GET /api/v1/openapi.json is the document of it all. /metrics on the metrics
port, like every service.
"""

import eventlet

from services.common.contracts.topology import SERVICES
from services.common.service.entrypoints import Observed, load_input, read_audit

from . import schemas, views
from .commands import Forwarder, ServiceCaller
from .door import Door, DoorState
from .http import api


class GatewayService(Observed):
    name = "gateway"

    # typed as what a worker gets (get_dependency), not as the providers
    db: Door = DoorState()  # the gateway's database (its audit of refusals) and its limits
    services: Forwarder = ServiceCaller()

    @api("GET", "/api/v1/openapi.json", operation="gateway.openapi", public=True)
    def openapi_document(self, _call):
        return views.document()

    @api("POST", "/api/v1/<service>/<operation>")
    def forward(self, call):
        return self.services.call(call.service, call.operation, call.payload, call.token, call.timeout)

    @api("POST", "/api/v1/gateway/health", operation="gateway.health")
    def health(self, call):
        wanted = load_input(schemas.HealthQuery(), call.payload)["service"]
        pile = eventlet.GreenPile()
        for service in (wanted,) if wanted else SERVICES:
            pile.spawn(self._service_health, service, call)
        return [{"service": "gateway", "status": "ok"}, *pile]

    def _service_health(self, service: str, call) -> dict:
        try:
            return self.services.call(service, "health", {}, call.token, self.db.limits.health_timeout)
        except Exception as exc:  # reported per service: the others still answer
            return {"service": service, "status": getattr(exc, "code", "error"), "detail": str(exc)}

    @api("POST", "/api/v1/gateway/query_audit", operation="gateway.query_audit")
    def query_audit(self, call):
        return read_audit(self.db.core, load_input(schemas.AuditQuery(), call.payload))
