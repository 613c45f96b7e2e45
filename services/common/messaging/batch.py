"""Applying events in batches where throughput matters (reporting's projections).

One consumer per service process reads the same queues the per-event handlers would (nameko names, from
topology.py), collects up to `max_batch` messages — until no message has come for QUIET_GAP, or for at most
`max_wait` seconds — and applies them in ONE transaction:
inbox rows for all of them, the service's changes for those not seen before. Messages are acknowledged only after
the commit. If a batch fails, its messages are applied one by one with the per-event retries and dead letters, so a
poison message is isolated and the rest still pass. The inbox keys are the same as the per-event handlers'
(`<service>.on_<event_type>`), so switching a service between the two modes never re-applies anything.
"""

import functools
import logging
import time
from collections import Counter

import eventlet
from eventlet.event import Event as GreenEvent
from kombu import Connection, Consumer, Exchange, Queue
from nameko.extensions import Entrypoint
from sqlalchemy import String, bindparam, select
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY

from ..contracts.events import parse_event
from ..contracts.topology import exchange_name, handler_method, producer_of, queue_name
from ..runtime import metrics
from ..runtime.config import as_bool
from ..storage.db import UnitOfWork, copy_rows, utcnow
from ..storage.tables import inbox
from ..values.errors import InvalidInput
from ..values.retry import BROKER_RECONNECT
from .crashpoints import crash_point
from .frames import buffer_reads, drain_buffered
from .guard import decode_event, max_message_bytes, queue_arguments, refuse
from .inbox import DUPLICATE, consume, refuse_event, store_dead_letter

log = logging.getLogger(__name__)
INFLIGHT_POLL = 0.005  # seconds between looks for the end of the batch in flight, while reading the next
HEARTBEAT_CHECK_SECONDS = 1.0  # the connection's heartbeats (30 s) checked this often, not at every message
QUIET_GAP = 0.005  # a batch starts once no message came for this long: what is waiting, without a fixed wait


