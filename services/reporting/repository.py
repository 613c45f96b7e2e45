"""The reporting service's writes: the event archive (append-only, in arrival order) and the fact rows of a batch,
each table written by one multi-row statement. projections.py says which rows an event gives; rebuild_sql.py
rebuilds them all set-based on PostgreSQL."""

from datetime import datetime, timezone

from sqlalchemy import delete, distinct, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy import inspect as sa_inspect

from services.common.contracts.events import Event
from services.common.storage.db import JsonText, UnitOfWork, copy_rows

from . import standing
from .models import COPIED_COLUMNS, ArchivedEvent, Base, CopiedColumn, GrantPaymentsRow, TrancheRow


def archive_many(uow: UnitOfWork, events: list[Event]):
    """One COPY for a batch (db.copy_rows): the archive is append-only, in arrival order; each body as the text it
    came in where the consumer kept it (Event.text), not serialised again from the parsed body. An event archived
    already breaks the unique event_id and fails the batch, as an INSERT would."""
    archived_at = datetime.now(timezone.utc)
    copy_rows(
        uow.session,
        ArchivedEvent,
        [
            (
                e.event_id,
                e.event_type,
                e.producer,
                e.occurred_at,
                e.body if e.text is None else JsonText(e.text),
                archived_at,
            )
            for e in events
        ],
        columns=("event_id", "event_type", "producer", "occurred_at", "body", "archived_at"),
    )


DERIVED_ROWS_LOCK = 0x4A4D44490002  # advisory lock id: one batch at a time computes rows from others' (rebuild: ...01)
# the fact tables other rows are derived from: a batch writing none of them takes no lock
DERIVED_FROM: frozenset[type[Base]] = frozenset(
    {TrancheRow, *standing.CHANGED_BY, *(c.target for c in COPIED_COLUMNS), *(c.source for c in COPIED_COLUMNS)}
)


class FactWriter:
    """Collects the fact rows of a batch and writes each table with one COPY into a temporary table and one INSERT
    from it that skips keys already there (db.copy_rows): no read before write, a handful of round trips per
    batch instead of two per event. The first row of a key wins, within the batch as against the table — the same
    as applying the events one by one. Rows are kept as tuples in the table's column order (no ORM objects).

    After the inserts, each copied column (models.COPIED_COLUMNS) is set on the rows of the keys the batch wrote
    on either side, by one UPDATE: the two events may come in either order, in one batch or in two. Then the
    payments row of each grant whose tranches the batch wrote is computed again from its tranches (tally_payments):
    a tranche given twice, or paid before its grant's award, gives the row the tranches give; and on PostgreSQL the
    standing row of each grant whose facts the batch wrote (standing.keep). Reporting runs as
    several replicas: on PostgreSQL these derived rows are written under an advisory lock held until the batch
    commits, so that each batch derives from every other batch's committed facts (DERIVED_ROWS_LOCK)."""

    _columns: dict[type, tuple[tuple[str, ...], frozenset]] = {}  # per fact class, looked up once

    def __init__(self, session):
        self.session = session
        self.rows: dict[type, dict] = {}

    def add(self, model, key, **values):
        """A row of `model` (column name -> value; a column left out is NULL) under its identity `key`."""
        rows = self.rows.setdefault(model, {})
        if key in rows:  # the first row of a key wins
            return
        names, known = self._columns.get(model) or self._look_up(model)
        if not known.issuperset(values):
            raise TypeError(f"{model.__name__} has no column(s) {sorted(set(values) - known)}")
        rows[key] = tuple(values.get(name) for name in names)

    @classmethod
    def columns(cls, model) -> tuple[str, ...]:
        """A fact class's column attribute names: the order of the values in the rows the writer keeps."""
        return (cls._columns.get(model) or cls._look_up(model))[0]

    @classmethod
    def _look_up(cls, model):
        names = tuple(c.key for c in sa_inspect(model).column_attrs)
        cls._columns[model] = names, frozenset(names)
        return cls._columns[model]

    def flush(self):
        for model, rows in self.rows.items():
            copy_rows(self.session, model, list(rows.values()), columns=self.columns(model), ignore_conflicts=True)
        postgres = self.session.get_bind().dialect.name == "postgresql"
        if postgres and any(self.rows.get(m) for m in DERIVED_FROM):
            # Rows computed from other tables' rows must see every batch's: two replicas' batches, each blind to the
            # other's uncommitted facts, would both miss a contract's date (award in one, contract in the other) or
            # both count their own tranches only. One batch at a time derives, until it commits.
            self.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": DERIVED_ROWS_LOCK})
        for copied in COPIED_COLUMNS:
            keys = set(self.rows.get(copied.target, ())) | set(self.rows.get(copied.source, ()))
            if keys:
                self.session.execute(copy_column(copied, sorted(keys)))
        tranches = self.rows.get(TrancheRow)
        if tranches:
            tally_payments(self.session, self._grant_ids(TrancheRow))
        if postgres:
            standing_changed = sorted({grant for model in standing.CHANGED_BY for grant in self._grant_ids(model)})
            if standing_changed:
                standing.keep(self.session, standing_changed)
        self.rows.clear()

    def _grant_ids(self, model) -> list:
        at = self.columns(model).index("grant_id")
        return sorted({row[at] for row in self.rows.get(model, {}).values()})


