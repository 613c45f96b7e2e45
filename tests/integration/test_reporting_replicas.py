"""Two reporting replicas consume the same queue: their batches commit concurrently. The rows the fact writer derives
from other facts (a grant's contract date, a grant's payments row) must come out as if the batches had run one
after the other, whichever commits first."""

import threading
import time
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.reporting.projections import project
from services.reporting.repository import FactWriter, archive_many
from tests.support.archive_events import _award, _contract, _payment, at, event
from tests.support.reporting_db import SessionUow, reporting_database

BUDGET = {"human_resources": "60000.00", "other": "40000.00"}


@pytest.fixture
def engine():
    with reporting_database("replicas") as engine:
        yield engine


def _project(session: Session, events):
    """A batch as the consumer applies it, up to its commit."""
    session.execute(text("SET LOCAL lock_timeout = '60s'"))
    archive_many(SessionUow(session), events)
    writer = FactWriter(session)
    for evt in events:
        project(SessionUow(session), evt, writer)
    writer.flush()


def _paid(payment: str, grant: str, number: int, day: str):
    data = {**_payment(payment, grant, number, "1000.00"), "value_date": date.fromisoformat(day), "bank_reference": "B"}
    return event("tranche_paid", data, at(day))


def _concurrently(engine, first, second):
    """`first` is applied and left uncommitted while `second` is applied in another transaction; `first` commits once
    `second` has finished or waits for it, then `second` commits. Returns the error `second` met, if any."""
    outcome: dict = {}

    def replica():
        try:
            with Session(engine) as session:
                _project(session, second)
                session.commit()
        except Exception as exc:  # reported to the test
            outcome["error"] = exc

    with Session(engine) as session:
        _project(session, first)
        other = threading.Thread(target=replica)
        other.start()
        deadline = time.monotonic() + 10
        while other.is_alive() and not _waiting_for_a_lock(engine) and time.monotonic() < deadline:
            time.sleep(0.02)
        session.commit()
    other.join(60)
    assert not other.is_alive(), "the second batch is still stuck after the first committed"
    return outcome.get("error")


def _waiting_for_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
        )


def test_an_award_and_its_contract_in_two_replicas_batches_at_once_give_the_grant_its_contract_date(engine):
    award = event("grant_awarded", _award("G1", "100000.00", BUDGET), at("2009-06-15"))
    contract = event("contract_signed", _contract("G1", "100000.00", at("2009-07-01")), at("2009-07-01"))
    assert _concurrently(engine, [award], [contract]) is None
    with engine.connect() as conn:
        signed_on = conn.execute(text("SELECT contract_signed_on FROM grant_facts WHERE grant_id = 'G1'")).scalar()
    assert signed_on == date(2009, 7, 1)


def test_tranches_of_one_grant_in_two_replicas_batches_at_once_are_all_counted(engine):
    # the award first, committed: both batches then pay the same grant
    with Session(engine) as session:
        _project(session, [event("grant_awarded", _award("G2", "100000.00", BUDGET), at("2009-06-15"))])
        session.commit()
    error = _concurrently(engine, [_paid("PAY1", "G2", 1, "2009-08-01")], [_paid("PAY2", "G2", 2, "2009-09-01")])
    assert error is None, f"the second batch failed: {error!r}"
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT paid, tranches, tranche_numbers FROM grant_payments WHERE grant_id = 'G2'")
        ).one()
    assert tuple(row) == (200000, 2, 2)
