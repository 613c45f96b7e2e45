"""A fresh PostgreSQL database with reporting's tables, for the tests that compare its SQL with the Python model."""

from __future__ import annotations

import contextlib

from sqlalchemy import create_engine

from services.reporting.models import Base
from tests.support.infra import Postgres, run_id


class SessionUow:
    """The part of a unit of work the reporting commands and projectors use: a session the test commits."""

    def __init__(self, session):
        self.session = session


@contextlib.contextmanager
def reporting_database(purpose: str):
    """An engine on a database of its own (named after `purpose` and the run), dropped afterwards."""
    name = f"jmdi_{purpose}_{run_id()}"
    url = Postgres().create_database(name)
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        Postgres().drop_database(name)
