"""The outbox relay and the confirming publisher on a real database and the real broker, with each crash window
hit on purpose: the event reaches the broker at least once and its effect is applied exactly once."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from services.common.messaging.inbox import APPLIED, DUPLICATE, RetryPolicy, consume
from services.common.messaging.outbox import WAKE_CHANNEL, OutboxRelay, pending_count
from services.common.messaging.publisher import PublishFailed
from services.common.storage.tables import outbox
from tests.support.infra import eventually, free_port, run_id

from .conftest import (
    SimulatedCrash,
    run_together,
    bound_queue,
    delete_queue,
    drain_queue,
    ledger_rows,
    ledger_total,
    record_tranche,
    tranche_data,
)

pytestmark = pytest.mark.integration


def commit_tranches(core, numbers, amount="96000.00"):
    for n in numbers:
        uow = core.unit_of_work(actor="farid.finance")
        uow.emit("tranche_paid", tranche_data(n, amount))
        uow.commit()


def attempts(core) -> list[int]:
    with core.engine.connect() as conn:
        return [a for (a,) in conn.execute(select(outbox.c.attempts).order_by(outbox.c.id))]


def apply_all(consumer_core, bodies) -> list[str]:
    """The consumer's side: every delivered copy through the inbox."""
    return [
        consume(consumer_core.unit_of_work(), "reporting.on_tranche_paid", body, {}, record_tranche, RetryPolicy(1, 0))
        for body in bodies
    ]


def test_committed_rows_are_published_once_and_marked_sent(databases, vhost, queue):
    core = databases("grants")
    commit_tranches(core, range(3))
    relay = OutboxRelay(core, vhost)
    try:
        assert relay.drain() == 3
        assert relay.drain() == 0
    finally:
        relay.publisher.close()
    bodies = drain_queue(vhost, queue)
    assert [b["data"]["payment_id"] for b in bodies] == ["pay-0", "pay-1", "pay-2"]
    assert pending_count(core) == 0


def test_a_crash_between_the_commit_and_the_publish_is_published_after_the_restart(databases, vhost, queue, crash_at):
    core, consumer = databases("grants"), databases("reporting")
    crash_at("outbox.before_publish")
    commit_tranches(core, (1, 2))
    with pytest.raises(SimulatedCrash):
        OutboxRelay(core, vhost).drain()
    assert drain_queue(vhost, queue) == [] and pending_count(core) == 2  # nothing left, nothing lost

    restarted = OutboxRelay(core, vhost)
    try:
        assert restarted.drain() == 2
    finally:
        restarted.publisher.close()
    assert apply_all(consumer, drain_queue(vhost, queue)) == [APPLIED, APPLIED]
    assert sorted(ledger_rows(consumer).values()) == [1, 1] and pending_count(core) == 0


def test_a_crash_after_the_publish_before_marking_sent_publishes_again_and_is_applied_once(
    databases, vhost, queue, crash_at
):
    core, consumer = databases("grants"), databases("reporting")
    crash_at("outbox.after_publish")
    commit_tranches(core, (1, 2))
    crashed = OutboxRelay(core, vhost)
    with pytest.raises(SimulatedCrash):
        crashed.drain()
    crashed.publisher.close()
    assert pending_count(core) == 2  # the broker has them, the outbox does not know

    restarted = OutboxRelay(core, vhost)
    try:
        assert restarted.drain() == 2
    finally:
        restarted.publisher.close()
    bodies = drain_queue(vhost, queue)
    assert len(bodies) == 4  # each event twice: at least once on the broker
    assert sorted(apply_all(consumer, bodies)) == [APPLIED, APPLIED, DUPLICATE, DUPLICATE]
    assert sorted(ledger_rows(consumer).values()) == [1, 1]  # ... exactly once in effect
    assert str(ledger_total(consumer)) == "192000.00"


def test_a_broker_nack_leaves_the_rows_pending_and_they_go_once_the_broker_accepts(databases, vhost, queue):
    core, consumer = databases("grants"), databases("reporting")
    full = f"full-{run_id()}"  # a real refusal: a queue that rejects every publish makes RabbitMQ nack it
    bound_queue(vhost, full, **{"x-max-length": 0, "x-overflow": "reject-publish"})
    commit_tranches(core, (1,))
    relay = OutboxRelay(core, vhost)
    try:
        with pytest.raises(PublishFailed, match="refused"):
            relay.drain()
        assert pending_count(core) == 1 and attempts(core) == [1]
        delete_queue(vhost, full)
        assert relay.drain() == 1
    finally:
        relay.publisher.close()
    bodies = drain_queue(vhost, queue)  # the refused publish may still have reached the other queues
    assert len(bodies) in (1, 2)
    assert APPLIED in apply_all(consumer, bodies)
    assert list(ledger_rows(consumer).values()) == [1] and pending_count(core) == 0


