"""Planning notifications a batch of events at a time (the service's batch consumer) on PostgreSQL: a poison event
among good ones is retried and dead-lettered alone, copies inside one batch and across batches are planned once,
and an event that overtook the fact it needs waits for it within the batch (in memory) or across batches (parked).
The tests on `any_core` run on SQLite too (`make run`'s database): a second submission replacing the first, a
withdrawal, and grant events waiting in the batch or parked by an earlier one, released and paid once each."""

import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import event as sql_events
from sqlalchemy import func, select, text

from services.common.contracts.events import make_event
from services.common.messaging.batch import apply_batch
from services.common.messaging.inbox import RetryPolicy, list_dead_letters
from services.common.storage.db import DatabaseCore
from services.common.storage.migrations import upgrade
from services.common.storage.tables import inbox
from services.notifications.models import Contact, Grant, Notification, ParkedEvent, Proposal
from services.notifications.planning import plan_all
from services.notifications.repository import NotificationsRepository, lock_id
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
        plan_all(uow, fresh, SETTINGS)  # written, then undone when the batch holds the poison
        if any(event.event_id == poison for event in fresh):
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


def test_an_event_ahead_of_its_fact_is_planned_after_it_in_the_same_batch(core):
    screening, submission = screened(1), submitted(1)
    assert apply(core, [screening, submission])["applied"] == 2
    with core.engine.connect() as conn:
        templates = conn.execute(select(Notification.template).order_by(Notification.template)).scalars().all()
    assert templates == ["screening_result", "submission_receipt"]


def awarded(n: int):
    return make_event(
        "grant_awarded",
        {
            "grant_id": f"g-{n}",
            "proposal_id": f"p-{n}",
            "reference": f"JMDI-2009-MA-{n:04d}",
            "call_id": "call-1",
            "programme_id": "JMDI",
            "window": "remittances",
            "country": "MA",
            "applicant_type": "civil_society_organisation",
            "lead_organisation": "Association Tanmia",
            "title": "Remittances for local development",
            "amount_eur": Decimal("150000.00"),
            "budget": {"human_resources": Decimal("150000.00")},
            "decision_reference": "SC-2010-02",
            "decision_date": date(2010, 2, 1),
            "awarded_at": datetime(2010, 2, 1, 9, 0, tzinfo=timezone.utc),
        },
        producer="grants",
    )


def paid(n: int, tranche: int, amount: str):
    return make_event(
        "tranche_paid",
        {
            "payment_id": f"g-{n}-T{tranche}",
            "grant_id": f"g-{n}",
            "reference": f"JMDI-2009-MA-{n:04d}",
            "tranche_number": tranche,
            "amount_eur": Decimal(amount),
            "value_date": date(2010, 3, 1),
            "bank_reference": f"BNK-{n}-{tranche}",
            "approved_by": "finance.approver",
        },
        producer="grants",
    )


def test_an_event_parked_by_an_earlier_batch_is_released_by_the_batch_that_brings_its_fact(core):
    assert apply(core, [submitted(1)])["applied"] == 1
    assert apply(core, [paid(1, 1, "60000.00")])["applied"] == 1  # the award has not come yet
    with core.engine.connect() as conn:
        assert conn.execute(select(ParkedEvent.waits_for)).scalars().all() == ["grant:g-1"]
    assert apply(core, [awarded(1), paid(1, 2, "45000.00")])["applied"] == 2
    with core.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ParkedEvent)).scalar() == 0
        assert conn.execute(select(Grant.paid).where(Grant.grant_id == "g-1")).scalar() == Decimal("105000.00")
        tranches = conn.execute(
            select(Notification.context["tranche_number"].as_integer()).where(Notification.template == "tranche_paid")
        ).scalars()
        assert sorted(tranches) == [1, 2]


def test_several_events_of_one_proposal_in_a_batch_each_see_what_the_previous_ones_recorded(core):
    n = 7
    assert apply(core, [submitted(n), screened(n), awarded(n), paid(n, 1, "60000.00"), paid(n, 2, "45000.00")]) == {
        "applied": 5,
        "duplicate": 0,
        "dead_lettered": 0,
    }
    with core.engine.connect() as conn:
        templates = conn.execute(select(Notification.template)).scalars().all()
        assert sorted(templates) == ["award", "screening_result", "submission_receipt", "tranche_paid", "tranche_paid"]
        assert conn.execute(select(Grant.paid)).scalar() == Decimal("105000.00")
        assert conn.execute(select(func.count()).select_from(ParkedEvent)).scalar() == 0


def statements_to_plan(core, events) -> int:
    issued = []

    def count(*_args):
        issued.append(1)

    sql_events.listen(core.engine, "before_cursor_execute", count)
    try:
        assert apply(core, events)["applied"] == len(events)
    finally:
        sql_events.remove(core.engine, "before_cursor_execute", count)
    return len(issued)