class BatchEventHandler(Entrypoint):
    def __init__(self, event_types, max_batch: int = 500, max_wait: float = 0.05, **kwargs):
        self.event_types = tuple(event_types)
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._stopped = False
        super().__init__(**kwargs)

    def setup(self):
        service = self.container.service_name
        arguments = queue_arguments(self.container.config)
        # with broker definitions (DECLARE_TOPOLOGY=false) the queues exist and a least-privilege user may not
        # declare the producers' exchanges: consume without declaring anything
        declare = as_bool(self.container.config.get("DECLARE_TOPOLOGY", True))
        self.max_message_bytes = max_message_bytes(self.container.config)
        self.queues = [
            Queue(
                queue_name(producer_of(t), t, service),
                exchange=Exchange(exchange_name(producer_of(t)), type="topic", durable=True, no_declare=not declare),
                routing_key=t,
                durable=True,
                auto_delete=False,
                queue_arguments=arguments,
                no_declare=not declare,
            )
            for t in self.event_types
        ]

    def start(self):
        self.container.spawn_managed_thread(self._run, identifier=f"batch-consumer:{self.method_name}")

    def stop(self):
        self._stopped = True

    kill = stop

    def _run(self):
        failures = 0
        while not self._stopped:
            try:
                self._consume()
                failures = 0
            except Exception as exc:  # broker away: unacked messages come back; reconnect with backoff
                failures += 1
                log.warning("batch consumer %s: %s (reconnecting, attempt %d)", self.method_name, exc, failures)
                eventlet.sleep(BROKER_RECONNECT.delay(failures))

    def _consume(self):
        """Collect messages into batches; while one batch is applied by a worker, the next one is read (at most
        one batch in flight: a batch is acknowledged, up to its last message, only after it committed)."""
        pending = []
        inflight = None  # (batch, GreenEvent of its worker's result)
        with Connection(self.container.config["AMQP_URI"], heartbeat=30) as conn:
            channel = conn.channel()
            buffer_reads(conn.connection)
            channel.basic_qos(0, self.max_batch * 2, False)
            consumer = Consumer(
                channel, queues=self.queues, accept=["json"], on_message=functools.partial(self._on_message, pending)
            )
            consumer.consume()
            deadline = None
            heartbeat_due = 0.0
            try:
                while not self._stopped:
                    if inflight is not None and len(pending) >= self.max_batch:
                        self._settle(*inflight)  # the next batch is full already: wait for the one in flight
                        inflight = None
                    quiet = False
                    try:  # with a batch in flight or messages waiting, look for its end / a pause often
                        conn.drain_events(timeout=INFLIGHT_POLL if inflight is not None or pending else self.max_wait)
                        drain_buffered(conn.connection)
                    except TimeoutError:
                        quiet = True
                    except OSError as exc:
                        if "timed out" not in str(exc):
                            raise
                        quiet = True
                    if inflight is not None and inflight[1].ready():
                        self._settle(*inflight)
                        inflight = None
                    if pending and deadline is None:
                        deadline = time.monotonic() + self.max_wait
                    if (
                        inflight is None
                        and pending
                        and (quiet or len(pending) >= self.max_batch or time.monotonic() >= deadline)
                    ):
                        batch, pending[:] = list(pending), []
                        deadline = None
                        inflight = batch, self._start(batch)
                    now = time.monotonic()
                    if now >= heartbeat_due:
                        conn.heartbeat_check()
                        heartbeat_due = now + HEARTBEAT_CHECK_SECONDS
            finally:
                # stopping: the batch in flight finishes and is acknowledged. Had the connection failed, its
                # messages come back on the next one and the inbox skips what committed
                if inflight is not None and self._stopped:
                    self._settle(*inflight)

    def _on_message(self, pending, message):
        """The message guard first (services/common/messaging/guard.py): a malformed message is dead-lettered, not
        applied."""
        body, text, reason = decode_event(message, self.max_message_bytes)
        if reason:
            queue = str((message.delivery_info or {}).get("routing_key"))
            for candidate in self.queues:
                if candidate.routing_key == queue:
                    queue = candidate.name
            refuse(message, self.container.service_name, queue, reason)
        else:
            pending.append((body, text, message))

    def _start(self, batch) -> GreenEvent:
        """Hand a batch to a worker; the event fires with (result, exc_info) when it is done."""
        done = GreenEvent()

        def handle_result(worker_ctx, result, exc_info):
            done.send((result, exc_info))
            return result, exc_info

        deliveries = [
            (body, message.properties.get("user_id"), message.delivery_info.get("routing_key"), text)
            for body, text, message in batch
        ]
        self.container.spawn_worker(self, (deliveries,), {}, handle_result=handle_result)
        return done

    @staticmethod
    def _settle(batch, done: GreenEvent):
        """Acknowledge a batch once its worker committed it (waiting for the worker if need be)."""
        _result, exc_info = done.wait()
        if exc_info is None:
            last = batch[-1][-1]
            last.channel.basic_ack(last.delivery_tag, multiple=True)
        else:
            # even the one-by-one fallback could not store a dead letter (database away): redeliver all
            for *_decoded, message in batch:
                message.requeue()


