"""Thin nameko entrypoints with the kit's guarantees built in.

- `@operation(Schema)`: an RPC that verifies the caller's token against the role matrix (refusals audited),
  validates its input (InvalidInput naming every field), runs the use case, commits — events included — before
  replying, and returns plain JSON (money as decimal strings).
- `@handles("event_type")`: an event handler on nameko's queue for that event that applies each event exactly
  once (inbox), retries with backoff, and dead-letters what keeps failing.
- `ServiceBase`: the dependencies and the operations every service has (/metrics, health, dead letters, audit).
"""
import functools
import json
import logging
from kombu import Connection, Exchange, Queue
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.web.handlers import http
from sqlalchemy import insert, select

from . import metrics
from .auth import resolve_secret, verify_token
from .config import as_bool
from .db import Database, utcnow
from .errors import EXPECTED_ERRORS, InvalidInput, NotAllowed
from .inbox import RetryPolicy, consume, discard_dead_letter, list_dead_letters, replay_dead_letter
from .roles import allowed_roles
from .tables import audit_log
from .topology import exchange_name, handler_method, producer_of, subscriptions
from .wire import to_wire

log = logging.getLogger(__name__)


class Request:
    def __init__(self, worker_ctx, secret: str, config: dict):
        self.worker_ctx = worker_ctx
        self.secret = secret
        self.config = config

    @property
    def token(self):
        return self.worker_ctx.data.get("authorization")


class RequestContext(DependencyProvider):
    """The worker's context: caller token, configuration, signing secret."""

    def setup(self):
        self.secret = resolve_secret(self.container.config.get("JMDI_SECRET") or "")
        policy = self.container.config
        self.retry_policy = RetryPolicy(int(policy.get("EVENT_RETRY_ATTEMPTS", 5)),
                                        float(policy.get("EVENT_RETRY_BACKOFF", 0.2)))

    def get_dependency(self, worker_ctx):
        request = Request(worker_ctx, self.secret, self.container.config)
        request.retry_policy = self.retry_policy
        return request


class Topology(DependencyProvider):
    """Declares every consumer queue and binding at start-up, so no event is published into the void.

    Any service may start first; all declare the whole map (idempotent). Production brokers load the same
    topology from deploy/rabbitmq/definitions.json and set DECLARE_TOPOLOGY=false.
    """

    def setup(self):
        if not as_bool(self.container.config.get("DECLARE_TOPOLOGY", True)):
            return
        declare_topology(self.container.config["AMQP_URI"], queue_arguments(self.container.config))

    def get_dependency(self, worker_ctx):
        return None


def queue_arguments(config: dict) -> dict | None:
    """Quorum queues (replicated, for a RabbitMQ cluster) must be declared as such by every declarer."""
    return {"x-queue-type": "quorum"} if config.get("EVENT_QUEUE_TYPE") == "quorum" else None


def declare_topology(amqp_uri: str, arguments: dict | None = None):
    with Connection(amqp_uri, connect_timeout=10) as conn:
        channel = conn.channel()
        for consumer, producer, event_type, queue_name in subscriptions():
            exchange = Exchange(exchange_name(producer), type="topic", durable=True)
            Queue(queue_name, exchange=exchange, routing_key=event_type, durable=True,
                  auto_delete=False, queue_arguments=arguments)(channel).declare()
        channel.close()


class KitEventHandler(EventHandler):
    """nameko's event handler, declaring its queue with the configured queue type."""

    def setup(self):
        super().setup()
        arguments = queue_arguments(self.container.config)
        if arguments:
            self.queue = Queue(self.queue.name, exchange=self.queue.exchange, routing_key=self.queue.routing_key,
                               durable=True, auto_delete=False, queue_arguments=arguments)


class _Empty(Schema):
    class Meta:
        unknown = EXCLUDE


def _payload(args, kwargs) -> dict:
    if args and (len(args) > 1 or kwargs or not isinstance(args[0], dict)):
        raise InvalidInput({"_schema": ["pass the arguments by name (or one object)"]})
    return dict(args[0]) if args else dict(kwargs)


