"""Applying events exactly once on a real database and the real broker: the inbox (with its concurrent-duplicate
branch), retries and dead letters, a consumer crash before its ack, and the batch consumer (duplicates inside one
batch, a poison message among good ones, overlapping batches)."""

import json
from types import SimpleNamespace

import pytest
from kombu import Connection
from sqlalchemy import event as sql_events
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.common.messaging.batch import _already_applied, _consumer, apply_batch
from services.common.storage.db import utcnow
from services.common.storage.tables import inbox
from services.common.values.errors import Conflict
from services.common.messaging.inbox import (
    APPLIED,
    DEAD_LETTERED,
    DUPLICATE,
    RetryPolicy,
    consume,
    discard_dead_letter,
    list_dead_letters,
    replay_dead_letter,
)
from tests.support.bus import publish
from tests.support.infra import run_id

from .conftest import (
    Gate,
    SimulatedCrash,
    run_together,
    bound_queue,
    delete_queue,
    ledger_rows,
    ledger_total,
    record_tranche,
    tranche_paid,
)

pytestmark = pytest.mark.integration

CONSUMER = "reporting.on_tranche_paid"
ONCE = RetryPolicy(1, 0)


# --- the inbox ------------------------------------------------------------------------------------------------


def test_an_event_is_applied_once_and_its_copies_are_recognised(databases):
    core = databases("reporting")
    event = tranche_paid(1)
    outcomes = [consume(core.unit_of_work(), CONSUMER, event.body, {}, record_tranche, ONCE) for _ in range(3)]
    assert outcomes == [APPLIED, DUPLICATE, DUPLICATE]
    assert ledger_rows(core) == {event.event_id: 1}


def test_a_failing_event_is_retried_then_kept_as_a_dead_letter_and_replayed_once(databases):
    core = databases("reporting")
    event = tranche_paid(2)
    tries = []

    def not_yet(evt, uow):
        tries.append(evt.event_id)
        record_tranche(evt, uow)  # written, then undone with the failed attempt
        raise Conflict("grant.unknown", "the grant's award has not arrived")

    assert consume(core.unit_of_work(), CONSUMER, event.body, {}, not_yet, RetryPolicy(3, 0)) == DEAD_LETTERED
    assert len(tries) == 3 and ledger_rows(core) == {}
    (letter,) = list_dead_letters(core)
    assert (letter["event_id"], letter["attempts"], letter["status"]) == (event.event_id, 3, "held")
    assert "grant.unknown" in letter["error"]

    assert replay_dead_letter(core.unit_of_work(), letter["id"], {CONSUMER: record_tranche}) == APPLIED
    with pytest.raises(Conflict) as again:
        replay_dead_letter(core.unit_of_work(), letter["id"], {CONSUMER: record_tranche})
    assert again.value.rule == "dead_letter.not_held"
    assert ledger_rows(core) == {event.event_id: 1} and list_dead_letters(core) == []
    # the copy still on its way is recognised
    assert consume(core.unit_of_work(), CONSUMER, event.body, {}, record_tranche, ONCE) == DUPLICATE


def test_a_message_that_is_no_event_is_dead_lettered_at_once_and_can_be_discarded(databases):
    core = databases("reporting")
    assert (
        consume(core.unit_of_work(), CONSUMER, {"event_type": "tranche_paid"}, {}, record_tranche, RetryPolicy(5, 0))
        == DEAD_LETTERED
    )
    (letter,) = list_dead_letters(core)
    assert letter["attempts"] == 1 and letter["error"].startswith("invalid event")
    discard_dead_letter(core, letter["id"])
    assert list_dead_letters(core) == [] and list_dead_letters(core, "discarded")[0]["id"] == letter["id"]


def test_a_database_failure_is_not_dead_lettered_the_message_goes_back(databases):
    core = databases("reporting")

    def database_away(evt, uow):
        raise OperationalError("INSERT ...", {}, Exception("server closed the connection unexpectedly"))

    with pytest.raises(OperationalError):
        consume(core.unit_of_work(), CONSUMER, tranche_paid(3).body, {}, database_away, RetryPolicy(2, 0))
    assert list_dead_letters(core) == []


