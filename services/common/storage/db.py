"""Database access for a service: engine and unit of work with the transactional outbox.

The unit of work is where events leave an aggregate: `uow.emit()` validates the event against its contract and
makes its wire form, once; `commit()` writes every event of the unit to the outbox in the same transaction as the
state change (one statement, with the staff audit rows of those events on PostgreSQL), so both commit or neither
does. The nameko provider that hands each worker a unit of work is services/common/service/database.py.
"""

import functools
import io
import json
import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager, suppress
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import JSON, Insert, bindparam, create_engine, event, insert, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ..contracts.events import Event, make_event
from ..contracts.topology import exchange_name
from ..values.retry import STALE_CONNECTION_RETRIES
from ..values.wire import to_wire
from .tables import audit_log, outbox

log = logging.getLogger(__name__)

# built once: the values are parameters, so each statement is compiled once and cached
_INSERT_OUTBOX = insert(outbox)
_INSERT_AUDIT = insert(audit_log)


@functools.lru_cache(maxsize=8)
def _one_event_and_audit(outbox_keys: tuple, audit_keys: tuple):
    """One event's outbox row in a data-modifying WITH and its audit row in the INSERT, the values bound by name
    (o_body, a_detail ...): SQLAlchemy compiles it once and caches it. A multi-row VALUES has no cache key, so it is
    compiled at every commit: the common unit of one event is spared that."""

    def row(table, prefix, keys):
        return insert(table).values({k: bindparam(f"{prefix}_{k}", type_=table.c[k].type) for k in keys})

    return row(audit_log, "a", audit_keys).add_cte(row(outbox, "o", outbox_keys).cte("outbox_row"))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


_NO_BITMAP_SCANS = text("SET LOCAL enable_bitmapscan = off")


@contextmanager
def statements_commit_themselves(connection):
    """Within the block, each statement on `connection` (PostgreSQL, psycopg2) is its own transaction: no BEGIN
    and no COMMIT round trip, for a write that is one statement. For a connection that has sent nothing yet in its
    transaction. It sets the driver's autocommit itself: SQLAlchemy's AUTOCOMMIT isolation level would leave the
    pooled connection's level set explicitly, which psycopg2 then pays for with a SET at every switch. Such a
    statement is its own COMMIT: if the connection is lost under it, it may have committed, and `retrying_stale`
    runs the unit of work again, so it suits a write whose second run finds the first (a key, as submissions)."""
    driver = connection.connection.dbapi_connection
    driver.autocommit = True
    try:
        yield connection
    finally:
        if not driver.closed:
            driver.autocommit = False


def index_scans_only(connection) -> None:
    """For the rest of the transaction on PostgreSQL (nothing elsewhere): a queue's claim (`WHERE <pending> ORDER BY
    <index order> LIMIT n FOR UPDATE SKIP LOCKED`) walks its partial index in order and stops at n rows. Otherwise
    the planner may pick a bitmap scan and a sort of every pending row: what it does on a table it has no
    statistics for (a server without autovacuum, or a burst since its last ANALYZE estimated rare), and the bitmap
    scan visits the heap row behind every dead index entry at every claim, where an index scan marks those entries
    dead once."""
    if connection.dialect.name == "postgresql":
        connection.execute(_NO_BITMAP_SCANS)


