"""A fresh PostgreSQL database with reporting's tables, for the tests that compare its SQL with the Python model."""

from __future__ import annotations

import contextlib

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

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


def apply_live(engine, events):
    """What the batch consumer does with new events: archive and project them in one transaction (failing after a
    minute stuck on a lock rather than hanging the test)."""
    from services.reporting.projections import project
    from services.reporting.repository import FactWriter, archive_many

    with Session(engine) as session:
        session.execute(text("SET LOCAL lock_timeout = '60s'"))
        uow = SessionUow(session)
        archive_many(uow, events)
        writer = FactWriter(session)
        for evt in events:
            project(uow, evt, writer)
        writer.flush()
        session.commit()
