"""Reporting on a PostgreSQL server where nobody vacuums for it: each grant's payments row is updated in place
(an upsert, only where its values changed, on pages with room for HOT updates), and the fact tables are analysed
by reporting itself once the batches since their last ANALYZE changed more than a fraction of them."""

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from services.reporting import rebuild_sql, upkeep
from services.reporting.repository import tally_payments
from tests.support.reporting_db import reporting_database
from tests.support.tranche_batches import write_tranches


@pytest.fixture
def engine():
    with reporting_database("upkeep") as engine:
        yield engine


def _tranches(session, tranches):
    write_tranches(session, tranches)
    session.commit()


def _rows(session):
    return session.execute(
        text("SELECT grant_id, paid, tranches, tranche_numbers FROM grant_payments ORDER BY 1")
    ).all()


def _versions(session) -> dict:
    return dict(session.execute(text("SELECT grant_id, xmin::text FROM grant_payments")).all())


def test_a_payments_row_is_written_again_only_where_its_values_change(engine):
    with Session(engine) as session:
        _tranches(session, [("P1", "G1", 1, "10.00"), ("P2", "G2", 1, "3.00")])
        before = _versions(session)
        _tranches(session, [("P1", "G1", 1, "10.00"), ("P3", "G2", 2, "1.00")])  # G1's payment given again
        after = _versions(session)
        assert after["G1"] == before["G1"]
        assert after["G2"] != before["G2"]
        kept = _rows(session)
        tally_payments(session)  # every grant, from scratch
        assert kept == _rows(session) == [("G1", 1000, 1, 1), ("G2", 400, 2, 2)]


def test_the_payments_table_keeps_room_for_its_updates_across_a_rebuild(engine):
    def options(session):
        return session.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'grant_payments'")).scalar()

    with Session(engine) as session:
        assert options(session) == ["fillfactor=70"]
        rebuild_sql.rebuild(session)
        session.commit()
        assert options(session) == ["fillfactor=70"]


def _changed_since_analyse(engine, table: str) -> int:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return conn.execute(
            text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}
        ).scalar()


def _batch_in_its_own_connection(url, first: int, count: int):
    """A batch written and committed by a connection that then closes: the server counts its rows at once."""
    writer_engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(writer_engine) as session:
            _tranches(session, [(f"P{i}", f"G{i % 500}", i, "1.00") for i in range(first, first + count)])
    finally:
        writer_engine.dispose()


def _wait_for_count(engine, table: str, at_least: int):
    deadline = time.monotonic() + 15
    while _changed_since_analyse(engine, table) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _changed_since_analyse(engine, table) >= at_least


def test_the_fact_tables_are_analysed_after_a_large_batch_and_not_after_a_small_one(engine):
    url = engine.url.render_as_string(hide_password=False)
    upkeep._analysed_at.clear()
    _batch_in_its_own_connection(url, 0, 5000)
    with Session(engine) as session:
        session.execute(text("ANALYZE tranche_facts"))
        session.execute(text("ANALYZE grant_payments"))
        session.commit()
    assert _changed_since_analyse(engine, "tranche_facts") == 0

    _batch_in_its_own_connection(url, 5000, 50)  # 1 % of the table
    _wait_for_count(engine, "tranche_facts", 50)
    with Session(engine) as session:
        assert upkeep.analyse_stale(session, now=1000.0) == []
        session.commit()
    assert _changed_since_analyse(engine, "tranche_facts") >= 50

    _batch_in_its_own_connection(url, 5050, 2000)  # 40 % of the table
    _wait_for_count(engine, "tranche_facts", 2050)
    with Session(engine) as session:
        assert "tranche_facts" in upkeep.analyse_stale(session, now=1000.0)
        session.commit()
    assert _changed_since_analyse(engine, "tranche_facts") == 0
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        estimated = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'tranche_facts'")).scalar()
    assert estimated == 7050

    _batch_in_its_own_connection(url, 7050, 3000)  # stale again, but analysed moments ago: not yet
    _wait_for_count(engine, "tranche_facts", 3000)
    with Session(engine) as session:
        assert "tranche_facts" not in upkeep.analyse_stale(session, now=1000.0 + upkeep.ANALYSE_MIN_INTERVAL_S / 2)
        assert "tranche_facts" in upkeep.analyse_stale(session, now=1000.0 + upkeep.ANALYSE_MIN_INTERVAL_S)
        session.commit()


def test_nothing_is_analysed_on_sqlite():
    from services.reporting.models import Base

    sqlite = create_engine("sqlite://")
    Base.metadata.create_all(sqlite)
    with Session(sqlite) as session:
        _tranches(session, [(f"P{i}", "G1", i, "1.00") for i in range(3000)])
        assert upkeep.analyse_stale(session) == []
