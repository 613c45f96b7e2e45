"""Thin nameko entrypoints with the kit's guarantees built in.

- `@operation(Schema, result=RESULT)`: an RPC that verifies the caller's token against the role matrix (refusals
  audited), validates its input (InvalidInput naming every field), runs the use case, commits — events included —
  before replying, and returns plain JSON (money as decimal strings) of the shape RESULT declares (results.py; the
  gateway's OpenAPI document publishes it).
- `@handles("event_type")`: an event handler on nameko's queue for that event that applies each event exactly
  once (inbox), retries with backoff, and dead-letters what keeps failing.
- `ServiceBase`: the dependencies and the operations every service has (/metrics, health, dead letters, audit).
"""

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from amqp.exceptions import PreconditionFailed
from kombu import Connection, Exchange, Queue
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate
from nameko.exceptions import ContainerBeingKilled
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from sqlalchemy import insert, select

from ..contracts.fastload import compile_schema
from ..contracts.topology import SERVICES, exchange_name, handler_method, producer_of, subscriptions
from ..messaging.guard import GuardedQueueConsumer, declare_dead_letters, guarded_rpc, queue_arguments
from ..messaging.inbox import (
    RetryPolicy,
    consume,
    discard_dead_letter,
    list_dead_letters,
    refuse_event,
    replay_dead_letter,
)
from ..messaging.provenance import ProducerCheck
from ..runtime import metrics
from ..runtime.config import as_bool
from ..security.auth import TokenVerifier, claimed
from ..security.privacy import redact
from ..security.roles import authorise
from ..storage.db import retrying_stale, utcnow
from ..storage.tables import audit_log
from ..values.errors import EXPECTED_ERRORS, MAX_REPORTED_ERRORS, InvalidInput, NotAllowed
from ..values.fields import UtcDateTime
from ..values.inert import CONTROL_CHARACTERS, has_control_characters
from ..values.wire import to_wire
from . import results
from .database import Database

log = logging.getLogger(__name__)


class Request:
    def __init__(self, worker_ctx, context: "RequestContext"):
        self.worker_ctx = worker_ctx
        self.config = context.container.config
        self.verifier = context.verifier
        self.retry_policy = context.retry_policy
        self.producer_check = context.producer_check
        self.refusal_budget = context.refusal_budget

    @property
    def token(self):
        return self.worker_ctx.data.get("authorization")


class RequestContext(DependencyProvider):
    """The worker's context: caller token, configuration, the token verifier (public keys only)."""

    def setup(self):
        config = self.container.config
        self.verifier = TokenVerifier.from_config(config)
        self.retry_policy = RetryPolicy(
            int(config.get("EVENT_RETRY_ATTEMPTS", 5)), float(config.get("EVENT_RETRY_BACKOFF", 0.2))
        )
        self.producer_check = ProducerCheck.from_config(config)
        self.producer_check.announce(self.container.service_name)
        self.refusal_budget = RefusalBudget(int(config.get("REFUSAL_AUDITS_PER_MINUTE") or 120))

    def get_dependency(self, worker_ctx):
        return Request(worker_ctx, self)


class Topology(DependencyProvider):
    """Declares every consumer queue and binding at start-up, so no event is published into the void.

    Any service may start first; all declare the whole map (idempotent). Production brokers load the same
    topology from deploy/rabbitmq/definitions.json and set DECLARE_TOPOLOGY=false.
    """

    def setup(self):
        if not as_bool(self.container.config.get("DECLARE_TOPOLOGY", True)):
            return
        config = self.container.config
        declare_topology(config["AMQP_URI"], queue_arguments(config), config, self.container.service_name)

    def get_dependency(self, worker_ctx):
        return None


def declare_topology(amqp_uri: str, arguments: dict, config: dict | None = None, service: str | None = None):
    """Every event queue and the declaring service's own RPC queue with `arguments`, and the dead-letter queue.
    (Another service's RPC queue is left to it: while nobody runs a service, nothing receives its requests and the
    gateway answers 503 at once.) A queue left by an earlier version with other arguments (before the dead-letter
    exchange) is replaced when it is empty in local mode (`make run`); otherwise the start stops with what to do."""
    from ..security.secrecy import local_mode

    config = config or {}
    with Connection(amqp_uri, connect_timeout=10) as conn:
        channel = conn.channel()
        declare_dead_letters(channel, config)
        rpc_exchange = Exchange("nameko-rpc", type="topic", durable=True)
        queues = [
            Queue(
                f"rpc-{own}",
                exchange=rpc_exchange,
                routing_key=f"{own}.*",
                durable=True,
                auto_delete=False,
                queue_arguments=arguments,
            )
            for own in SERVICES
            if own == service
        ]
        queues += [
            Queue(
                queue_name,
                exchange=Exchange(exchange_name(producer), type="topic", durable=True),
                routing_key=event_type,
                durable=True,
                auto_delete=False,
                queue_arguments=arguments,
            )
            for _consumer, producer, event_type, queue_name in subscriptions()
        ]
        for queue in queues:
            try:
                queue(channel).declare()
            except PreconditionFailed as exc:
                channel = conn.channel()  # the broker closed the other one
                if not local_mode() or not _replace_empty_queue(channel, queue):
                    raise SystemExit(
                        f"queue {queue.name} exists with other arguments ({exc.reply_text}): it was declared by an "
                        f"earlier version; once it is empty, delete it (`rabbitmqctl delete_queue {queue.name}`) "
                        f"or load the broker definitions again"
                    ) from None
        channel.close()


