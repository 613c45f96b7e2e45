"""The set-based rebuild on PostgreSQL (services/reporting/rebuild_sql.py) gives the facts the Python replay gives
(projections.rebuild, the reference and SQLite's path), row for row, over an archive covering every projected event
type with keys given twice and events out of order; events archived while it builds are projected once, onto the
new tables, and were not held back; the tables keep their indexes and constraints under their own names."""

import threading
from datetime import date, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from services.reporting import projections, rebuild_sql
from services.reporting.models import PROJECTION_TABLES, ArchivedEvent
from services.reporting.projections import PROJECTORS
from tests.support.archive_events import _payment, archive_events, at, event, late_events
from tests.support.reporting_db import SessionUow, apply_live, reporting_database


@pytest.fixture
def engine():
    with reporting_database("rebuild_sql") as engine:
        yield engine


def _value(value):
    if isinstance(value, dict):  # a JSON budget: its headings' order counts too
        return tuple(value.items())
    return value


def _facts(engine) -> dict:
    with engine.connect() as conn:
        return {
            model.__tablename__: sorted(
                (tuple(_value(v) for v in row) for row in conn.execute(text(f"SELECT * FROM {model.__tablename__}"))),
                key=repr,
            )
            for model in PROJECTION_TABLES
        }


def _schema(engine) -> list:
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                text(
                    "SELECT c.relname, i.relname, pg_get_indexdef(x.indexrelid), "
                    "(SELECT string_agg(conname || ':' || contype::text, ',' ORDER BY conname) FROM pg_constraint "
                    " WHERE conindid = x.indexrelid) "
                    "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                )
            ).all()
        )


def _rebuild_in_sql(engine) -> int:
    with Session(engine) as session:
        replayed = rebuild_sql.rebuild(session)
        session.commit()
    return replayed


def _replay_in_python(engine) -> int:
    with Session(engine) as session:
        replayed = projections.rebuild(SessionUow(session))
        session.commit()
    return replayed


def test_every_projected_event_type_is_in_the_archive():
    assert set(PROJECTORS) <= {e.event_type for e in archive_events()}


def test_the_sql_rebuild_gives_the_python_replay_row_for_row(engine):
    apply_live(engine, archive_events())
    live = _facts(engine)
    schema = _schema(engine)
    assert all(live.values()), [name for name, rows in live.items() if not rows]

    assert _rebuild_in_sql(engine) == len(archive_events())
    in_sql = _facts(engine)
    assert _replay_in_python(engine) == len(archive_events())
    assert in_sql == _facts(engine) == live
    assert _schema(engine) == schema  # indexes and constraints as the migrations named them
    with engine.connect() as conn:  # no table of the build left behind
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE '%__rebuild%'")).scalar() == 0

    # the first row of a key wins, across events and within one
    grants = {row[0]: row for row in in_sql["grant_facts"]}
    assert grants["G1"][10] == 10_000_000 and grants["G1"][11][0] == ("travel", "333.33")
    lines = {(r[0], r[1], r[2]): r for r in in_sql["budget_line_facts"]}
    assert lines["G1", "award", "indirect_costs"][3:] == (2, 500, 500)  # added by the second award
    assert ("P2", "main") in {(r[1], r[4]) for r in in_sql["proposal_outcomes"] if r[3] == "ranked"}
    # the day is the one where the event happened, not UTC's
    assert {r[0]: r[8] for r in in_sql["proposal_facts"]}["P1"] == date(2009, 3, 1)
    assert {r[0]: r[5] for r in in_sql["contract_facts"]}["G1"] == date(2009, 6, 30)
    # the first contract's date on the grant's row, whether the contract came after its award or before it
    assert {g: row[15] for g, row in grants.items()} == {"G1": date(2009, 6, 30), "G2": None, "G3": date(2009, 6, 17)}
    # the grant's payments row: the first tranche_paid of each payment (one before the award, one given twice)
    assert in_sql["grant_payments"] == [("G1", 7_000_000, 2, 2)]


