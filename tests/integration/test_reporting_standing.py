"""Each grant's standing row (grant_standing, services/reporting/standing.py), kept by the fact writer batch after
batch, is the row computed from scratch from the facts, whatever the order and the batching of the events: a
tranche, a report or a contract before its award, an award given twice, amendments, decommitments, a closure, a
termination. A row is written again only where its values change."""

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.reporting import standing
from tests.support.archive_events import archive_events, late_events
from tests.support.reporting_db import apply_live, reporting_database


@pytest.fixture
def engine():
    with reporting_database("standing") as engine:
        yield engine


def _kept(session) -> list:
    return session.execute(text("SELECT * FROM grant_standing ORDER BY grant_id")).all()


def _from_scratch(session) -> list:
    savepoint = session.begin_nested()
    standing.compute_all(session)
    rows = _kept(session)
    savepoint.rollback()
    return rows


def _versions(session) -> dict:
    return dict(session.execute(text("SELECT grant_id, xmin::text FROM grant_standing")).all())


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_the_kept_rows_are_the_rows_computed_from_the_facts_after_every_batch(engine, batch):
    events = archive_events() + late_events()
    for start in range(0, len(events), batch):
        apply_live(engine, events[start : start + batch])
        with Session(engine) as session:
            kept = _kept(session)
            assert kept == _from_scratch(session), f"after the events up to {start + batch}"
    rows = {row.grant_id: row for row in kept}
    # G1: awarded three times (the first award stays), each payment counted once (its first event), a report
    assert rows["G1"].listed and rows["G1"].paid == 7_000_777
    assert rows["G1"].tranches == 3 and not rows["G1"].number_twice
    assert sum(getattr(rows["G1"], f"{h}_lines") for h in ("travel", "other")) > 0
    # G3: its contract came before its award; still contracted
    assert rows["G3"].listed and rows["G3"].contracted


def test_a_row_is_written_again_only_where_its_values_change(engine):
    events = archive_events()
    apply_live(engine, events)
    with Session(engine) as session:
        before = _versions(session)
    tranche = next(e for e in events if e.event_type == "tranche_paid" and e.data["grant_id"] == "G1")
    contract = next(e for e in events if e.event_type == "contract_signed" and e.data["grant_id"] == "G3")
    # given again (new event ids, the same payment and contract): the facts do not change, nor do the rows
    apply_live(engine, [_again(tranche), _again(contract)])
    with Session(engine) as session:
        assert _versions(session) == before
        assert _kept(session) == _from_scratch(session)


def _again(evt):
    from services.common.contracts.events import make_event

    return make_event(evt.event_type, evt.data, producer=evt.producer, occurred_at=evt.occurred_at)