def _replace_empty_queue(channel, queue) -> bool:
    """Local mode: an empty queue of an earlier version is deleted and declared again with today's arguments."""
    try:
        _name, messages, _consumers = channel.queue_declare(queue.name, passive=True)
        if messages:
            return False
        channel.queue_delete(queue.name, if_empty=True)
        queue(channel).declare()
    except PreconditionFailed:
        return False
    log.warning("local mode: queue %s of an earlier version (other arguments, empty) replaced", queue.name)
    return True


class KitEventHandler(EventHandler):
    """nameko's event handler, behind the message guard (services/common/messaging/guard.py), declaring its queue with
    the dead-letter exchange and the configured queue type, and handing the worker the message's `user_id` (the broker
    user RabbitMQ saw publish it) for the producer check."""

    queue_consumer = GuardedQueueConsumer()
    queue: Queue

    def setup(self):
        super().setup()
        arguments = queue_arguments(self.container.config)
        if arguments:
            self.queue = Queue(
                self.queue.name,
                exchange=self.queue.exchange,
                routing_key=self.queue.routing_key,
                durable=True,
                auto_delete=False,
                queue_arguments=arguments,
            )

    def handle_message(self, body, message):
        broker_user = message.properties.get("user_id")
        try:
            self.container.spawn_worker(
                self,
                (body,),
                {"broker_user": broker_user},
                context_data=self.unpack_message_headers(message),
                handle_result=functools.partial(self.handle_result, message),
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)


class _Empty(Schema):
    class Meta:
        unknown = EXCLUDE


def _payload(args, kwargs) -> dict:
    if args and (len(args) > 1 or kwargs or not isinstance(args[0], dict)):
        raise InvalidInput({"_schema": ["pass the arguments by name (or one object)"]})
    return dict(args[0]) if args else dict(kwargs)


def _storable_fast(payload) -> bool:
    """True when no string of the payload (keys included, however deep) is one `unstorable_text` refuses: all of
    them joined by LF, checked by one search and one encode. False: `unstorable_text` says which and why."""
    texts: list[str] = []
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    texts.append(key)
                stack.append(item)
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    joined = "\n".join(texts)
    if CONTROL_CHARACTERS.search(joined):  # NUL is one of them
        return False
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_text(value, path: str = "") -> dict:
    """Field -> message for every string a database cannot hold (NUL, lone surrogates) or a file for people must
    not carry (control characters other than tab, LF, CR), however deep: one check for every field of every
    operation."""
    if isinstance(value, str):
        if "\x00" in value:
            return {path or "_schema": ["must not contain NUL characters"]}
        if has_control_characters(value):  # they break the XML, XLSX and e-mails made of it
            return {path or "_schema": ["must not contain control characters (other than tab, LF, CR)"]}
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


def load_input(schema: Schema, payload: dict, plan: Callable[[Any], dict | None] | None = None) -> dict:
    """The operation's input loaded by its schema; `plan`, the schema's compiled load (contracts/fastload.py), takes
    what it vouches for (the same dict marshmallow gives), marshmallow the rest and every refusal."""
    if not _storable_fast(payload):
        problems = unstorable_text(payload)
        if problems:
            raise InvalidInput(problems)
    if plan is not None:
        loaded = plan(payload)
        if loaded is not None:
            return loaded
    too_many_unknown(schema, payload)
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise InvalidInput(exc.normalized_messages()) from None
    except (TypeError, ValueError, AttributeError, RecursionError, ArithmeticError) as exc:
        # marshmallow met something no field expects (nested junk); still the caller's input, not our failure
        raise InvalidInput({"_schema": [f"unreadable input: {type(exc).__name__}"]}) from None