def copy_column(copied: CopiedColumn, keys: list):
    """UPDATE target SET column = the source's value, for `keys` whose target row has none yet and whose source row
    is there (the first value stays; nothing is written for a key still waiting for its other event)."""
    target, source = copied.target.__table__, copied.source.__table__
    same_key = source.c[copied.key] == target.c[copied.key]
    return (
        update(target)
        .where(target.c[copied.key].in_(keys), target.c[copied.column].is_(None), exists().where(same_key))
        .values({copied.column: select(source.c[copied.source_column]).where(same_key).scalar_subquery()})
    )


def tally_payments(session, grant_ids: list | None = None):
    """grant_payments of `grant_ids` computed again from their tranche_facts: one row per grant with tranches (the
    sum, their number, their distinct numbers). For the grants of a batch (FactWriter.flush: each has tranches, the
    batch's own at least) an upsert that writes only the rows whose values changed: on PostgreSQL the table keeps
    free room on its pages (fillfactor, migration 0011) and none of the columns updated is indexed, so the updates
    are HOT and the old versions are pruned on the page by the next reader, without VACUUM (a DELETE + INSERT left a
    dead row per grant per batch until one ran). None (every grant): the table emptied and filled again. The same
    SQL on PostgreSQL and SQLite. On PostgreSQL FactWriter.flush holds DERIVED_ROWS_LOCK until its commit: no other
    batch writes the rows meanwhile, and every tranche committed before is counted. SQLite has one writer at a
    time."""
    tranches, payments = TrancheRow.__table__, GrantPaymentsRow.__table__
    columns = ["grant_id", "paid", "tranches", "tranche_numbers"]
    tally = select(
        tranches.c.grant_id,
        func.sum(tranches.c.amount),
        func.count(),
        func.count(distinct(tranches.c.tranche_number)),
    ).group_by(tranches.c.grant_id)
    if grant_ids is None:
        session.execute(delete(payments))
        session.execute(insert(payments).from_select(columns, tally))
        return
    dialect = session.get_bind().dialect.name
    upsert = (pg_insert if dialect == "postgresql" else sqlite_insert)(payments).from_select(
        columns, tally.where(tranches.c.grant_id.in_(grant_ids))
    )
    new = upsert.excluded
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=[payments.c.grant_id],
            set_={"paid": new.paid, "tranches": new.tranches, "tranche_numbers": new.tranche_numbers},
            where=or_(
                payments.c.paid != new.paid,
                payments.c.tranches != new.tranches,
                payments.c.tranche_numbers != new.tranche_numbers,
            ),
        )
    )