def test_a_confirm_that_never_comes_times_out_and_the_row_is_published_again(databases, vhost, queue, crash_at):
    core, consumer = databases("grants"), databases("reporting")
    crash_at("publisher.no_confirm")
    commit_tranches(core, (1,))
    relay = OutboxRelay(core, vhost)
    relay.publisher.confirm_timeout = 1.0
    try:
        with pytest.raises(PublishFailed, match="not confirmed"):
            relay.drain()
        assert pending_count(core) == 1 and attempts(core) == [1]
        assert relay.drain() == 1
    finally:
        relay.publisher.close()
    bodies = drain_queue(vhost, queue)
    assert len(bodies) == 2  # the broker had the first copy; only its confirm was lost
    assert sorted(apply_all(consumer, bodies)) == [APPLIED, DUPLICATE]
    assert list(ledger_rows(consumer).values()) == [1]


def test_two_relays_of_one_service_never_publish_the_same_row(pg_databases, vhost, queue):
    core = pg_databases("grants")
    commit_tranches(core, range(120))
    relays = [OutboxRelay(core, vhost, batch_size=10) for _ in range(2)]
    start = threading.Barrier(2)

    def drain(relay):
        start.wait()
        return relay.drain()

    try:
        published = run_together(lambda: drain(relays[0]), lambda: drain(relays[1]))
    finally:
        for relay in relays:
            relay.publisher.close()
    ids = [b["event_id"] for b in drain_queue(vhost, queue)]
    assert sum(published) == 120 and len(ids) == 120 and len(set(ids)) == 120


def test_a_drain_claims_and_marks_a_batch_in_one_statement(pg_databases, vhost, queue):
    """The relay's round trips on PostgreSQL: the claim marks its rows sent as it locks them (undone if the
    publish fails or the process dies before COMMIT); no separate SELECT, no UPDATE after the publish."""
    core = pg_databases("grants")
    commit_tranches(core, range(3))
    relay = OutboxRelay(core, vhost)
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(core.engine, "after_cursor_execute", record)
    try:
        assert relay.drain() == 3
    finally:
        event.remove(core.engine, "after_cursor_execute", record)
        relay.publisher.close()
    assert statements == ["SET", "UPDATE"]
    assert [b["data"]["payment_id"] for b in drain_queue(vhost, queue)] == ["pay-0", "pay-1", "pay-2"]
    assert pending_count(core) == 0


def test_the_relays_poll_stops_visiting_rows_it_published(pg_databases, vhost, queue):
    """Marked rows leave dead entries in the partial index of pending rows (no VACUUM here, as on a server without
    autovacuum): once they are dead to every transaction, a poll must not visit their heap rows again. A bitmap
    scan visits every one at every poll; its cost grew with every event published."""
    core = pg_databases("grants")
    commit_tranches(core, range(1200))
    relay = OutboxRelay(core, vhost)
    plans = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE") and "SKIP LOCKED" in statement:  # the claim
            # same transaction: the relay's settings hold (ANALYZE runs it: only while nothing is pending)
            with cursor.connection.cursor() as explaining:
                explaining.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
                plans.append(explaining.fetchone()[0][0]["Plan"])

    try:
        assert relay.drain() == 1200
        event.listen(core.engine, "after_cursor_execute", explain)
        try:
            # a poll finds the marked rows dead (and marks their entries) once no transaction can still see them
            for _ in range(50):
                assert relay.drain() == 0
                if blocks(plans[-1]) < 20:
                    break
                time.sleep(0.1)
        finally:
            event.remove(core.engine, "after_cursor_execute", explain)
        commit_tranches(core, (1200,))
        assert relay.drain() == 1  # a row pending behind the dead entries is still found
    finally:
        relay.publisher.close()
    assert len(drain_queue(vhost, queue)) == 1201
    # the index's few pages, not the heap pages of the 1,200 published rows (about 90)
    assert blocks(plans[-1]) < 20, plans[-1]


def blocks(plan: dict) -> int:
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]