def test_two_deliveries_of_one_event_applied_at_the_same_moment_take_effect_once(pg_databases):
    core = pg_databases("reporting")
    event = tranche_paid(4)
    both_inside = Gate(2)  # both have passed the "already applied?" check before either commits

    def apply(evt, uow):
        record_tranche(evt, uow)
        both_inside()

    outcomes = run_together(*[lambda: consume(core.unit_of_work(), CONSUMER, event.body, {}, apply, ONCE)] * 2)
    assert sorted(outcomes) == [APPLIED, DUPLICATE]  # the loser took the unique-violation branch
    assert ledger_rows(core) == {event.event_id: 1}


def test_one_event_delivered_to_two_consumers_of_one_queue_at_once_takes_effect_once(pg_databases, vhost):
    core = pg_databases("reporting")
    queue = f"reporting.on_tranche_paid-{run_id()}"
    bound_queue(vhost, queue)
    event = tranche_paid(5)
    publish(vhost, event.body, times=2)  # the same event twice on the queue (a producer's retry)
    both_inside = Gate(2)

    def apply(evt, uow):
        record_tranche(evt, uow)
        both_inside()

    def consumer():
        with Connection(vhost) as conn:
            channel = conn.channel()
            channel.basic_qos(0, 1, False)
            message = None
            while message is None:
                message = channel.basic_get(queue)
            outcome = consume(core.unit_of_work(), CONSUMER, json.loads(message.body), {}, apply, ONCE)
            channel.basic_ack(message.delivery_tag)
            return outcome

    try:
        assert sorted(run_together(consumer, consumer)) == [APPLIED, DUPLICATE]
    finally:
        delete_queue(vhost, queue)
    assert ledger_rows(core) == {event.event_id: 1}


def test_a_consumer_crash_after_applying_before_the_ack_is_redelivered_and_not_applied_again(
    databases, vhost, crash_at
):
    core = databases("reporting")
    queue = f"reporting.on_tranche_paid-{run_id()}"
    bound_queue(vhost, queue)
    event = tranche_paid(6)
    publish(vhost, event.body)
    crash_at("inbox.after_apply")
    try:
        with Connection(vhost) as conn:  # the consumer that dies: its change is committed, the message not acked
            message = conn.channel().basic_get(queue)
            with pytest.raises(SimulatedCrash):
                consume(core.unit_of_work(), CONSUMER, json.loads(message.body), {}, record_tranche, ONCE)
        with Connection(vhost) as conn:  # the restarted consumer gets the message again
            channel = conn.channel()
            message = channel.basic_get(queue)
            assert message is not None and message.delivery_info["redelivered"]
            assert (
                consume(core.unit_of_work(), CONSUMER, json.loads(message.body), {}, record_tranche, ONCE) == DUPLICATE
            )
            channel.basic_ack(message.delivery_tag)
    finally:
        delete_queue(vhost, queue)
    assert ledger_rows(core) == {event.event_id: 1}


# --- the batch consumer ---------------------------------------------------------------------------------------


def record_batch(events, uow):
    for event in events:
        record_tranche(event, uow)


def test_copies_inside_one_batch_and_from_earlier_batches_are_applied_once(databases):
    core = databases("reporting")
    first, second, third = tranche_paid(1), tranche_paid(2, "24000.00"), tranche_paid(3)
    outcome = apply_batch(
        core.unit_of_work(), "reporting", [first.body, first.body, second.body, first.body], record_batch, ONCE
    )
    assert outcome == {"applied": 2, "duplicate": 2, "dead_lettered": 0}
    outcome = apply_batch(core.unit_of_work(), "reporting", [second.body, third.body], record_batch, ONCE)
    assert outcome == {"applied": 1, "duplicate": 1, "dead_lettered": 0}
    assert sorted(ledger_rows(core).values()) == [1, 1, 1]
    assert str(ledger_total(core)) == "216000.00"


def test_a_poison_message_in_a_batch_is_isolated_and_the_others_are_applied(databases):
    core = databases("reporting")
    good, poison, other = tranche_paid(1), tranche_paid(66), tranche_paid(2)

    def apply(events, uow):
        if any(e.data["payment_id"] == "pay-66" for e in events):
            raise Conflict("payment.unknown", "no such payment")
        record_batch(events, uow)

    outcome = apply_batch(
        core.unit_of_work(), "reporting", [good.body, poison.body, {"junk": True}, other.body], apply, ONCE
    )
    assert outcome == {"applied": 2, "duplicate": 0, "dead_lettered": 2}
    assert set(ledger_rows(core)) == {good.event_id, other.event_id}
    assert sorted(letter["event_id"] or "" for letter in list_dead_letters(core)) == sorted(["", poison.event_id])


