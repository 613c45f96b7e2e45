"""The door: what every staff request goes through before a worker or a service spends anything on it.

In order, each step refusing with a typed error (problem+json, see services/common/values/problems.py):
1. a client over its refusal budget: 429, nothing read;
2. an operation nobody offers: 404;
3. a declared body larger than the operation's limit: 413, nothing read;
4. no token, or one that does not verify: 401;
5. a role the matrix does not allow for the operation: 403 (the first layer; the service checks again);
6. a body that does not arrive in time (408, limits.Limits.body_deadline), that is not JSON (415), larger than
   announced (413), malformed (400) or not an object (422).
Refusals 1-5 count against the client's budget; 3-5 leave an audit row (repository.py, bounded).
"""

from __future__ import annotations

import json
import uuid

import eventlet
from dataclasses import dataclass

from nameko.extensions import DependencyProvider, SharedExtension

from services.common.security.auth import Identity, TokenVerifier
from services.common.security.roles import authorise
from services.common.storage.db import DatabaseCore
from services.common.values.errors import NotAllowed
from services.common.values.problems import (
    BadRequest,
    RequestTimeout,
    TooManyRefusals,
    Unauthenticated,
    UnknownOperation,
)

from . import catalogue, metrics
from .limits import Budget, Limits, client_of
from .repository import RefusalAudit

READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Admitted:
    """A request that passed the door: who asks, for which operation, with which arguments."""

    service: str
    operation: str
    identity: Identity | None
    token: str | None
    payload: dict
    timeout: float
    client: str

    @property
    def key(self) -> str:
        return f"{self.service}.{self.operation}"


def correlation_id() -> str:
    return f"gateway.door.{uuid.uuid4()}"


class Door(SharedExtension):
    def setup(self):
        config = self.container.config
        self.limits = Limits.from_config(config)
        self.verifier = TokenVerifier.from_config(config)
        self.budget = Budget(self.limits.refusals_per_minute)
        self.core = DatabaseCore(config["DATABASE_URL"], self.container.service_name, pool_size=4)
        self.audit = RefusalAudit(self.core, self.limits.refusal_audits_per_minute)
        metrics.initialise()
        from . import views

        views.document()  # built once at start (it imports every service's schemas), not on a first request

    def stop(self):
        self.core.dispose()

    # --- the steps ---------------------------------------------------------------------------------------------
    def client(self, request) -> str:
        return client_of(request, self.limits.trusted_proxies)

    def check_budget(self, client: str):
        retry_after = self.budget.exhausted(client)
        if retry_after is not None:
            metrics.REFUSALS.labels("throttled").inc()
            raise TooManyRefusals(f"too many refused requests from {client}; try again in {retry_after} s", retry_after)

    def unknown(self, client: str, path: str) -> UnknownOperation:
        self._count(client, "unknown_operation")
        return UnknownOperation(path)

    def admit(self, request, service: str, operation: str, own: bool = False, public: bool = False) -> Admitted:
        """The Admitted request, or the typed error refusing it. `own`: one of the gateway's operations."""
        client = request.jmdi_client
        key = f"{service}.{operation}"
        op = None if own else catalogue.find(service, operation)
        if op is None and not own:
            raise self.unknown(client, request.path)
        limit = self.limits.body_limit(op)
        if request.content_length is not None and request.content_length > limit:
            raise self._refuse(client, "too_large", key, request, 413, _too_large(limit))
        identity = token = None
        if not public:
            token = bearer_token(request)
            try:
                identity = self.verifier.verify(token)
            except NotAllowed as exc:
                raise self._refuse(client, "unauthenticated", key, request, 401, Unauthenticated(exc.reason)) from exc
            try:
                authorise(identity, service, operation, set(op.staff_roles) if op else None)
            except NotAllowed as exc:
                raise self._refuse(client, "forbidden", key, request, 403, exc, identity) from exc
        body = self._read_body(request, limit, key, client)
        return Admitted(service, operation, identity, token, _decode(request, body), self.limits.timeout(op), client)

    def _read_body(self, request, limit: int, key: str, client: str) -> bytes:
        # straight from the WSGI server, which ends the stream at Content-Length and decodes chunked bodies; the
        # server times each read only (a byte every few seconds would hold the connection for ever), so the whole
        # body has a deadline; missed, the answer is 408 and, the body unread, the connection is closed (http.py)
        stream, size = request.environ["wsgi.input"], 0
        chunks: list[bytes] = []
        seconds = self.limits.body_deadline(request.content_length, limit)
        with eventlet.Timeout(seconds, False):
            while True:
                chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:  # sent more than it announced (or chunked): stop reading here
                    raise self._refuse(client, "too_large", key, request, 413, _too_large(limit))
        metrics.REFUSALS.labels("body_timeout").inc()
        raise RequestTimeout(f"the request body did not arrive within {seconds:g} s ({size} bytes received)")

    # --- refusals ----------------------------------------------------------------------------------------------
    def _count(self, client: str, reason: str, token=None) -> bool:
        """Count a refusal against the client's budget; True when the row may be audited one by one."""
        metrics.REFUSALS.labels(reason).inc()
        used = self.budget.spend(client)
        if used == self.budget.limit + 1:
            self.audit.record(
                "gateway.door",
                f"client throttled: more than {self.budget.limit} refused requests "
                "in a minute; its requests are refused (429) until the minute is over",
                token,
                client,
                None,
                429,
            )
        return used <= self.budget.limit

    def _refuse(self, client, reason, key, request, status, exc, identity=None):
        """identity: the verified caller, when the token verified (the role refused); else the row says the
        subject is only claimed."""
        token = bearer_token(request)
        if self._count(client, reason, token):
            self.audit.record(
                key, str(exc), token, client, getattr(request, "jmdi_correlation_id", None), status, identity
            )
        return exc


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _too_large(limit: int) -> BadRequest:
    return BadRequest(
        {"_body": [f"is larger than the limit of {limit} bytes"]}, f"request body larger than {limit} bytes", 413
    )


def _reject_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _decode(request, body: bytes) -> dict:
    if not body.strip():
        return {}
    if not request.mimetype or not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        raise BadRequest(
            {"_body": ["send the arguments as application/json"]},
            f"unsupported media type {request.mimetype or '(none)'}: send application/json",
            415,
        )
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = f"not valid JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__}"
        raise BadRequest({"_body": [message]}, message, 400) from None
    if not isinstance(payload, dict):
        raise BadRequest(
            {"_body": ["must be a JSON object holding the operation's arguments by name"]},
            "the body must be a JSON object",
            422,
        )
    return payload


class DoorState(DependencyProvider):
    """What the gateway's workers read of the door: its limits and its database (`core`)."""

    door = Door()

    def get_dependency(self, worker_ctx):
        return self.door