def apply_batch(uow: UnitOfWork, service: str, bodies: list, apply, policy, texts: list | None = None) -> dict:
    """Apply a batch in one transaction; on failure fall back to one-by-one with retries and dead letters.
    `texts`: each body's JSON text as received (or None), kept on its event (`Event.text`) for the archive."""
    started = time.perf_counter()
    events, outcomes = [], {"applied": 0, "duplicate": 0, "dead_lettered": 0}
    for body, text in zip(bodies, texts or [None] * len(bodies)):
        try:
            evt = parse_event(body)
            evt.text = text
            events.append(evt)
        except InvalidInput as exc:
            consumer = f"{service}.batch"
            store_dead_letter(uow.core, consumer, body, {}, f"invalid event: {exc}", attempts=1)
            outcomes["dead_lettered"] += 1
    unique = list({e.event_id: e for e in events}.values())  # the same event twice in one batch
    try:
        seen = _already_applied(uow, service, unique)
        fresh = [e for e in unique if (_consumer(service, e), e.event_id) not in seen]
        if fresh:
            apply(fresh, uow)
            applied_at = utcnow()
            copy_rows(  # none of these keys is there (the check above); a concurrent batch's fails this one
                uow.session,
                inbox,
                [(_consumer(service, e), e.event_id, e.event_type, applied_at) for e in fresh],
                columns=("consumer", "event_id", "event_type", "applied_at"),
            )
        uow.commit()
        crash_point("batch.after_apply")
    except Exception as exc:
        uow.rollback()
        log.warning("%s: batch of %d failed (%s); applying one by one", service, len(unique), exc)
        for evt in unique:
            outcome = consume(uow, _consumer(service, evt), evt.body, {}, lambda e, u: apply([e], u), policy)
            outcomes[outcome] += 1
        return outcomes
    outcomes["applied"] += len(fresh)
    outcomes["duplicate"] += len(events) - len(fresh)
    # the counters once per event type, not once per event
    for event_type, count in Counter(evt.event_type for evt in fresh).items():
        metrics.EVENTS_HANDLED.labels(service, event_type, "applied").inc(count)
    fresh_ids = {id(evt) for evt in fresh}
    for event_type, count in Counter(evt.event_type for evt in events if id(evt) not in fresh_ids).items():
        metrics.INBOX_DUPLICATES.labels(service, event_type).inc(count)
        metrics.EVENTS_HANDLED.labels(service, event_type, DUPLICATE).inc(count)
    metrics.EVENT_DURATION.labels(service, "batch").observe(time.perf_counter() - started)
    return outcomes


def _consumer(service: str, evt) -> str:
    return f"{service}.{handler_method(evt.event_type)}"


# the batch's (consumer, event id) keys looked up one by one in the inbox's primary key, so the check costs the batch's
# size whatever the inbox holds. `consumer IN (…) AND event_id IN (…)` made PostgreSQL probe every pair of the two
# lists (36-46 ms and ~4,000 buffers for 500 events at 150,000 inbox rows, against ~2 ms and 1,500); a plain join
# of the keys was planned as a hash join over the whole inbox (25 ms at 60,000 rows), which the LIMIT inside the
# lateral subquery rules out
_APPLIED_KEYS = sql_text(
    "SELECT k.consumer, k.event_id FROM unnest(CAST(:consumers AS varchar[]), CAST(:event_ids AS varchar[])) "
    "AS k(consumer, event_id) CROSS JOIN LATERAL (SELECT 1 FROM inbox AS i "
    "WHERE i.consumer = k.consumer AND i.event_id = k.event_id LIMIT 1) AS applied"
).bindparams(bindparam("consumers", type_=ARRAY(String)), bindparam("event_ids", type_=ARRAY(String)))


def _already_applied(uow: UnitOfWork, service: str, events) -> set:
    if not events:
        return set()
    consumers, event_ids = [_consumer(service, e) for e in events], [e.event_id for e in events]
    if uow.session.get_bind().dialect.name == "postgresql":
        rows = uow.session.execute(_APPLIED_KEYS, {"consumers": consumers, "event_ids": event_ids})
    else:
        rows = uow.session.execute(
            select(inbox.c.consumer, inbox.c.event_id).where(
                inbox.c.event_id.in_(event_ids), inbox.c.consumer.in_(set(consumers))
            )
        )
    return {(r.consumer, r.event_id) for r in rows}


def handles_batch(*event_types, max_batch: int = 500, max_wait: float = 0.05):
    """`fn(self, events, uow)` applies a list of new (never applied) events; the kit does the rest."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, deliveries):
            """deliveries: (body, AMQP user_id, routing key, text); events not from their producer are refused."""
            bodies, texts = [], []
            for body, broker_user, routed_as, text in deliveries:
                refusal = self.request.producer_check.refusal(body, broker_user, routed_as)
                if refusal:
                    refuse_event(
                        self.db.core,
                        f"{self.name}.{handler_method(str(routed_as))}",
                        body,
                        {"user_id": str(broker_user)},
                        refusal,
                    )
                else:
                    bodies.append(body)
                    texts.append(text)
            return apply_batch(
                self.db, self.name, bodies, lambda events, uow: fn(self, events, uow), self.request.retry_policy, texts
            )

        wrapper.applies_batch = fn
        wrapper.batch_event_types = event_types
        return BatchEventHandler.decorator(event_types, max_batch=max_batch, max_wait=max_wait)(wrapper)

    return decorator