def test_planning_a_batch_costs_the_same_statements_whatever_its_size(core):
    """The facts a batch names are locked and read together and its messages written together: a batch of 40
    submissions, awards and payments costs as many statements as one of 4 (per event, it would be ten times)."""
    small = [submitted(100), awarded(100), paid(100, 1, "60000.00"), paid(100, 2, "45000.00")]
    large = [e for n in range(200, 210) for e in (submitted(n), awarded(n), paid(n, 1, "60000.00"), paid(n, 2, "1.00"))]
    assert statements_to_plan(core, large) == statements_to_plan(core, small)


def test_the_facts_of_a_batch_are_locked_in_one_order_whatever_order_the_events_name_them(core):
    """Two replicas' batches naming the same proposals in opposite orders wait for each other instead of
    deadlocking: a batch blocked on its second key already holds its first, in the sorted order."""
    keys = sorted(["proposal:p-1", "proposal:p-2"], key=lock_id)
    held, waiting = advisory_locks_while_blocked(
        core, keys[1], lambda uow: NotificationsRepository(uow.session).serialise(keys[1], keys[0])
    )
    assert waiting == {lock_id(keys[1])} and held == {lock_id(keys[0])}


def test_the_facts_named_by_events_a_batch_releases_are_locked_with_the_batch_s_own(core):
    """An award parked for its proposal names its grant: the batch that brings the proposal (and so releases the
    award) locks the grant with the proposal, in the sorted order, not later on its own while holding the
    proposal (where two batches could each hold what the other waits for)."""
    n = next(n for n in range(1000, 2000) if lock_id(f"grant:g-{n}") < lock_id(f"proposal:p-{n}"))
    assert apply(core, [awarded(n)])["applied"] == 1  # parked: the proposal has not come yet
    held, waiting = advisory_locks_while_blocked(
        core, f"grant:g-{n}", lambda uow: plan_all(uow, [submitted(n)], SETTINGS)
    )
    assert waiting == {lock_id(f"grant:g-{n}")} and held == set()  # the proposal's lock comes after the grant's


def advisory_locks_while_blocked(core, key: str, work) -> tuple[set, set]:
    """The advisory locks `work(uow)` holds and waits for while another transaction holds `key`'s."""
    holder = core.engine.connect()
    holder.begin()
    holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id(key)})
    blocked = core.unit_of_work()
    pid = blocked.session.execute(text("SELECT pg_backend_pid()")).scalar()
    worker = threading.Thread(target=work, args=(blocked,))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        held = waiting = set()
        while time.monotonic() < deadline and not waiting:
            rows = holder.execute(
                text(
                    "SELECT (classid::bigint << 32) | objid::bigint, granted FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid = :pid"
                ),
                {"pid": pid},
            ).all()
            held = {_signed(k) for k, granted in rows if granted}
            waiting = {_signed(k) for k, granted in rows if not granted}
            time.sleep(0.05)
        return held, waiting
    finally:
        holder.rollback()
        holder.close()
        worker.join(10)
        blocked.rollback()


def _signed(key: int) -> int:
    return key - (1 << 64) if key >= 1 << 63 else key


# --- the same batches on SQLite too (`make run`'s database), where no advisory lock is taken -------------------
@pytest.fixture(params=["postgresql", "sqlite"])
def any_core(request, tmp_path):
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_core")
        return
    url = f"sqlite:///{tmp_path / 'notifications.db'}"
    upgrade("notifications", url)
    database = DatabaseCore(url, "notifications")
    yield database
    database.dispose()


def withdrawn(n: int):
    return make_event(
        "proposal_withdrawn",
        {
            "proposal_id": f"p-{n}",
            "reference": f"JMDI-2009-MA-{n:04d}",
            "call_id": "call-1",
            "withdrawn_at": datetime(2009, 2, 1, tzinfo=timezone.utc),
        },
        producer="calls",
    )


def messages(core) -> list[tuple]:
    with core.engine.connect() as conn:
        return conn.execute(
            select(Notification.source_event_id, Notification.template, Notification.recipient).order_by(
                Notification.source_event_id, Notification.recipient
            )
        ).all()


def parked(core) -> list:
    with core.engine.connect() as conn:
        return conn.execute(select(ParkedEvent.waits_for, ParkedEvent.event_id).order_by(ParkedEvent.id)).all()