def unstorable_text(value, path: str = "") -> dict:
    """Field -> message for every string a database cannot hold (NUL, lone surrogates), however deep."""
    if isinstance(value, str):
        if "\x00" in value:
            return {path or "_schema": ["must not contain NUL characters"]}
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return {path or "_schema": ["is not valid Unicode text"]}
        return {}
    found = {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        key_problems = unstorable_text(key, f"{path}.{key!r}" if path else repr(key)) if isinstance(key, str) else {}
        found.update(key_problems or unstorable_text(item, f"{path}.{key}" if path else str(key)))
    return found


def load_input(schema: Schema, payload: dict) -> dict:
    problems = unstorable_text(payload)
    if problems:
        raise InvalidInput(problems)
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise InvalidInput(exc.messages) from None
    except (TypeError, ValueError, AttributeError, RecursionError, ArithmeticError) as exc:
        # marshmallow met something no field expects (nested junk); still the caller's input, not our failure
        raise InvalidInput({"_schema": [f"unreadable input: {type(exc).__name__}"]}) from None


def audit_refusal(db, service: str, operation: str, token, reason: str):
    """A refused call leaves a trace, even though nothing else is written."""
    user, roles = None, []
    try:
        import jwt
        claims = jwt.decode(token, options={"verify_signature": False}) if isinstance(token, str) else {}
        user, roles = str(claims.get("sub"))[:200] if claims.get("sub") else None, claims.get("roles") or []
        roles = [str(r)[:60] for r in roles][:10] if isinstance(roles, list) else []
    except Exception:  # unreadable token: the refusal is still recorded, without a claimed user
        pass
    with db.core.exclusive(), db.core.engine.begin() as conn:
        conn.execute(insert(audit_log).values(
            at=utcnow(), user=user, roles=roles, operation=f"{service}.{operation}", outcome="refused",
            entity=None, detail={"reason": reason, "claimed_user": user}, correlation_id=db.correlation_id))


def operation(schema: type[Schema] | None = None):
    input_schema = (schema or _Empty)()

    def decorator(fn):
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            request, uow = self.request, self.db
            try:
                identity = verify_token(request.token, request.secret)
                if not set(identity.roles) & allowed_roles(self.name, name):
                    raise NotAllowed(f"{identity.user} ({', '.join(identity.roles)}) may not {self.name}.{name}")
            except NotAllowed as exc:
                audit_refusal(uow, self.name, name, request.token, str(exc))
                raise
            uow.identity = identity
            uow.operation = f"{self.name}.{name}"
            data = load_input(input_schema, _payload(args, kwargs))
            try:
                result = fn(self, data)
                uow.commit()
            except BaseException:
                uow.rollback()
                raise
            return to_wire(result)

        wrapper.input_schema = input_schema
        return rpc(expected_exceptions=EXPECTED_ERRORS)(wrapper)

    return decorator


def handles(event_type: str):
    producer = producer_of(event_type)

    def decorator(fn):
        if fn.__name__ != handler_method(event_type):
            raise TypeError(f"handler of {event_type} must be named {handler_method(event_type)}")

        @functools.wraps(fn)
        def wrapper(self, body):
            consumer = f"{self.name}.{fn.__name__}"
            headers = dict(self.request.worker_ctx.context_data)
            headers.pop("authorization", None)
            return consume(self.db, consumer, body, headers, lambda evt, uow: fn(self, evt, uow),
                           self.request.retry_policy)

        wrapper.applies = fn
        # requeue_on_error: if even the dead-letter store is unreachable the message goes back, never dropped
        return KitEventHandler.decorator(producer, event_type, requeue_on_error=True)(wrapper)

    return decorator


class DeadLetterQuery(Schema):
    status = fields.String(load_default="held", validate=validate.OneOf(("held", "replayed", "discarded", "all")))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class DeadLetterId(Schema):
    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class AuditQuery(Schema):
    entity = fields.String(load_default=None, validate=validate.Length(max=200))
    user = fields.String(load_default=None, validate=validate.Length(max=200))
    since = fields.AwareDateTime(load_default=None)
    until = fields.AwareDateTime(load_default=None)
    outcome = fields.String(load_default=None, validate=validate.OneOf(("done", "refused")))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=10000))


class ServiceBase:
    """What every JMDI service has: its database, request context, metrics and kit operations."""

    name: str = ""

    db = Database()
    request = RequestContext()
    topology = Topology()
    instrumentation = metrics.Instrumentation()

    @http("GET", "/metrics")
    def serve_metrics(self, _request):
        body, content_type = metrics.render()
        return 200, {"Content-Type": content_type}, body.decode("utf-8")

    @operation()
    def health(self, _data):
        from .outbox import pending_count
        return {"service": self.name, "status": "ok", "outbox_pending": pending_count(self.db.core),
                "dead_letters_held": len(list_dead_letters(self.db.core, "held", 1000))}

    @operation(DeadLetterQuery)
    def list_dead_letters(self, data):
        status = None if data["status"] == "all" else data["status"]
        rows = list_dead_letters(self.db.core, status, data["limit"])
        for row in rows:
            row["body"] = json.loads(row["body"]) if row["body"].startswith("{") else row["body"]
        return rows

    @operation(DeadLetterId)
    def replay_dead_letter(self, data):
        outcome = replay_dead_letter(self.db, data["id"], self._event_appliers())
        return {"id": data["id"], "outcome": outcome}

    def _event_appliers(self) -> dict:
        """consumer name -> apply(event, uow), for per-event handlers and batch handlers alike."""
        appliers = {}
        for attr in dir(type(self)):
            member = getattr(type(self), attr, None)
            if getattr(member, "applies", None) is not None:
                appliers[f"{self.name}.{attr}"] = functools.partial(
                    lambda fn, evt, uow: fn(self, evt, uow), member.applies)
            if getattr(member, "applies_batch", None) is not None:
                for event_type in member.batch_event_types:
                    appliers[f"{self.name}.{handler_method(event_type)}"] = functools.partial(
                        lambda fn, evt, uow: fn(self, [evt], uow), member.applies_batch)
        return appliers

    @operation(DeadLetterId)
    def discard_dead_letter(self, data):
        discard_dead_letter(self.db.core, data["id"])
        self.db.audit(f"{self.name}.discard_dead_letter", f"dead_letter:{data['id']}", {})
        return {"id": data["id"], "status": "discarded"}

    @operation(AuditQuery)
    def query_audit(self, data):
        query = select(audit_log).order_by(audit_log.c.id).limit(data["limit"])
        for column, key in ((audit_log.c.entity, "entity"), (audit_log.c.user, "user"),
                            (audit_log.c.outcome, "outcome")):
            if data[key]:
                query = query.where(column == data[key])
        if data["since"]:
            query = query.where(audit_log.c.at >= data["since"])
        if data["until"]:
            query = query.where(audit_log.c.at < data["until"])
        with self.db.core.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
