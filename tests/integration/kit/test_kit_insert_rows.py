"""insert_rows on a real database: the multi-row INSERT it writes itself carries every value as SQLAlchemy's own
INSERT does (NULLs, empty strings, quotes, backslashes, tabs, newlines, money, zones, JSON, bytes), a JSON value
received as text is stored as that text, a key already there fails the statement or is skipped, and SQLite takes
SQLAlchemy's path with the same result."""

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Column, Date, Integer, LargeBinary, MetaData, Numeric, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError

from services.common.messaging.batch import apply_batch
from services.common.messaging.inbox import RetryPolicy
from services.common.storage.db import JsonText, insert_rows
from services.common.storage.types import Money, UtcDateTime

from .conftest import tranche_paid

pytestmark = pytest.mark.integration

samples = MetaData()
sample = Table(
    "insert_sample",
    samples,
    Column("id", Integer, primary_key=True),
    Column("label", String(200)),
    Column("amount", Money),
    Column("share", Numeric(6, 4)),
    Column("day", Date),
    Column("at", UtcDateTime),
    Column("doc", JSON),
)
COLUMNS = ("id", "label", "amount", "share", "day", "at", "doc")
EAST = timezone(timedelta(hours=5, minutes=30))
AWKWARD = "it's \\'; DROP TABLE insert_sample; -- tab\there\nnew line\r\\N back\\slash \"double\" é €"

ROWS = [
    (
        1,
        "plain",
        Decimal("60000.00"),
        Decimal("0.9"),
        date(2009, 10, 6),
        datetime(2009, 10, 6, 12, 30, tzinfo=EAST),
        {"a": 1},
    ),
    (2, "", Decimal("0.01"), None, None, None, None),
    (3, None, None, Decimal("-1.2345"), date(2010, 1, 1), datetime(2010, 1, 1, tzinfo=timezone.utc), ["x", None]),
    (4, AWKWARD, Decimal("-5.10"), None, None, None, {"k": AWKWARD}),
    (5, "'", None, None, None, None, "just a string"),
]


def _read(core, table=sample) -> list[tuple]:
    with core.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]


def test_rows_read_back_as_sqlalchemys_own_insert_writes_them(databases):
    ours, reference = databases("reporting"), databases("grants")
    for core in (ours, reference):
        samples.create_all(core.engine)
    uow = ours.unit_of_work()
    insert_rows(uow.session, sample, ROWS, columns=COLUMNS)
    uow.commit()
    with reference.engine.begin() as conn:
        conn.execute(insert(sample), [dict(zip(COLUMNS, row)) for row in ROWS])
    assert _read(ours) == _read(reference)
    assert _read(ours)[3][1] == AWKWARD and _read(ours)[1][1] == "" and _read(ours)[2][1] is None


def test_a_json_value_received_as_text_is_stored_as_that_text(databases):
    core = databases("reporting")
    samples.create_all(core.engine)
    received = '{"b": 2,  "a": "line\\nbreak \\u00e9 it\'s",\n "n": 1.50}'
    uow = core.unit_of_work()
    insert_rows(uow.session, sample, [(1, "x", None, None, None, None, JsonText(received))], columns=COLUMNS)
    uow.commit()
    with core.engine.connect() as conn:
        stored = conn.execute(text("SELECT CAST(doc AS TEXT) FROM insert_sample WHERE id = 1")).scalar_one()
    if core.engine.dialect.name == "postgresql":
        assert stored == received  # the json type keeps the text as it came
    assert json.loads(stored) == json.loads(received)


def test_a_nul_character_is_refused_not_cut(pg_databases):
    """PostgreSQL keeps no NUL in text and libpq would cut the statement there (SQLite stores one as it is)."""
    core = pg_databases("reporting")
    samples.create_all(core.engine)
    uow = core.unit_of_work()
    with pytest.raises(ValueError, match="NUL"):
        insert_rows(uow.session, sample, [(1, "a\x00') --", None, None, None, None, None)], columns=COLUMNS)
    uow.rollback()
    assert _read(core) == []


def test_values_of_other_types_are_adapted_by_the_driver(databases):
    core = databases("reporting")
    blobs = Table("insert_blobs", MetaData(), Column("id", Integer, primary_key=True), Column("data", LargeBinary))
    blobs.create(core.engine)
    uow = core.unit_of_work()
    insert_rows(uow.session, blobs, [(1, b"\x00\x01'\\"), (2, None)], columns=("id", "data"))
    uow.commit()
    assert _read(core, blobs) == [(1, b"\x00\x01'\\"), (2, None)]


def test_a_key_already_there_fails_the_insert_or_is_skipped(databases):
    core = databases("reporting")
    samples.create_all(core.engine)
    uow = core.unit_of_work()
    insert_rows(uow.session, sample, ROWS[:1], columns=COLUMNS)
    uow.commit()
    uow = core.unit_of_work()
    with pytest.raises(IntegrityError):
        insert_rows(uow.session, sample, ROWS[:2], columns=COLUMNS)
        uow.commit()
    uow.rollback()
    assert [r[0] for r in _read(core)] == [1]
    uow = core.unit_of_work()
    later = [(2, "first"), (1, "not over 1"), (2, "second"), (3, "three")]
    insert_rows(
        uow.session, sample, [(*r, None, None, None, None, None) for r in later], columns=COLUMNS, ignore_conflicts=True
    )
    uow.commit()
    assert [(r[0], r[1]) for r in _read(core)] == [(1, "plain"), (2, "first"), (3, "three")]


def test_a_batch_keeps_each_events_received_text(databases):
    core = databases("reporting")
    seen = []
    events = [tranche_paid(n) for n in range(3)]
    texts: list = [json.dumps(e.body, indent=1) for e in events]
    texts[1] = None  # a body whose text was not kept

    def apply(batch, uow):
        seen.extend((e.event_id, e.text) for e in batch)

    outcome = apply_batch(core.unit_of_work(), "reporting", [e.body for e in events], apply, RetryPolicy(1, 0), texts)
    assert outcome["applied"] == 3
    assert seen == [(e.event_id, t) for e, t in zip(events, texts)]