def test_several_events_of_one_proposal_in_one_batch_see_each_other_and_a_later_submission_replaces_it(any_core):
    core = any_core
    first = submitted(1)
    lead = first.data["applicants"][0]
    events = [screened(1), first, withdrawn(1), submitted(2)]  # the screening overtook the submission
    assert apply(core, events)["applied"] == 4
    assert {(source, template) for source, template, _ in messages(core)} == {
        (first.event_id, "submission_receipt"),
        (events[0].event_id, "screening_result"),
        (events[3].event_id, "submission_receipt"),
    }
    assert {recipient for source, _, recipient in messages(core) if source == events[0].event_id} == {lead["email"]}
    assert parked(core) == []
    with core.engine.connect() as conn:
        statuses = dict(conn.execute(select(Proposal.proposal_id, Proposal.status)).all())
    assert statuses == {"p-1": "withdrawn", "p-2": "submitted"}

    # a second proposal_submitted of the same proposal: its values replace the first's, the applicants it no
    # longer lists stay (session.merge's semantics), and what follows in the batch is addressed to the new lead
    again = submitted(1, reference="JMDI-2009-MA-9999")
    again.data["applicants"] = [{**lead, "email": "new.lead@example.org", "name": "New Lead"}] + [
        {**a, "role": "co_applicant"} for a in first.data["applicants"] if a["role"] == "lead"
    ]
    again = make_event("proposal_submitted", again.data, producer="calls")
    after = screened(1)
    assert apply(core, [again, after])["applied"] == 2
    with core.engine.connect() as conn:
        proposal = conn.execute(select(Proposal.reference, Proposal.status).where(Proposal.proposal_id == "p-1")).one()
        contacts = dict(conn.execute(select(Contact.email, Contact.role).where(Contact.proposal_id == "p-1")).all())
    assert tuple(proposal) == ("JMDI-2009-MA-9999", "submitted")
    assert contacts == {
        **{a["email"]: a["role"] for a in first.data["applicants"]},
        lead["email"]: "co_applicant",
        "new.lead@example.org": "lead",
    }
    assert [r for source, _, r in messages(core) if source == after.event_id] == ["new.lead@example.org"]


def test_grant_events_parked_in_one_batch_or_an_earlier_one_are_released_and_paid_once_each(any_core):
    core = any_core
    assert apply(core, [submitted(1), submitted(2)])["applied"] == 2
    early = paid(2, 1, "100.00")
    assert apply(core, [early])["applied"] == 1  # its grant is not known yet: parked
    assert parked(core) == [("grant:g-2", early.event_id)]

    award_ahead = awarded(3)  # parked for its proposal, released by the submission later in the batch
    batch = [
        paid(1, 1, "60000.00"),
        award_ahead,
        awarded(1),
        paid(1, 2, "45000.00"),
        paid(3, 1, "10.00"),
        awarded(2),
        submitted(3),
        paid(1, 3, "30000.00"),
    ]
    assert apply(core, batch)["applied"] == len(batch)
    assert parked(core) == []
    with core.engine.connect() as conn:
        grants = {g: Decimal(p) for g, p in conn.execute(select(Grant.grant_id, Grant.paid)).all()}
    assert grants == {"g-1": Decimal("135000.00"), "g-2": Decimal("100.00"), "g-3": Decimal("10.00")}
    templates = [t for _, t, _ in messages(core)]
    assert templates.count("award") == 3 and templates.count("tranche_paid") == 5


def test_events_ahead_of_their_fact_in_the_same_batch_wait_in_memory_not_in_the_parking(core):
    """A backlog read from several queues at once brings payments ahead of their award and awards ahead of their
    proposal: they wait for the fact the batch brings later without a parking row written and deleted again, so the
    batch costs the statements of the same events in order, and each payment is planned and counted once."""
    in_order = [
        e for n in range(300, 310) for e in (submitted(n), awarded(n), paid(n, 1, "60000.00"), paid(n, 2, "1.00"))
    ]
    overtaken = [
        e for n in range(400, 410) for e in (paid(n, 1, "60000.00"), awarded(n), paid(n, 2, "1.00"), submitted(n))
    ]
    assert statements_to_plan(core, overtaken) == statements_to_plan(core, in_order)
    assert parked(core) == []
    with core.engine.connect() as conn:
        paid_by_grant = dict(conn.execute(select(Grant.grant_id, Grant.paid).where(Grant.grant_id.like("g-4%"))).all())
        planned = dict(
            conn.execute(
                select(Notification.source_event_id, func.count()).group_by(Notification.source_event_id)
            ).all()
        )
    assert paid_by_grant == {f"g-{n}": Decimal("60001.00") for n in range(400, 410)}
    assert all(planned.get(e.event_id, 0) >= 1 for e in overtaken)


def test_an_event_waiting_for_a_fact_whose_own_event_waits_is_parked_after_it(any_core):
    """The payment waits for an award the batch brings, but the award waits for its proposal, which the batch does
    not bring: both are parked, and released (the payment counted once) by the batch that brings the proposal."""
    core = any_core
    payment, award = paid(9, 1, "100.00"), awarded(9)
    assert apply(core, [payment, award])["applied"] == 2
    assert sorted(parked(core)) == [("grant:g-9", payment.event_id), ("proposal:p-9", award.event_id)]
    assert apply(core, [submitted(9)])["applied"] == 1
    assert parked(core) == []
    with core.engine.connect() as conn:
        assert conn.execute(select(Grant.paid).where(Grant.grant_id == "g-9")).scalar() == Decimal("100.00")
    assert sorted(t for _, t, _ in messages(core)) == ["award", "submission_receipt", "tranche_paid"]