def too_many_unknown(schema: Schema, payload) -> None:
    """More unknown fields than an answer reports: refused on them alone, before marshmallow builds an error for
    each of them and validates the rest."""
    if schema.unknown != RAISE or not isinstance(payload, dict) or len(payload) <= MAX_REPORTED_ERRORS:
        return
    known = {f.data_key or name for name, f in schema.load_fields.items()}
    unknown = [key for key in payload if key not in known]
    if len(unknown) > MAX_REPORTED_ERRORS:
        message = [schema.error_messages["unknown"]]
        kept = unknown[:MAX_REPORTED_ERRORS]
        raise InvalidInput({str(key): message for key in kept}, None, len(unknown) - len(kept))


def claimed_identity(token) -> tuple[str | None, list[str]]:
    """Who a token (verified or not) says it is, cut to size for the audit trail: (user, roles)."""
    return claimed(token)


class RefusalBudget:
    """At most `per_minute` refusal rows a minute in a service's trail; the rest are counted, and the count written
    as one row when the next minute starts: a flood of refused calls (a caller going round the gateway) leaves a
    trace of its size, not one row per call."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = max(per_minute, 1)
        self.clock = clock
        self._lock = threading.Lock()
        self._window, self._count, self._suppressed = clock(), 0, 0

    def admit(self) -> tuple[bool, int]:
        """(audit this refusal one by one?, refusals of the previous minute to summarise now)."""
        with self._lock:
            flush = 0
            if self.clock() - self._window >= 60:
                flush, self._suppressed, self._count, self._window = self._suppressed, 0, 0, self.clock()
            self._count += 1
            if self._count > self.per_minute:
                self._suppressed += 1
                return False, flush
            return True, flush


def audit_refusal(
    db,
    verifier: TokenVerifier,
    service: str,
    operation: str,
    token,
    reason: str,
    identity=None,
    budget: RefusalBudget | None = None,
):
    """A refused call leaves a trace, even though nothing else is written (within `budget`). `identity`: the
    verified caller when the token verified; otherwise the row carries who the token claims to be, marked
    `subject_verified: false`."""
    write, flush = budget.admit() if budget is not None else (True, 0)
    rows: list[dict] = []
    if flush:
        rows.append(
            dict(
                at=utcnow(),
                user=None,
                roles=[],
                operation=f"{service}.refusals",
                outcome="refused",
                entity=None,
                correlation_id=None,
                detail={
                    "reason": f"{flush} more refusal(s) in the previous minute were not audited one by one "
                    "(audit budget spent)",
                    "suppressed": flush,
                },
            )
        )
    if write:
        claimed_user, claimed_roles = verifier.claimed(token)
        user, roles = (identity.user, list(identity.roles)) if identity is not None else (claimed_user, claimed_roles)
        rows.append(
            dict(
                at=utcnow(),
                user=user,
                roles=roles,
                operation=f"{service}.{operation}",
                outcome="refused",
                entity=None,
                correlation_id=db.correlation_id,
                detail={"reason": reason, "claimed_user": claimed_user, "subject_verified": identity is not None},
            )
        )
    if rows:

        def insert_rows():
            with db.core.exclusive(), db.core.engine.begin() as conn:
                conn.execute(insert(audit_log), rows)

        retrying_stale(insert_rows)


def operation(schema: type[Schema] | None = None, result: Schema | None = None):
    """`result`: the schema of what the operation returns (its wire form), published by the gateway's document."""
    input_schema = (schema or _Empty)()
    input_plan = compile_schema(input_schema)

    def decorator(fn):
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            request, uow = self.request, self.db
            identity = None
            try:
                identity = request.verifier.verify(request.token)
                authorise(identity, self.name, name)
            except NotAllowed as exc:
                audit_refusal(
                    uow, request.verifier, self.name, name, request.token, str(exc), identity, request.refusal_budget
                )
                raise
            uow.identity = identity
            uow.operation = f"{self.name}.{name}"
            data = load_input(input_schema, _payload(args, kwargs), input_plan)
            try:
                result = retrying_stale(lambda: fn(self, data), uow.rollback)
                uow.commit()
            except NotAllowed as exc:  # a rule about the person, not the role (e.g. not its requester)
                uow.rollback()
                audit_refusal(
                    uow, request.verifier, self.name, name, request.token, str(exc), identity, request.refusal_budget
                )
                raise
            except BaseException:
                uow.rollback()
                raise
            return to_wire(redact(result, identity))  # masked: what this identity may not see

        wrapper.input_schema = input_schema  # type: ignore[attr-defined]  # read back by the gateway's catalogue
        wrapper.result_schema = result  # type: ignore[attr-defined]  # likewise
        return guarded_rpc(expected_exceptions=EXPECTED_ERRORS)(wrapper)

    return decorator