def test_the_rebuilt_tables_have_their_statistics_when_they_are_swapped_in(engine):
    """The builders analyse the new tables before the swap, so the first reports after it are planned with
    statistics (pg_class's row estimate, pg_statistic's columns) and reporting's upkeep has nothing left to do."""
    apply_live(engine, archive_events())
    _rebuild_in_sql(engine)
    with engine.connect() as conn:
        for model in PROJECTION_TABLES:
            table = model.__tablename__
            rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            # -1: never analysed nor vacuumed (PostgreSQL 14+)
            estimate = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}).scalar()
            assert estimate == rows, table
            columns = conn.execute(
                text("SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = :t"), {"t": table}
            ).scalar()
            assert columns == (len(model.__table__.columns) if rows else 0), table


def test_events_archived_during_the_build_are_projected_once_and_not_held_back(engine):
    apply_live(engine, archive_events())
    holder = engine.connect()  # holds the rebuild's advisory lock: it stops right after taking its snapshot
    holder.execute(text("SELECT pg_advisory_lock(:id)"), {"id": rebuild_sql.REBUILD_LOCK})
    outcome: dict = {}
    rebuilding = threading.Thread(target=_rebuild_into, args=(engine, outcome))
    rebuilding.start()
    try:
        _wait_for_the_rebuild_to_wait(engine)
        late = late_events()
        apply_live(engine, late)  # archived and projected live: the archive is not locked meanwhile
    finally:
        holder.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": rebuild_sql.REBUILD_LOCK})
        holder.close()
    rebuilding.join()
    assert "error" not in outcome, outcome.get("error")

    with engine.connect() as conn:
        archived = conn.execute(text(f"SELECT count(*) FROM {ArchivedEvent.__tablename__}")).scalar()
    assert outcome["replayed"] == archived == len(archive_events()) + len(late)
    in_sql = _facts(engine)
    assert _replay_in_python(engine) == archived
    assert in_sql == _facts(engine)
    tranches = {r[0]: r for r in in_sql["tranche_facts"]}
    assert tranches["PAY9"][3] == 777 and tranches["PAY1"][5] == "B1"  # the late one projected; the first stays
    # G4 awarded after its contract, in a later batch: the contract's date on its row
    assert {r[0]: r[15] for r in in_sql["grant_facts"]}["G4"] == date(2011, 8, 1)

    # G1's payments row: the late tranche counted, the payment given again not
    assert in_sql["grant_payments"] == [("G1", 7_000_777, 3, 3)]

    apply_live(engine, late_events()[1:2])  # PAY1 paid again after the swap: the new tables keep the first row
    assert _facts(engine) == in_sql


def test_a_report_reading_the_old_tables_holds_live_events_back_for_seconds_only(engine):
    apply_live(engine, archive_events())
    reader = engine.connect()  # a report under way: its transaction reads the old tables until it ends
    reader.execute(text("SELECT count(*) FROM grant_facts"))
    outcome: dict = {}
    rebuilding = threading.Thread(target=_rebuild_into, args=(engine, outcome))
    rebuilding.start()
    try:
        _wait_until(
            engine,
            "the rebuild waits for the report to swap the tables",
            "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND NOT granted "
            "AND relation = 'grant_facts'::regclass",
        )
        late = late_events()
        apply_live(engine, late)  # between two attempts: the report still reads, the archive is free
    finally:
        reader.rollback()
        reader.close()
    rebuilding.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["replayed"] == len(archive_events()) + len(late)
    in_sql = _facts(engine)
    assert _replay_in_python(engine) == outcome["replayed"]
    assert in_sql == _facts(engine)
    assert "PAY9" in {r[0] for r in in_sql["tranche_facts"]}


def _rebuild_into(engine, outcome: dict):
    try:
        outcome["replayed"] = _rebuild_in_sql(engine)
    except Exception as exc:  # reported by the test's assertion
        outcome["error"] = exc