def insert_rows(
    session: Session,
    table,
    rows: list,
    *,
    columns: tuple[str, ...] | None = None,
    ignore_conflicts: bool = False,
    page_size: int = 1000,
) -> None:
    """Insert `rows` into `table` (a Table or an ORM class) in the session's transaction: dicts with the same
    keys, or tuples of the values of `columns` in that order. On PostgreSQL with psycopg2 one multi-row
    `INSERT ... VALUES (...), (...)` per `page_size` rows, the column types' own bind processing applied and the
    values written as SQL literals here (`_literal`: a fifth of the client's work of psycopg2's execute_values,
    which adapts each row with a mogrify call; its executemany costs one round trip per row). A JSON column takes a
    `JsonText` as the JSON text it is. `ignore_conflicts` adds ON CONFLICT DO NOTHING (the first row of a key wins,
    in the table as within the rows). Elsewhere (SQLite) the same through SQLAlchemy."""
    if not rows:
        return
    session.flush()  # what the session holds goes first, as an ORM statement would have it
    table = getattr(table, "__table__", table)
    dialect = session.get_bind().dialect
    keys = tuple(columns) if columns is not None else tuple(rows[0])
    plan = _insert_plan(table, keys, ignore_conflicts, dialect)
    if plan is None:
        statement: Insert
        if ignore_conflicts:
            if dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                statement = pg_insert(table).on_conflict_do_nothing()
            else:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                statement = sqlite_insert(table).on_conflict_do_nothing()
        else:
            statement = insert(table)
        if columns is None:
            rows = [tuple(row[k] for k in keys) for row in rows]
        rows = [tuple(json.loads(v) if type(v) is JsonText else v for v in row) for row in rows]
        session.connection().execute(statement, [dict(zip(keys, r)) for r in rows])
        return
    (head, tail), processors = plan
    if columns is None:
        rows = [tuple(row[k] for k in keys) for row in rows]
    literal = _literal
    if any(p is not None for p in processors):
        rows = [tuple(v if p is None else p(v) for v, p in zip(row, processors)) for row in rows]
    try:
        values = ["(" + ",".join([literal(v) for v in row]) + ")" for row in rows]
    except TypeError:  # a value of another type: psycopg2 adapts it
        from psycopg2.extras import execute_values

        with _driver_cursor(session, head) as cursor:
            execute_values(cursor, head + "%s" + tail, rows, page_size=page_size)
        return
    with _driver_cursor(session, head) as cursor:
        for start in range(0, len(values), page_size):
            statement_text = head + ",".join(values[start : start + page_size]) + tail
            if "\x00" in statement_text:  # libpq would cut the statement there; PostgreSQL keeps no NUL in text
                raise ValueError("a value to insert contains a NUL (0x00) character")
            cursor.execute(statement_text)


class JsonText(str):
    """A JSON column's value already in its wire form (the text a message brought): `insert_rows` writes it as it
    is instead of serialising the parsed value again; through SQLAlchemy (SQLite) it is parsed back first."""


def _literal(value) -> str:
    """A bound value as a PostgreSQL literal for a multi-row VALUES (the column's type resolves an untyped one).
    Strings with a quote or backslash as E'...' with both doubled, whatever standard_conforming_strings says;
    TypeError for other types (the caller lets psycopg2 adapt them)."""
    if value is None:
        return "NULL"
    kind = type(value)
    if kind is str or kind is JsonText:
        if "'" in value or "\\" in value:
            return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        return "'" + value + "'"
    if kind is int:
        return str(value)
    if kind is Decimal or kind is datetime or kind is date:
        return "'" + (str(value) if kind is Decimal else value.isoformat()) + "'"
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return "'" + repr(value) + "'"
    if isinstance(value, str):  # a str subclass (an enum's value...)
        return _literal(str.__str__(value))
    raise TypeError(f"no literal form here for {kind.__name__}")


@contextmanager
def _driver_cursor(session: Session, statement: str):
    """A psycopg2 cursor of the session's connection; the driver's errors come out as SQLAlchemy's (IntegrityError,
    OperationalError...), as from a statement SQLAlchemy ran, so callers tell a duplicate or a lost database apart
    the same way; a lost connection is invalidated, not handed out again."""
    connection = session.connection()
    dialect = connection.dialect
    cursor = connection.connection.cursor()
    try:
        yield cursor
    except dialect.loaded_dbapi.Error as exc:
        gone = dialect.is_disconnect(exc, connection.connection, cursor)
        if gone:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
        ) from exc
    finally:
        with suppress(Exception):  # a cursor of a lost connection may refuse to close
            cursor.close()


