"""Applying a received event exactly once: inbox, bounded retries with backoff, dead letters, replay.

The inbox row (consumer, event_id) is written in the same transaction as the consumer's own change, so a
redelivered event is recognised and acknowledged without being applied again. A handler that keeps failing
leaves the message in the dead-letter store (its own transaction) before the message is acknowledged; if even
that write fails the message is requeued — it is never acked and dropped. An event refused for its provenance
(provenance.py) is kept with status `refused`: evidence, which replay never applies.
"""

import json
import logging
import time

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from ..contracts.events import Event, parse_event
from ..contracts.topology import PRODUCED
from ..runtime import metrics
from ..storage.db import DatabaseCore, UnitOfWork, utcnow
from ..storage.tables import dead_letters, inbox
from ..values.errors import Conflict, InvalidInput, NotFound
from ..values.retry import EVENT_HANDLER, Backoff
from .crashpoints import crash_point

log = logging.getLogger(__name__)

CATALOGUE = frozenset(t for types in PRODUCED.values() for t in types)
APPLIED, DUPLICATE, DEAD_LETTERED, REFUSED = "applied", "duplicate", "dead_lettered", "refused"


class RetryPolicy:
    """How often a failing handler is tried, and how long between tries (services/common/values/retry.py)."""

    def __init__(self, attempts: int = 5, backoff: float = EVENT_HANDLER.base, cap: float = EVENT_HANDLER.cap):
        self.attempts = max(1, attempts)
        self.backoff = Backoff(backoff, cap)

    def delay(self, attempt: int) -> float:
        return self.backoff.delay(attempt)


def already_applied(session, consumer: str, event_id: str) -> bool:
    return (
        session.execute(
            select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id == event_id)
        ).first()
        is not None
    )


def apply_once(uow: UnitOfWork, consumer: str, event: Event, apply) -> str:
    """One attempt: skip a duplicate, else apply and record the inbox row, committing both together."""
    try:
        if already_applied(uow.session, consumer, event.event_id):
            uow.rollback()
            return DUPLICATE
        apply(event, uow)
        uow.session.execute(
            insert(inbox).values(
                consumer=consumer, event_id=event.event_id, event_type=event.event_type, applied_at=utcnow()
            )
        )
        uow.commit()
        crash_point("inbox.after_apply")
        return APPLIED
    except IntegrityError:
        # a concurrent delivery of the same event committed first
        uow.rollback()
        with uow.core.engine.connect() as conn:
            if conn.execute(
                select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id == event.event_id)
            ).first():
                return DUPLICATE
        raise
    except BaseException:
        uow.rollback()
        raise


def consume(uow: UnitOfWork, consumer: str, body, headers: dict, apply, policy: RetryPolicy) -> str:
    """Validate, then apply with retries; after the last failure, store a dead letter. Returns the outcome."""
    service = uow.core.service
    try:
        event = parse_event(body)
    except InvalidInput as exc:  # a message no retry can fix
        store_dead_letter(uow.core, consumer, body, headers, f"invalid event: {exc}", attempts=1)
        metrics.EVENTS_HANDLED.labels(service, _event_type_of(body), DEAD_LETTERED).inc()
        return DEAD_LETTERED
    error, failure = "", None  # the last attempt's (policy.attempts is at least 1)
    for attempt in range(1, policy.attempts + 1):
        try:
            outcome = apply_once(uow, consumer, event, apply)
        except Exception as exc:
            failure = exc
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed on %s (attempt %d/%d): %s", consumer, event, attempt, policy.attempts, error)
            metrics.EVENTS_HANDLED.labels(service, event.event_type, "failed").inc()
            if attempt < policy.attempts:
                time.sleep(policy.delay(attempt))
            continue
        if outcome == DUPLICATE:
            metrics.INBOX_DUPLICATES.labels(service, event.event_type).inc()
        metrics.EVENTS_HANDLED.labels(service, event.event_type, outcome).inc()
        return outcome
    if isinstance(failure, (OperationalError, InterfaceError)):
        # the database is away, the message is fine: requeue it (redelivered and retried), never dead-letter it
        raise failure
    store_dead_letter(uow.core, consumer, body, headers, error, attempts=policy.attempts)
    metrics.EVENTS_HANDLED.labels(service, event.event_type, DEAD_LETTERED).inc()
    return DEAD_LETTERED


def _event_type_of(body) -> str:
    """The body's event type when it is one of the catalogue (a metric label: never an arbitrary string)."""
    event_type = body.get("event_type") if isinstance(body, dict) else None
    return event_type if isinstance(event_type, str) and event_type in CATALOGUE else "invalid"