def _wait_until(engine, what: str, count_sql: str):
    deadline = datetime.now().timestamp() + 60
    with engine.connect() as conn:
        while datetime.now().timestamp() < deadline:
            if conn.execute(text(count_sql)).scalar():
                return
            conn.rollback()
            threading.Event().wait(0.05)
    raise AssertionError(f"never: {what}")


def _wait_for_the_rebuild_to_wait(engine):
    """Until the rebuild has committed its snapshot and waits for the advisory lock the test holds."""
    _wait_until(
        engine,
        "the rebuild reached its build phase",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())",
    )


def test_payments_rows_of_unknown_grants_and_a_number_paid_twice_are_rebuilt_alike(engine):
    """A grant not known here, paid twice under the same tranche number in two batches, and a payment given again
    in the same batch: the writer's rows, the SQL rebuild's and the replay's agree."""
    apply_live(engine, archive_events())

    def paid(payment: str, number: int, amount: str, day: str):
        data = {**_payment(payment, "G9", number, amount), "value_date": date.fromisoformat(day), "bank_reference": "B"}
        return event("tranche_paid", data, at(day))

    apply_live(engine, [paid("PAY91", 1, "10.00", "2011-01-01"), paid("PAY91", 1, "99.00", "2011-01-02")])
    apply_live(engine, [paid("PAY92", 1, "5.00", "2011-02-01")])
    live = _facts(engine)
    assert ("G9", 1500, 2, 1) in live["grant_payments"]
    _rebuild_in_sql(engine)
    assert _facts(engine) == live
    _replay_in_python(engine)
    assert _facts(engine) == live


def _build_tables(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT relname FROM pg_class WHERE relname LIKE '%\\_\\_rebuild%'")).scalars().all()


def test_a_failed_build_leaves_the_live_facts_and_no_new_table(engine):
    """The new tables are filled on several connections, each committing its own: when one fails, the others' tables
    are dropped and the live facts stay as they were."""
    apply_live(engine, archive_events())
    live = _facts(engine)
    with engine.begin() as conn:  # a payment whose amount no statement can read (the live path refuses such events)
        conn.execute(
            text(
                "UPDATE event_archive SET body = jsonb_set(body::jsonb, '{data,amount_eur}', '\"not a number\"')::json"
                " WHERE seq = (SELECT max(seq) FROM event_archive WHERE event_type = 'tranche_paid')"
            )
        )
    with pytest.raises(DataError):
        _rebuild_in_sql(engine)
    assert _facts(engine) == live
    assert _build_tables(engine) == []


def test_tables_left_by_an_interrupted_build_are_replaced(engine):
    """A build that died after some of its connections committed left tables under the build's names: the next
    rebuild drops them instead of failing on them."""
    apply_live(engine, archive_events())
    live = _facts(engine)
    with engine.begin() as conn:
        conn.execute(text('CREATE TABLE "tranche_facts__rebuild" (leftover int)'))
        conn.execute(text('CREATE TABLE "grant_facts__rebuild" (LIKE "grant_facts")'))
    assert _rebuild_in_sql(engine) == len(archive_events())
    assert _facts(engine) == live
    assert _build_tables(engine) == []


def test_statements_sharing_staged_events_are_built_on_one_connection(engine):
    """A connection's temporary tables are its own: each staged source is read by the statements of one builder."""
    apply_live(engine, archive_events())
    with Session(engine) as session:
        groups = rebuild_sql._groups(session, 10**9)
    assert sorted(f.model.__tablename__ for g in groups for f in g) == sorted(
        f.model.__tablename__ for f in rebuild_sql.FACTS
    )
    assert 1 < len(groups) <= rebuild_sql.BUILDERS
    readers: dict[str, set[int]] = {}
    for n, group in enumerate(groups):
        for fact in group:
            for source in rebuild_sql._staged_sources(fact):
                readers.setdefault(source, set()).add(n)
    assert readers and all(len(builders) == 1 for builders in readers.values()), readers