def handles(event_type: str):
    producer = producer_of(event_type)

    def decorator(fn):
        if fn.__name__ != handler_method(event_type):
            raise TypeError(f"handler of {event_type} must be named {handler_method(event_type)}")

        @functools.wraps(fn)
        def wrapper(self, body, broker_user=None):
            consumer = f"{self.name}.{fn.__name__}"
            headers = dict(self.request.worker_ctx.context_data)
            headers.pop("authorization", None)
            refusal = self.request.producer_check.refusal(body, broker_user, event_type)
            if refusal:
                return refuse_event(self.db.core, consumer, body, {**headers, "user_id": str(broker_user)}, refusal)
            return consume(
                self.db, consumer, body, headers, lambda evt, uow: fn(self, evt, uow), self.request.retry_policy
            )

        wrapper.applies = fn  # type: ignore[attr-defined]  # read back by ServiceBase._event_appliers
        # requeue_on_error: if even the dead-letter store is unreachable the message goes back, never dropped
        return KitEventHandler.decorator(producer, event_type, requeue_on_error=True)(wrapper)

    return decorator


class DeadLetterQuery(Schema):
    status = fields.String(
        load_default="held", validate=validate.OneOf(("held", "replayed", "discarded", "refused", "all"))
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class DeadLetterId(Schema):
    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class AuditQuery(Schema):
    entity = fields.String(load_default=None, validate=validate.Length(max=200))
    user = fields.String(load_default=None, validate=validate.Length(max=200))
    since = UtcDateTime(load_default=None)
    until = UtcDateTime(load_default=None)
    outcome = fields.String(load_default=None, validate=validate.OneOf(("done", "refused")))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=10000))


class Observed:
    """Prometheus /metrics on the process's metrics port, and the instrumentation of its workers."""

    instrumentation = metrics.Instrumentation()

    @http("GET", "/metrics")
    def serve_metrics(self, _request):
        body, content_type = metrics.render()
        return 200, {"Content-Type": content_type}, body.decode("utf-8")


class ServiceBase(Observed):
    """What every JMDI service has: its database, request context, metrics and kit operations."""

    name: str = ""

    db = Database()
    request = RequestContext()
    topology = Topology()

    @operation(result=results.HEALTH)
    def health(self, _data):
        from ..messaging.outbox import pending_count

        return {
            "service": self.name,
            "status": "ok",
            "outbox_pending": pending_count(self.db.core),
            "dead_letters_held": len(list_dead_letters(self.db.core, "held", 1000)),
        }

    @operation(DeadLetterQuery, result=results.DEAD_LETTERS)
    def list_dead_letters(self, data):
        status = None if data["status"] == "all" else data["status"]
        rows = list_dead_letters(self.db.core, status, data["limit"])
        for row in rows:
            row["body"] = json.loads(row["body"]) if row["body"].startswith("{") else row["body"]
        return rows

    @operation(DeadLetterId, result=results.REPLAYED)
    def replay_dead_letter(self, data):
        outcome = replay_dead_letter(self.db, data["id"], self._event_appliers())
        return {"id": data["id"], "outcome": outcome}

    def _event_appliers(self) -> dict:
        """consumer name -> apply(event, uow), for per-event handlers and batch handlers alike."""
        appliers = {}
        for attr in dir(type(self)):
            member: Any = getattr(type(self), attr, None)  # any class attribute; handlers carry `applies`
            if getattr(member, "applies", None) is not None:
                appliers[f"{self.name}.{attr}"] = functools.partial(
                    lambda fn, evt, uow: fn(self, evt, uow), member.applies
                )
            if getattr(member, "applies_batch", None) is not None:
                for event_type in member.batch_event_types:
                    appliers[f"{self.name}.{handler_method(event_type)}"] = functools.partial(
                        lambda fn, evt, uow: fn(self, [evt], uow), member.applies_batch
                    )
        return appliers

    @operation(DeadLetterId, result=results.DISCARDED)
    def discard_dead_letter(self, data):
        discard_dead_letter(self.db.core, data["id"])
        self.db.audit(f"{self.name}.discard_dead_letter", f"dead_letter:{data['id']}", {})
        return {"id": data["id"], "status": "discarded"}

    @operation(AuditQuery, result=results.AUDIT_ROWS)
    def query_audit(self, data):
        return read_audit(self.db.core, data)


def read_audit(core, data: dict) -> list[dict]:
    """Audit rows matching an AuditQuery, oldest first."""
    query = select(audit_log).order_by(audit_log.c.id).limit(data["limit"])
    for column, key in ((audit_log.c.entity, "entity"), (audit_log.c.user, "user"), (audit_log.c.outcome, "outcome")):
        if data[key]:
            query = query.where(column == data[key])
    if data["since"]:
        query = query.where(audit_log.c.at >= data["since"])
    if data["until"]:
        query = query.where(audit_log.c.at < data["until"])
    with core.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