def store_dead_letter(core: DatabaseCore, consumer: str, body, headers: dict, error: str, attempts: int):
    """Keep the message (or count one more failure of it); raises if the database is away, so it is requeued."""
    raw = body if isinstance(body, str) else json.dumps(body, default=str)
    event_id = body.get("event_id") if isinstance(body, dict) and isinstance(body.get("event_id"), str) else None
    now = utcnow()
    with core.exclusive(), core.engine.begin() as conn:
        existing = None
        if event_id:
            existing = conn.execute(
                select(dead_letters.c.id).where(
                    dead_letters.c.consumer == consumer, dead_letters.c.event_id == event_id[:36]
                )
            ).first()
        if existing:
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == existing.id)
                .values(
                    attempts=dead_letters.c.attempts + attempts,
                    error=error,
                    last_failed_at=now,
                    status="held",
                    resolved_at=None,
                )
            )
        else:
            conn.execute(
                insert(dead_letters).values(
                    consumer=consumer,
                    event_id=event_id[:36] if event_id else None,
                    event_type=_event_type_of(body),
                    body=raw,
                    headers={k: v for k, v in (headers or {}).items() if isinstance(v, (str, int, float))},
                    error=error[:4000],
                    attempts=attempts,
                    status="held",
                    first_failed_at=now,
                    last_failed_at=now,
                )
            )
    refresh_dead_letter_gauge(core)
    log.error("dead-lettered %s for %s: %s", event_id, consumer, error)


def refuse_event(core: DatabaseCore, consumer: str, body, headers: dict, reason: str) -> str:
    """Keep a refused event as evidence (status `refused`: never replayed) and count it; nothing is applied.

    Stored without its event id, so a forged copy can neither block nor merge with the genuine event's
    dead letter or inbox row."""
    raw = body if isinstance(body, str) else json.dumps(body, default=str)
    now = utcnow()
    with core.exclusive(), core.engine.begin() as conn:
        conn.execute(
            insert(dead_letters).values(
                consumer=consumer,
                event_id=None,
                event_type=_event_type_of(body),
                body=raw,
                headers={k: v for k, v in (headers or {}).items() if isinstance(v, (str, int, float))},
                error=f"refused: {reason}"[:4000],
                attempts=1,
                status=REFUSED,
                first_failed_at=now,
                last_failed_at=now,
                resolved_at=now,
            )
        )
    event_type = _event_type_of(body)
    metrics.EVENTS_REFUSED.labels(core.service, event_type).inc()
    metrics.EVENTS_HANDLED.labels(core.service, event_type, REFUSED).inc()
    log.error("refused an event for %s: %s", consumer, reason)
    return REFUSED


def refresh_dead_letter_gauge(core: DatabaseCore):
    with core.engine.connect() as conn:
        held = conn.execute(select(func.count()).where(dead_letters.c.status == "held")).scalar_one()
    metrics.DEAD_LETTERS.labels(core.service).set(held)


def list_dead_letters(core: DatabaseCore, status: str | None = "held", limit: int = 100) -> list[dict]:
    query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
    if status:
        query = query.where(dead_letters.c.status == status)
    with core.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def replay_dead_letter(uow: UnitOfWork, dead_letter_id: int, handlers: dict) -> str:
    """Apply a held dead letter again with the service's current code; the inbox still guarantees once.

    `handlers` maps consumer name -> apply function. On failure the letter stays held and Conflict says why.
    """
    with uow.core.engine.connect() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == dead_letter_id)).first()
    if row is None:
        raise NotFound("dead_letter", dead_letter_id)
    if row.status != "held":
        raise Conflict("dead_letter.not_held", f"dead letter {dead_letter_id} is {row.status}")
    apply = handlers.get(row.consumer)
    if apply is None:
        raise Conflict("dead_letter.no_handler", f"no handler {row.consumer} in this service")
    try:
        event = parse_event(json.loads(row.body))
        outcome = apply_once(uow, row.consumer, event, apply)
    except Exception as exc:
        with uow.core.exclusive(), uow.core.engine.begin() as conn:
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dead_letter_id)
                .values(
                    attempts=dead_letters.c.attempts + 1,
                    error=f"{type(exc).__name__}: {exc}"[:4000],
                    last_failed_at=utcnow(),
                )
            )
        raise Conflict("dead_letter.replay_failed", f"{type(exc).__name__}: {exc}") from None
    _resolve(uow.core, dead_letter_id, "replayed")
    metrics.EVENTS_HANDLED.labels(uow.core.service, event.event_type, outcome).inc()
    return outcome


def discard_dead_letter(core: DatabaseCore, dead_letter_id: int) -> None:
    with core.engine.connect() as conn:
        row = conn.execute(select(dead_letters.c.status).where(dead_letters.c.id == dead_letter_id)).first()
    if row is None:
        raise NotFound("dead_letter", dead_letter_id)
    if row.status != "held":
        raise Conflict("dead_letter.not_held", f"dead letter {dead_letter_id} is {row.status}")
    _resolve(core, dead_letter_id, "discarded")


def _resolve(core: DatabaseCore, dead_letter_id: int, status: str):
    with core.exclusive(), core.engine.begin() as conn:
        conn.execute(
            update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(status=status, resolved_at=utcnow())
        )
    refresh_dead_letter_gauge(core)