def test_housekeeping_forgets_rows_published_long_ago_and_keeps_pending_ones(databases, vhost, queue, crash_at):
    core = databases("grants")
    commit_tranches(core, (1, 2))
    relay = OutboxRelay(core, vhost, retention=timedelta(0), sweep_seconds=0)
    try:
        relay.drain()
        commit_tranches(core, (3,))
        relay._housekeeping()
    finally:
        relay.publisher.close()
    with core.engine.connect() as conn:
        left = [
            r.event_type
            for r in conn.execute(select(outbox.c.event_type, outbox.c.published_at))
            if r.published_at is None
        ]
    assert left == ["tranche_paid"] and pending_count(core) == 1


def test_the_relay_loop_keeps_going_through_a_broker_it_cannot_reach(databases):
    core = databases("grants")
    commit_tranches(core, (1,))
    relay = OutboxRelay(core, f"amqp://guest:guest@127.0.0.1:{free_port()}/", sweep_seconds=0.1)  # nobody there
    runner = threading.Thread(target=relay.run)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while attempts(core) == [0] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        relay.stop()
        runner.join(30)
    assert attempts(core) == [1] or attempts(core)[0] >= 1
    assert not runner.is_alive() and pending_count(core) == 1  # stopped cleanly; the row waits for the broker


def test_rows_another_process_commits_with_notify_go_out_before_the_sweep(pg_databases, vhost, queue, caplog):
    """A writer outside the service process cannot reach the relay's in-process wake-up: its NOTIFY does. The sweep
    is an hour away, so only the listener can have published the rows; a listener killed by the server listens
    again."""
    core = pg_databases("grants")
    relay = OutboxRelay(core, vhost, sweep_seconds=3600)
    threads = [threading.Thread(target=relay.run), threading.Thread(target=relay.listen)]
    for thread in threads:
        thread.start()

    def commit_notified(n: int):
        assert relay.listening.wait(30), "the listener never listened"
        other = core.unit_of_work(actor="repair.script")  # no relay.wake on this core's commits: none in-process
        other.emit("tranche_paid", tranche_data(n))
        other.session.execute(text(f"NOTIFY {WAKE_CHANNEL}"))
        other.commit()
        eventually(lambda: pending_count(core) == 0, 20, 0.05, f"the notified row {n} published")

    try:
        commit_notified(0)
        # published because it was notified: a failing listener also wakes the relay, as a safety net
        assert "outbox relay listener" not in caplog.text, caplog.text
        with core.engine.connect() as conn:  # the server drops the listener's connection
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = :listen "
                    "AND datname = current_database()"
                ),
                {"listen": f"LISTEN {WAKE_CHANNEL}"},
            )
        eventually(lambda: "outbox relay listener" in caplog.text, 20, 0.05, "the listener noticing it was dropped")
        commit_notified(1)
    finally:
        relay.stop()
        for thread in threads:
            thread.join(30)
    assert [b["data"]["payment_id"] for b in drain_queue(vhost, queue)] == ["pay-0", "pay-1"]
    assert not any(thread.is_alive() for thread in threads)


def test_commits_within_a_drains_gap_go_out_together_and_a_lone_one_at_once(databases, vhost, queue):
    """A rush's commits wake the relay one after the other: those within the gap after a drain wait for the next
    drain and go out in one batch (one claim, so one published_at); the first, after a quiet spell,
    is not held back by the gap."""
    core = databases("grants")
    relay = OutboxRelay(core, vhost, sweep_seconds=3600, drain_gap_seconds=2.0)
    core.on_commit_with_events.append(relay.wake)
    runner = threading.Thread(target=relay.run)
    runner.start()
    try:
        time.sleep(2.0)  # a quiet spell: the gap of the relay's first (empty) drain is over
        commit_tranches(core, [0])
        lone_published = time.monotonic()
        eventually(lambda: pending_count(core) == 0, 20, 0.01, "the lone event published")
        lone_published = time.monotonic() - lone_published
        commit_tranches(core, [1, 2, 3, 4])  # each commit wakes the relay, within the gap of the drain of pay-0
        eventually(lambda: pending_count(core) == 0, 20, 0.01, "the rush published")
    finally:
        relay.stop()
        runner.join(30)
    with core.engine.connect() as conn:
        marks = [m for (m,) in conn.execute(select(outbox.c.published_at).order_by(outbox.c.id))]
    assert lone_published < 1.0  # the gap is 2 s: the lone event did not wait for it
    assert marks[0] < marks[1] and len(set(marks[1:])) == 1  # the rush in one drain, after the lone one's
    assert [b["data"]["payment_id"] for b in drain_queue(vhost, queue)] == [f"pay-{n}" for n in range(5)]