def test_a_crash_after_a_batch_commit_before_its_ack_applies_nothing_twice(databases, crash_at):
    core = databases("reporting")
    batch = [tranche_paid(n).body for n in range(5)]
    crash_at("batch.after_apply")
    with pytest.raises(SimulatedCrash):
        apply_batch(core.unit_of_work(), "reporting", batch, record_batch, ONCE)
    assert apply_batch(core.unit_of_work(), "reporting", batch, record_batch, ONCE) == {
        "applied": 0,
        "duplicate": 5,
        "dead_lettered": 0,
    }
    assert sorted(ledger_rows(core).values()) == [1] * 5


def test_overlapping_batches_applied_at_the_same_moment_apply_the_shared_event_once(pg_databases):
    core = pg_databases("reporting")
    one, shared, three = tranche_paid(1), tranche_paid(2), tranche_paid(3)
    both_inside = Gate(2)

    def apply(events, uow):
        record_batch(events, uow)
        both_inside()

    outcomes = run_together(
        lambda: apply_batch(core.unit_of_work(), "reporting", [one.body, shared.body], apply, ONCE),
        lambda: apply_batch(core.unit_of_work(), "reporting", [shared.body, three.body], apply, ONCE),
    )
    assert sum(o["applied"] for o in outcomes) == 3 and sum(o["duplicate"] for o in outcomes) == 1
    assert ledger_rows(core) == {one.event_id: 1, shared.event_id: 1, three.event_id: 1}


def test_a_batch_looks_up_its_own_inbox_keys_not_every_pair_of_its_consumers_and_ids(pg_databases):
    """A batch of four event types checks its 200 (consumer, event id) keys one by one in the inbox's key (60,000
    rows, never analysed): one index descent per key, whatever the inbox holds (`consumer IN (…) AND event_id IN
    (…)` bitmap-scanned every pair of the two lists; a plain join of the keys was hashed against the whole inbox),
    and what it finds are its own keys only, not an id applied under another consumer."""
    core = pg_databases("reporting")
    types = ("grant_awarded", "tranche_paid", "contract_signed", "report_accepted")
    batch = [SimpleNamespace(event_type=types[n % 4], event_id=f"e-{n:04d}") for n in range(200)]
    seen_before = {(_consumer("reporting", e), e.event_id) for e in batch[::2]}
    elsewhere = {
        (_consumer("reporting", SimpleNamespace(event_type=types[(n + 1) % 4])), f"e-{n:04d}") for n in range(1, 200, 2)
    }
    with core.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO inbox (consumer, event_id, event_type, applied_at) SELECT 'reporting.on_' || t, "
                "'old-' || g, t, now() FROM generate_series(1, 15000) AS g, unnest(CAST(:types AS text[])) AS t"
            ),
            {"types": list(types)},
        )
        conn.execute(
            inbox.insert(),
            [
                {"consumer": c, "event_id": i, "event_type": "x", "applied_at": utcnow()}
                for c, i in seen_before | elsewhere
            ],
        )
    plans = []

    def explain(_conn, cursor, statement, parameters, _context, _executemany):
        if "inbox" in statement and statement.lstrip().upper().startswith("SELECT"):
            with cursor.connection.cursor() as explaining:
                explaining.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
                plans.append(explaining.fetchone()[0][0]["Plan"])

    uow = core.unit_of_work()
    sql_events.listen(core.engine, "after_cursor_execute", explain)
    try:
        found = _already_applied(uow, "reporting", batch)
    finally:
        sql_events.remove(core.engine, "after_cursor_execute", explain)
        uow.rollback()
    assert found == seen_before
    assert len(plans) == 1
    (scan,) = [n for n in nodes(plans[0]) if n.get("Relation Name") == "inbox"]
    assert scan["Node Type"] in ("Index Scan", "Index Only Scan") and scan["Actual Loops"] == len(batch)


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)
