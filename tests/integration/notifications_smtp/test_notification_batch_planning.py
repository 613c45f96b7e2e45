"""Planning notifications a batch of events at a time (the service's batch consumer) on PostgreSQL: a poison event
among good ones is retried and dead-lettered alone, copies inside one batch and across batches are planned once,
and an event that overtook the fact it needs is parked and released within the batch."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from services.common.contracts.events import make_event
from services.common.messaging.batch import apply_batch
from services.common.messaging.inbox import RetryPolicy, list_dead_letters
from services.common.storage.tables import inbox
from services.notifications.models import Notification, Proposal
from services.notifications.planning import plan
from services.notifications.settings import NotificationSettings
from tests.support import flows

pytestmark = pytest.mark.integration

ONCE = RetryPolicy(1, 0)
SETTINGS = NotificationSettings.from_config({})


@pytest.fixture
def core(pg_core):
    return pg_core


def submitted(n: int, reference: str | None = None):
    data = {k: v for k, v in flows.proposal(n).items() if k != "idempotency_key"}
    return make_event(
        "proposal_submitted",
        {
            **data,
            "proposal_id": f"p-{n}",
            "reference": reference or f"JMDI-2009-MA-{n:04d}",
            "programme_id": "JMDI",
            "applicant_type": "civil_society_organisation",
            "lead_organisation": data["applicants"][0]["name"],
            "submitted_at": datetime(2009, 1, 15, 14, 30, tzinfo=timezone.utc),
        },
        producer="calls",
    )


def screened(n: int):
    return make_event(
        "proposal_screened",
        {"proposal_id": f"p-{n}", "reference": f"JMDI-2009-MA-{n:04d}", "call_id": "call-1", "outcome": "clear"},
        producer="calls",
    )


def apply(core, events, poison: str | None = None) -> dict:
    def planned(fresh, uow):
        for event in fresh:
            plan(uow, event, SETTINGS)  # written, then undone when a later event of the batch fails
            if event.event_id == poison:
                raise KeyError("a planning error on this event only")

    return apply_batch(core.unit_of_work(), "notifications", [e.body for e in events], planned, ONCE)


def receipts(core) -> dict:
    with core.engine.connect() as conn:
        rows = conn.execute(
            select(Notification.source_event_id, func.count()).group_by(Notification.source_event_id)
        ).all()
    return dict(rows)


def test_a_poison_event_in_a_batch_is_dead_lettered_alone(core):
    good = [submitted(1), submitted(2), submitted(3)]
    poison = submitted(4)
    outcomes = apply(core, [good[0], poison, good[1], good[2]], poison=poison.event_id)
    assert outcomes == {"applied": 3, "duplicate": 0, "dead_lettered": 1}
    assert receipts(core) == {e.event_id: 1 for e in good}
    (letter,) = list_dead_letters(core)
    assert letter["event_id"] == poison.event_id and letter["consumer"] == "notifications.on_proposal_submitted"
    assert "planning error" in letter["error"]
    with core.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Proposal)).scalar() == 3


def test_copies_inside_a_batch_and_across_batches_are_planned_once(core):
    first, second = submitted(1), submitted(2)
    assert apply(core, [first, first, second])["applied"] == 2
    assert apply(core, [second, first, submitted(3)]) == {"applied": 1, "duplicate": 2, "dead_lettered": 0}
    assert set(receipts(core).values()) == {1} and len(receipts(core)) == 3
    with core.engine.connect() as conn:
        keys = conn.execute(select(inbox.c.consumer, func.count()).group_by(inbox.c.consumer)).all()
    assert keys == [("notifications.on_proposal_submitted", 3)]  # the per-event handlers' keys


def test_an_event_ahead_of_its_fact_is_parked_and_released_in_the_same_batch(core):
    screening, submission = screened(1), submitted(1)
    assert apply(core, [screening, submission])["applied"] == 2
    with core.engine.connect() as conn:
        templates = conn.execute(select(Notification.template).order_by(Notification.template)).scalars().all()
    assert templates == ["screening_result", "submission_receipt"]
