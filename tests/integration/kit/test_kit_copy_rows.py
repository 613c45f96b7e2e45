"""copy_rows on a real database: COPY's text format carries every value as a multi-row INSERT would (NULLs,
empty strings, backslashes, tabs, newlines, money, zones, JSON), a JSON value received as text is stored as that
text, a key already there fails the statement, and SQLite takes the INSERT path with the same result."""

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Column, Date, Integer, LargeBinary, MetaData, String, Table, select, text
from sqlalchemy.exc import IntegrityError

from services.common.storage.db import JsonText, copy_rows, insert_rows
from services.common.storage.types import Money, UtcDateTime


pytestmark = pytest.mark.integration

samples = MetaData()
sample = Table(
    "copy_sample",
    samples,
    Column("id", Integer, primary_key=True),
    Column("label", String(200)),
    Column("amount", Money),
    Column("day", Date),
    Column("at", UtcDateTime),
    Column("doc", JSON),
)
COLUMNS = ("id", "label", "amount", "day", "at", "doc")
EAST = timezone(timedelta(hours=5, minutes=30))

ROWS = [
    (1, "plain", Decimal("60000.00"), date(2009, 10, 6), datetime(2009, 10, 6, 12, 30, tzinfo=EAST), {"a": 1}),
    (2, "", Decimal("0.01"), None, None, None),
    (3, None, None, date(2010, 1, 1), datetime(2010, 1, 1, tzinfo=timezone.utc), ["x", None]),
    (4, "tab\there\nnew line\r\\N back\\slash 'quote' \"double\" é", Decimal("-5.10"), None, None, {"k": "a\\b\tc"}),
]


def _read(core) -> list[tuple]:
    with core.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(sample).order_by(sample.c.id))]


def _stored_text(core, key: int) -> str:
    with core.engine.connect() as conn:
        return conn.execute(
            text("SELECT CAST(doc AS TEXT) FROM copy_sample WHERE id = :k").bindparams(k=key)
        ).scalar_one()


def test_copied_rows_read_back_as_inserted_rows_do(databases):
    copied, inserted = databases("reporting"), databases("grants")
    for core in (copied, inserted):
        samples.create_all(core.engine)
    uow = copied.unit_of_work()
    copy_rows(uow.session, sample, ROWS, columns=COLUMNS)
    uow.commit()
    uow = inserted.unit_of_work()
    insert_rows(uow.session, sample, ROWS, columns=COLUMNS)
    uow.commit()
    assert _read(copied) == _read(inserted)
    assert _read(copied)[3][1] == ROWS[3][1] and _read(copied)[1][1] == "" and _read(copied)[2][1] is None


def test_a_json_value_received_as_text_is_stored_as_that_text(databases):
    core = databases("reporting")
    samples.create_all(core.engine)
    received = '{"b": 2,  "a": "line\\nbreak \\u00e9",\n "n": 1.50}'
    uow = core.unit_of_work()
    copy_rows(uow.session, sample, [(1, "x", None, None, None, JsonText(received))], columns=COLUMNS)
    uow.commit()
    stored = _stored_text(core, 1)
    if core.engine.dialect.name == "postgresql":
        assert stored == received  # the json type keeps the text as it came
    assert (json.loads(stored) if isinstance(stored, str) else stored) == json.loads(received)


def test_a_key_already_there_fails_the_copy(databases):
    core = databases("reporting")
    samples.create_all(core.engine)
    uow = core.unit_of_work()
    copy_rows(uow.session, sample, ROWS[:1], columns=COLUMNS)
    uow.commit()
    uow = core.unit_of_work()
    with pytest.raises(IntegrityError):
        copy_rows(uow.session, sample, ROWS[:2], columns=COLUMNS)
        uow.commit()
    uow.rollback()
    assert [r[0] for r in _read(core)] == [1]


def test_with_conflicts_ignored_the_first_row_of_a_key_wins_in_the_table_as_within_the_rows(databases):
    core = databases("reporting")
    samples.create_all(core.engine)
    uow = core.unit_of_work()  # the temporary table made in a transaction that rolls back is made again
    copy_rows(uow.session, sample, [(1, "lost", None, None, None, None)], columns=COLUMNS, ignore_conflicts=True)
    uow.rollback()
    uow = core.unit_of_work()
    copy_rows(uow.session, sample, [ROWS[0], (5, "five", None, None, None, None)], columns=COLUMNS)
    uow.commit()
    uow = core.unit_of_work()
    later = [(2, "first"), (1, "not over 1"), (2, "second"), (3, "three")]
    copy_rows(
        uow.session, sample, [(*r, None, None, None, None) for r in later], columns=COLUMNS, ignore_conflicts=True
    )
    # a second write in the same transaction: the first one's rows are not written again
    copy_rows(uow.session, sample, [(4, "four", None, None, None, None)], columns=COLUMNS, ignore_conflicts=True)
    uow.commit()
    assert [(r[0], r[1]) for r in _read(core)] == [(1, "plain"), (2, "first"), (3, "three"), (4, "four"), (5, "five")]
    uow = core.unit_of_work()  # the next transaction starts with an empty temporary table
    copy_rows(uow.session, sample, [(6, "six", None, None, None, None)], columns=COLUMNS, ignore_conflicts=True)
    uow.commit()
    assert len(_read(core)) == 6


def test_copy_works_on_green_connections_and_leaves_them_green(pg_databases):
    """The services run psycopg2 with eventlet's wait callback, which refuses COPY: it is lifted for the COPY."""
    from eventlet.support import psycopg2_patcher
    from psycopg2.extensions import get_wait_callback, set_wait_callback

    core = pg_databases("reporting")
    samples.create_all(core.engine)
    before = get_wait_callback()
    set_wait_callback(psycopg2_patcher.eventlet_wait_callback)
    try:
        green = get_wait_callback()
        uow = core.unit_of_work()
        copy_rows(uow.session, sample, ROWS[:2], columns=COLUMNS)
        copy_rows(uow.session, sample, ROWS[2:], columns=COLUMNS, ignore_conflicts=True)
        uow.commit()
        assert get_wait_callback() is green
    finally:
        set_wait_callback(before)
    assert [r[0] for r in _read(core)] == [1, 2, 3, 4]


def test_a_value_copy_has_no_text_for_goes_by_insert(databases):
    core = databases("reporting")
    blobs = Table("copy_blobs", MetaData(), Column("id", Integer, primary_key=True), Column("data", LargeBinary))
    blobs.create(core.engine)
    uow = core.unit_of_work()
    copy_rows(uow.session, blobs, [(1, b"\x00\x01'\\"), (2, None)], columns=("id", "data"))
    uow.commit()
    with core.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(select(blobs).order_by(blobs.c.id))] == [(1, b"\x00\x01'\\"), (2, None)]
