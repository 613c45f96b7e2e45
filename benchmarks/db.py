"""PostgreSQL connections for the bench itself (the services keep their own pools)."""

import time

import psycopg2


def connect(dsn: str, autocommit: bool = False, wait: float = 60.0):
    """Connect, waiting while the shared server is at max_connections (other test runs come and go)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = psycopg2.connect(dsn)
            conn.autocommit = autocommit
            return conn
        except psycopg2.OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)
