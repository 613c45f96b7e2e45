"""Reporting's fact tables' planner statistics, kept by reporting itself: the budget report's plan depends on them,
and a server may run without autovacuum (the bench's does). A timer looks at what the live batches changed since
each table's last ANALYZE (PostgreSQL's own count, every replica's batches) and analyses the tables where that is
more than a fraction of the table, outside any batch's transaction, in one replica per tick (a lease). Nothing to
do on SQLite (`make run`)."""

import logging
import time

from prometheus_client import Counter
from sqlalchemy import text

from .models import PROJECTION_TABLES

log = logging.getLogger(__name__)

ANALYSES = Counter("jmdi_reporting_analyses_total", "Fact tables reporting analysed after live batches", ["table"])

# a table is analysed once the rows inserted, updated or deleted since its last ANALYZE pass this (as autovacuum's
# analyze threshold: base + fraction of the table's rows)
ANALYSE_FRACTION = 0.05
ANALYSE_BASE_ROWS = 1000
ANALYSE_MIN_INTERVAL_S = 20.0  # a table is analysed at most this often by one replica

FACT_TABLES = tuple(model.__tablename__ for model in PROJECTION_TABLES)

_analysed_at: dict[str, float] = {}  # table -> time.monotonic() of this process's last ANALYZE of it

_CHANGED = text(
    """SELECT s.relname, s.n_mod_since_analyze, GREATEST(c.reltuples, 0)
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables)
    ORDER BY s.relname"""
)


def due(changed: int, rows: float, fraction: float = ANALYSE_FRACTION, base: int = ANALYSE_BASE_ROWS) -> bool:
    """Whether `changed` rows since the last ANALYZE of a table of about `rows` rows make its statistics stale."""
    return changed > base + fraction * rows


def stale_tables(session, tables=FACT_TABLES) -> list[tuple[str, int, int]]:
    """(table, rows changed since its last ANALYZE, rows it had then) of the tables due for an ANALYZE."""
    session.execute(text("SELECT pg_stat_clear_snapshot()"))  # the server's counts now, not as first read
    rows = session.execute(_CHANGED, {"tables": list(tables)}).all()
    return [(name, int(changed), int(had)) for name, changed, had in rows if due(changed, had)]


def analyse_stale(session, tables=FACT_TABLES, now=None) -> list[str]:
    """ANALYZE each fact table whose statistics the batches since its last one made stale (not more often than
    ANALYSE_MIN_INTERVAL_S per table); returns the tables analysed. PostgreSQL only: nothing on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    now = time.monotonic() if now is None else now
    analysed = []
    for table, changed, had in stale_tables(session, tables):
        if now - _analysed_at.get(table, float("-inf")) < ANALYSE_MIN_INTERVAL_S:
            continue
        started = time.perf_counter()
        session.execute(text(f'ANALYZE "{table}"'))
        _analysed_at[table] = now
        ANALYSES.labels(table).inc()
        log.info(
            "analysed %s: %d rows changed since its last analyse (of %d), %.3f s",
            table,
            changed,
            had,
            time.perf_counter() - started,
        )
        analysed.append(table)
    return analysed