# COPY's text escapes, backslash first, each done by a C replace: str.translate with a table walks the string
# character by character in Python objects (~50 us for a 1 KB JSON body with one escape, against 0.5)
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def _copy_text(value) -> str:
    """A bound value in COPY's text format (None is \\N; backslash, tab, newline and CR escaped); TypeError for a
    type it does not know (the caller inserts those rows instead)."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str or kind is JsonText or (kind is not bool and isinstance(value, str)):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            for character, escaped in _COPY_ESCAPES:
                value = value.replace(character, escaped)
        return value
    if kind is int or kind is Decimal:
        return str(value)
    if kind is datetime or kind is date:
        return value.isoformat()
    if kind is bool:
        return "t" if value else "f"
    if kind is float:
        return repr(value)
    raise TypeError(f"no COPY text form here for {kind.__name__}")


def copy_rows(session: Session, table, rows: list, *, columns: tuple[str, ...], ignore_conflicts: bool = False) -> None:
    """Write `rows` (tuples of the values of `columns`) into `table` in the session's transaction, as
    `insert_rows` does, but on PostgreSQL with psycopg2 by `COPY ... FROM STDIN` (text format, the column types'
    own bind processing applied): PostgreSQL spends a quarter to a third of a multi-row INSERT's time on it (no
    statement of thousands of literals to parse), the client a fifth. Elsewhere, or for a value of a type COPY's
    text is not written for here, `insert_rows`.

    Without `ignore_conflicts`, straight into the table: a row whose key is there already fails the statement (and
    so the transaction), as an INSERT's would. With it, into a temporary table of the connection (made once,
    emptied at each commit), then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` in the rows' order, so the
    first row of a key wins, in the table as within the rows."""
    if not rows:
        return
    table = getattr(table, "__table__", table)
    dialect = session.get_bind().dialect
    plan = _copy_plan(table, tuple(columns), dialect)
    lines = None
    if plan is not None:
        copy, processors, stage, insert_staged = plan
        text = _copy_text
        try:
            if any(p is not None for p in processors):
                lines = ["\t".join([text(v if p is None else p(v)) for v, p in zip(row, processors)]) for row in rows]
            else:
                lines = ["\t".join([text(v) for v in row]) for row in rows]
        except TypeError:
            lines = None
    if lines is None:
        insert_rows(session, table, rows, columns=columns, ignore_conflicts=ignore_conflicts)
        return
    session.flush()  # what the session holds goes first, as an ORM statement would have it
    lines.append("")
    data = io.StringIO("\n".join(lines))
    if not ignore_conflicts:
        with _driver_cursor(session, copy) as cursor, _blocking_driver():
            cursor.copy_expert(copy, data)
        return
    with _driver_cursor(session, stage[1]) as cursor:
        cursor.execute(stage[0])  # IF NOT EXISTS: made once per connection; emptied, should it hold rows already
        with _blocking_driver():
            cursor.copy_expert(stage[1], data)
        cursor.execute(insert_staged)


@contextmanager
def _blocking_driver():
    """psycopg2 refuses COPY on a green connection (the services': eventlet's wait callback is set process-wide):
    the callback is lifted for the COPY alone. The COPY then blocks the process for its few milliseconds; no other
    green thread runs meanwhile, so none sees the callback missing. It only writes rows no other transaction of
    the process writes (new events' archive and inbox rows, a connection's own temporary table), so it never waits
    for one of the process's own transactions."""
    from psycopg2.extensions import get_wait_callback, set_wait_callback

    wait = get_wait_callback()
    if wait is None:
        yield
        return
    set_wait_callback(None)
    try:
        yield
    finally:
        set_wait_callback(wait)


_COPY_PLANS: dict = {}


def _copy_plan(table, keys: tuple[str, ...], dialect):
    """The COPY statement, the columns' bind processors (as the INSERT's) and the statements of the staged way
    (ignore_conflicts), built once per table and columns; None where the multi-row INSERT's plan is None."""
    cache_key = (table, keys, dialect.name, dialect.driver)
    if cache_key in _COPY_PLANS:
        return _COPY_PLANS[cache_key]
    plan = None
    insert_plan = _insert_plan(table, keys, False, dialect)
    if insert_plan is not None:
        quote = dialect.identifier_preparer
        names = ", ".join(quote.quote(table.c[k].name) for k in keys)
        target = quote.format_table(table)
        staged = "pg_temp." + quote.quote(f"copy_stage_{table.schema + '_' if table.schema else ''}{table.name}")
        prepare = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staged} (LIKE {target}) ON COMMIT DELETE ROWS; DELETE FROM {staged}"
        )
        insert_staged = (
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {staged} ORDER BY ctid ON CONFLICT DO NOTHING"
        )
        plan = (
            f"COPY {target} ({names}) FROM STDIN",
            insert_plan[1],
            (prepare, f"COPY {staged} ({names}) FROM STDIN"),
            insert_staged,
        )
    _COPY_PLANS[cache_key] = plan
    return plan


_INSERT_PLANS: dict = {}


def _json_value(process, value):
    return value if type(value) is JsonText else process(value)


def _insert_plan(table, keys: tuple[str, ...], ignore_conflicts: bool, dialect):
    """The statement's head and tail and the columns' bind processors (a JSON column's JsonText passed through) for
    a multi-row insert of `keys` into `table`, built once per table and columns; None where it does not apply (not
    psycopg2, or a column default the rows leave to SQLAlchemy)."""
    cache_key = (table, keys, ignore_conflicts, dialect.name, dialect.driver)
    if cache_key in _INSERT_PLANS:
        return _INSERT_PLANS[cache_key]
    plan = None
    missing_defaults = any(c.default is not None and c.key not in keys for c in table.columns)
    if dialect.name == "postgresql" and dialect.driver == "psycopg2" and not missing_defaults:
        quote = dialect.identifier_preparer
        columns = [table.c[k] for k in keys]
        head = f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(c.name) for c in columns)}) VALUES "
        processors = []
        for column in columns:
            process = column.type._cached_bind_processor(dialect)
            if process is not None and isinstance(column.type, JSON):
                process = functools.partial(_json_value, process)
            processors.append(process)
        plan = (head, " ON CONFLICT DO NOTHING" if ignore_conflicts else ""), tuple(processors)
    _INSERT_PLANS[cache_key] = plan
    return plan


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
    # No pre-ping (a round trip per checkout): a connection that went stale in the pool (PostgreSQL restarted)
    # fails its statement, SQLAlchemy then discards every older pooled connection, and the unit of work is run
    # again once (`retrying_stale`): a restart costs one retry, not a failed request per stale connection.
    # Connections open lazily, at most pool_size: sized to the worker pool, not beyond, because every replica of
    # every service shares the server's max_connections. No overflow: an overflow connection is closed when it
    # comes back, so under a rush each checkout beyond the kept ones would open a new server backend.
    # values_plus_batch: a flush's UPDATEs of many rows (a batch's grants, say) go 100 to a round trip
    # (execute_batch), not one each; nothing here reads an executemany's rowcount, which that mode leaves unset.
    options = {"executemany_mode": "values_plus_batch"} if make_url(url).get_driver_name() == "psycopg2" else {}
    engine = create_engine(
        url, pool_size=max(2, pool_size), max_overflow=0, pool_recycle=600, pool_timeout=60, **options
    )
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _lz4_toast_compression)
    return engine


def _lz4_toast_compression(dbapi_connection, _record):
    """Values large enough to be compressed (events' bodies, proposals' data) are compressed with lz4, not pglz:
    pglz was a tenth of PostgreSQL's CPU per submission. A server built without lz4 (or older than 14) keeps its
    default."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET default_toast_compression = lz4")
        dbapi_connection.commit()  # a SET in a transaction rolled back would be undone
    except dbapi_connection.Error as exc:
        dbapi_connection.rollback()
        log.info("the database keeps its TOAST compression: %s", exc)
    finally:
        cursor.close()


def stale_connection(exc: BaseException) -> bool:
    """The database dropped the connection (a restart, a terminated backend): the transaction is lost, and the
    pool has already discarded the connections opened before."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def retrying_stale(work, undo=None):
    """work() run again when the database dropped the connection under it: nothing of its transaction was
    committed (`undo()` first rolls back what is left of it), and the pool now gives a fresh connection. An
    operation passes its use case without the commit: a COMMIT whose connection is lost may have committed."""
    for attempt in range(1, STALE_CONNECTION_RETRIES + 2):
        try:
            return work()
        except DBAPIError as exc:
            if not stale_connection(exc) or attempt > STALE_CONNECTION_RETRIES:
                raise
            log.warning("database connection lost (%s): running the unit of work again", exc.orig)
            if undo is not None:
                undo()
    raise AssertionError("unreachable")


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
        self.on_commit_with_events: list[Callable[[], object]] = []  # callbacks (the outbox relay's wake-up)

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
        self._outbox_rows: list[dict] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            if self.core._sqlite_lock is not None:
                self.core._sqlite_lock.acquire()
                self._locked = True
            self._session = self.core.sessionmaker()
        return self._session

    def emit(self, event_type: str, data: dict, occurred_at: datetime | None = None) -> Event:
        """Validate the event and make its outbox row, which commit() writes in this transaction."""
        actor = self.actor or (self.identity.user if self.identity else None)
        evt = make_event(event_type, data, producer=self.core.service, actor=actor, occurred_at=occurred_at)
        headers = {"nameko.correlation_id": self.correlation_id} if self.correlation_id else {}
        self.session  # noqa: B018 -- the transaction starts now if the state change has not started it
        self._outbox_rows.append(
            dict(
                event_id=evt.event_id,
                event_type=event_type,
                exchange=exchange_name(self.core.service),
                routing_key=event_type,
                body=json.dumps(evt.body),
                headers=headers,
                created_at=utcnow(),
                attempts=0,
            )
        )
        self.emitted.append(evt)
        return evt

    def audit(self, operation: str, entity: str | None, detail: dict, outcome: str = "done"):
        self.session.execute(_INSERT_AUDIT, self._audit_row(operation, entity, to_wire(detail), outcome))

    def _audit_row(self, operation: str, entity: str | None, detail: dict, outcome: str = "done") -> dict:
        return dict(
            at=utcnow(),
            user=self.identity.user if self.identity else self.actor,
            roles=list(self.identity.roles) if self.identity else [],
            operation=operation,
            outcome=outcome,
            entity=entity,
            detail=detail,
            correlation_id=self.correlation_id,
        )

    def _write_emitted(self):
        """The unit's events into the outbox and, for a staff operation, each as its audit record: who, what, on
        which entity, the after-state (the event's wire form already: no conversion). On PostgreSQL one statement
        writes both tables (the outbox rows in a data-modifying WITH), elsewhere one per table."""
        if not self._outbox_rows:
            return
        audit = self._audit_rows(self.emitted)
        # Core statements on the session's connection: Session.execute's ORM layer costs as much again
        connection = self.session.connection()
        if len(audit) == 1 and not self.core.is_sqlite:
            (event_row,), (audit_row,) = self._outbox_rows, audit
            statement = _one_event_and_audit(tuple(event_row), tuple(audit_row))
            connection.execute(
                statement,
                {**{f"o_{k}": v for k, v in event_row.items()}, **{f"a_{k}": v for k, v in audit_row.items()}},
            )
            return
        if audit and not self.core.is_sqlite:
            connection.execute(
                insert(audit_log).values(audit).add_cte(insert(outbox).values(self._outbox_rows).cte("outbox_rows"))
            )
            return
        connection.execute(_INSERT_OUTBOX, self._outbox_rows)
        if audit:
            connection.execute(_INSERT_AUDIT, audit)

    def _audit_rows(self, events: list[Event]) -> list[dict]:
        if self.identity is None or not self.operation:
            return []
        return [
            self._audit_row(
                self.operation,
                entity_of(evt),
                {"event_type": evt.event_type, "event_id": evt.event_id, "data": evt.body["data"]},
            )
            for evt in events
        ]

    def take_event_rows(self) -> tuple[list[dict], list[dict]]:
        """The outbox rows of the events emitted so far and their audit rows, for a statement of the caller's that
        writes them with its own state change, in this transaction: commit() then writes none of them (it still
        wakes the relay). That statement must write them all or the caller must roll back."""
        rows = self._outbox_rows
        audit = self._audit_rows(self.emitted[len(self.emitted) - len(rows) :])
        self._outbox_rows = []
        return rows, audit

    def commit(self):
        if self._session is None:
            return
        had_events = bool(self.emitted)
        try:
            self._write_emitted()
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
        self.emitted, self._outbox_rows = [], []
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
