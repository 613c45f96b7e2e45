"""The grants service's ledger, asked with reporting's own service identity (not the caller's token)."""
from datetime import timedelta

import eventlet
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy, ServiceProxy

from services.common.auth import issue_token, resolve_secret
from services.common.errors import Conflict

SERVICE_ROLE = "service"
TOKEN_TTL = timedelta(minutes=5)


class _AsService:
    """The worker context as seen by an outgoing call: the same, with reporting's service token."""

    def __init__(self, worker_ctx, token: str):
        self._worker_ctx = worker_ctx
        self._token = token

    def __getattr__(self, name):
        return getattr(self._worker_ctx, name)

    @property
    def context_data(self):
        data = self._worker_ctx.context_data
        data["authorization"] = self._token
        return data


class ServiceRpcProxy(RpcProxy):
    """An RpcProxy whose calls carry a short-lived token of this service (role `service`), signed with the
    secret the service verifies its own callers with."""

    def setup(self):
        super().setup()
        self.secret = resolve_secret(self.container.config.get("JMDI_SECRET") or "")

    def get_dependency(self, worker_ctx):
        token = issue_token(self.secret, self.container.service_name, [SERVICE_ROLE], ttl=TOKEN_TTL)
        return ServiceProxy(_AsService(worker_ctx, token), self.target_service, self.rpc_reply_listener,
                            **self.options)


def fetch_ledger(grants, programme_id: str | None, timeout: float) -> dict:
    """The grants ledger; Conflict when the grants service does not answer in time (the in-service proxy has
    no timeout of its own)."""
    try:
        with eventlet.Timeout(timeout):
            return grants.ledger(programme_id=programme_id)
    except eventlet.Timeout:
        raise Conflict("reconcile.grants_unavailable",
                       f"the grants ledger did not answer within {timeout:g} s") from None
    except UnknownService:
        raise Conflict("reconcile.grants_unavailable", "no grants service is running") from None
