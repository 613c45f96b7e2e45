"""Database access for a service: engine, unit of work with the transactional outbox, nameko provider.

The unit of work is where events leave an aggregate: `uow.emit()` validates the event against its contract and
writes it to the outbox in the same transaction as the state change, so both commit or neither does.

nameko replies to an RPC (and acks an event) *before* dependency providers see the worker's result, so a
commit in `worker_result` could confirm a change that then fails to commit. The kit's entrypoint wrappers
(`operation`, `handles`) therefore commit inside the worker; the provider only rolls back what a worker left.
"""
import json
import logging
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event, insert
from sqlalchemy.orm import Session, sessionmaker

from .events import Event, make_event
from .tables import audit_log, outbox
from .topology import exchange_name
from .wire import to_wire

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_db_engine(url: str, pool_size: int = 10):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # pre-ping: a PostgreSQL restart must cost one retry, not a failed request per stale pooled connection.
    # Connections open lazily up to pool_size + overflow: sized to the worker pool, not beyond, because
    # every replica of every service shares the server's max_connections.
    half = max(2, pool_size // 2)
    return create_engine(url, pool_size=half, max_overflow=half, pool_pre_ping=True, pool_recycle=600,
                         pool_timeout=60)


class DatabaseCore:
    """Engine and session factory of one service database, usable with or without nameko."""

    def __init__(self, url: str, service: str, pool_size: int = 10):
        self.url = url
        self.service = service
        self.engine = create_db_engine(url, pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; its C driver blocks the whole eventlet hub while it waits for a lock,
        # so the embedded default serialises units of work in-process instead.
        self._sqlite_lock = threading.RLock() if self.is_sqlite else None
        self.on_commit_with_events = []  # callbacks (the outbox relay's wake-up)

    @contextmanager
    def exclusive(self):
        if self._sqlite_lock is None:
            yield
        else:
            with self._sqlite_lock:
                yield

    def unit_of_work(self, actor=None, identity=None, operation=None, correlation_id=None) -> "UnitOfWork":
        return UnitOfWork(self, actor=actor, identity=identity, operation=operation, correlation_id=correlation_id)

    def dispose(self):
        self.engine.dispose()


class UnitOfWork:
    """One transaction at a time on the service database, collecting the events it emits."""

    def __init__(self, core: DatabaseCore, actor=None, identity=None, operation=None, correlation_id=None):
        self.core = core
        self.identity = identity
        self.actor = actor
        self.operation = operation
        self.correlation_id = correlation_id
        self._session: Session | None = None
        self._locked = False
        self.emitted: list[Event] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            if self.core._sqlite_lock is not None:
                self.core._sqlite_lock.acquire()
                self._locked = True
            self._session = self.core.sessionmaker()
        return self._session

    def emit(self, event_type: str, data: dict, occurred_at: datetime | None = None) -> Event:
        """Validate the event and add it to the outbox in this transaction."""
        actor = self.actor or (self.identity.user if self.identity else None)
        evt = make_event(event_type, data, producer=self.core.service, actor=actor, occurred_at=occurred_at)
        headers = {"nameko.correlation_id": self.correlation_id} if self.correlation_id else {}
        self.session.execute(insert(outbox).values(
            event_id=evt.event_id, event_type=event_type, exchange=exchange_name(self.core.service),
            routing_key=event_type, body=json.dumps(evt.body), headers=headers, created_at=utcnow(), attempts=0,
        ))
        self.emitted.append(evt)
        return evt

    def audit(self, operation: str, entity: str | None, detail: dict, outcome: str = "done"):
        self.session.execute(insert(audit_log).values(
            at=utcnow(), user=self.identity.user if self.identity else self.actor,
            roles=list(self.identity.roles) if self.identity else [], operation=operation, outcome=outcome,
            entity=entity, detail=to_wire(detail), correlation_id=self.correlation_id,
        ))

    def _audit_emitted(self):
        # every event a staff operation caused is its audit record: who, what, on which entity, the after-state
        if self.identity is None or not self.operation:
            return
        for evt in self.emitted:
            self.audit(self.operation, entity_of(evt), {"event_type": evt.event_type, "event_id": evt.event_id,
                                                         "data": evt.body["data"]})

    def commit(self):
        if self._session is None:
            return
        had_events = bool(self.emitted)
        try:
            self._audit_emitted()
            self._session.commit()
        finally:
            self._end()
        if had_events:
            for callback in self.core.on_commit_with_events:
                callback()

    def rollback(self):
        if self._session is None:
            return
        try:
            self._session.rollback()
        finally:
            self._end()

    def _end(self):
        session, self._session = self._session, None
        self.emitted = []
        try:
            session.close()
        finally:
            if self._locked:
                self._locked = False
                self.core._sqlite_lock.release()

    close = rollback


def entity_of(evt: Event) -> str | None:
    for key in ("grant_id", "proposal_id", "call_id", "payment_id", "report_id", "notification_id"):
        if key in evt.body["data"]:
            return f"{key[:-3]}:{evt.body['data'][key]}"
    return None


class Database(DependencyProvider):
    """Gives each worker a UnitOfWork on the service database and runs the outbox relay beside the service."""

    def setup(self):
        from .outbox import OutboxRelay
        config = self.container.config
        self.core = DatabaseCore(config["DATABASE_URL"], self.container.service_name,
                                 pool_size=int(config.get("max_workers", 10)) + 2)
        self.relay = OutboxRelay(self.core, config["AMQP_URI"], sweep_seconds=float(config.get("OUTBOX_SWEEP_SECONDS", 2)))
        self.core.on_commit_with_events.append(self.relay.wake)

    def start(self):
        from .inbox import refresh_dead_letter_gauge
        refresh_dead_letter_gauge(self.core)  # letters held from before a restart still alert
        self.container.spawn_managed_thread(self.relay.run, identifier="outbox-relay")

    def stop(self):
        self.relay.stop()
        self.core.dispose()

    def kill(self):
        self.relay.stop()

    def get_dependency(self, worker_ctx):
        correlation = "/".join(worker_ctx.call_id_stack) if worker_ctx.call_id_stack else None
        uow = self.core.unit_of_work(operation=worker_ctx.entrypoint.method_name, correlation_id=correlation)
        uow.worker_ctx = worker_ctx
        return uow

    def worker_teardown(self, worker_ctx):
        # whatever a failed or refused worker left uncommitted is undone here
        uow = getattr(worker_ctx.service, self.attr_name, None)
        if isinstance(uow, UnitOfWork):
            uow.rollback()
