"""Leases (timers that run once across replicas) and the unit of work, on a real database."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError

from services.common.storage.db import retrying_stale, statements_commit_themselves
from services.common.storage.leases import CLOCK_SKEW_MARGIN, acquire_lease
from services.common.storage.tables import audit_log, leases, outbox
from services.common.values.errors import InvalidInput

from tests.support.infra import Postgres

from .conftest import ledger_rows, run_together, tranche_data, tranche_ledger

pytestmark = pytest.mark.integration

T0 = datetime(2009, 6, 15, 9, 0, tzinfo=timezone.utc)
TTL = 10


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def holder_of(core, name: str) -> str:
    with core.engine.connect() as conn:
        return conn.execute(select(leases.c.holder).where(leases.c.name == name)).scalar_one()


# --- leases ---------------------------------------------------------------------------------------------------


def test_a_lease_is_held_by_one_replica_and_renewed_by_it(databases):
    core = databases("calls")
    assert acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-a", now=at(0))
    assert not acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-b", now=at(1))
    assert acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-a", now=at(8))  # renewed to 18
    assert not acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-b", now=at(16))
    assert holder_of(core, "calls.close_due_calls") == "replica-a"


def test_an_expired_lease_is_taken_over_once_the_skew_margin_has_passed(databases):
    core = databases("calls")
    margin = CLOCK_SKEW_MARGIN.total_seconds()
    assert acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-a", now=at(0))  # replica-a dies
    assert not acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-b", now=at(TTL + margin - 0.5))
    assert acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-b", now=at(TTL + margin + 0.5))
    assert holder_of(core, "calls.close_due_calls") == "replica-b"
    # the old holder, back, finds the lease taken
    assert not acquire_lease(core, "calls.close_due_calls", TTL, holder="replica-a", now=at(TTL + margin + 1))


def test_a_replica_whose_clock_runs_ahead_within_the_margin_never_takes_a_live_lease(databases):
    core = databases("calls")
    skew = CLOCK_SKEW_MARGIN.total_seconds() - 1  # replica-b's clock is this far ahead of replica-a's
    assert acquire_lease(core, "reporting.produce_scheduled_reports", TTL, holder="replica-a", now=at(0))
    # at real time 9.5 replica-a still holds the lease (it renews at 9.8); replica-b reads 9.5 + skew > expiry
    assert not acquire_lease(core, "reporting.produce_scheduled_reports", TTL, holder="replica-b", now=at(9.5 + skew))
    assert acquire_lease(core, "reporting.produce_scheduled_reports", TTL, holder="replica-a", now=at(9.8))
    assert holder_of(core, "reporting.produce_scheduled_reports") == "replica-a"


@pytest.mark.parametrize("lease_exists", [False, True], ids=["new lease", "expired lease"])
def test_two_replicas_racing_for_a_lease_never_both_win(databases, lease_exists):
    core = databases("notifications")
    for round_ in range(15):
        name = f"notifications.report_reminders.{round_}"
        if lease_exists:
            with core.engine.begin() as conn:
                conn.execute(insert(leases).values(name=name, holder="replica-dead", expires_at=at(-3600)))
        start = threading.Barrier(2)

        def race(i):
            start.wait()
            return acquire_lease(core, name, TTL, holder=f"replica-{i}")

        won = run_together(lambda: race(0), lambda: race(1))
        assert sorted(won) == [False, True], f"round {round_}: {won}"
        assert holder_of(core, name) == f"replica-{won.index(True)}"


# --- the unit of work -----------------------------------------------------------------------------------------


def outbox_rows(core) -> list:
    with core.engine.connect() as conn:
        return conn.execute(select(outbox.c.event_type, outbox.c.published_at, outbox.c.exchange)).all()


def test_a_change_and_its_event_commit_together_and_wake_the_relay_once(databases):
    core = databases("grants")
    woken = []
    core.on_commit_with_events.append(lambda: woken.append(1))
    uow = core.unit_of_work(actor="farid.finance")
    evt = uow.emit("tranche_paid", tranche_data(1))
    uow.session.execute(insert(tranche_ledger).values(event_id=evt.event_id, payment_id="pay-1", amount="96000.00"))
    uow.commit()
    assert ledger_rows(core) == {evt.event_id: 1}
    assert outbox_rows(core) == [("tranche_paid", None, "grants.events")] and woken == [1]
    uow = core.unit_of_work()  # a commit that emitted nothing does not wake the relay
    uow.session.execute(insert(tranche_ledger).values(event_id="manual", payment_id="pay-x", amount="1.00"))
    uow.commit()
    assert woken == [1]


def test_a_change_that_fails_leaves_neither_the_change_nor_its_event(databases):
    core = databases("grants")
    uow = core.unit_of_work()
    evt = uow.emit("tranche_paid", tranche_data(2))
    uow.session.execute(insert(tranche_ledger).values(event_id=evt.event_id, payment_id="pay-2", amount="96000.00"))
    uow.rollback()  # what the entrypoint does when the use case raises
    assert ledger_rows(core) == {} and outbox_rows(core) == []


def test_an_event_that_breaks_its_contract_is_refused_before_anything_is_written(databases):
    core = databases("grants")
    uow = core.unit_of_work()
    with pytest.raises(InvalidInput) as refused:
        uow.emit("tranche_paid", {**tranche_data(3), "amount_eur": "ninety-six thousand"})
    assert "not a decimal amount" in str(refused.value)
    uow.rollback()
    assert outbox_rows(core) == []


def test_the_events_of_a_staff_operation_are_its_audit_trail(databases):
    from services.common.security.auth import Identity

    core = databases("grants")
    uow = core.unit_of_work(
        identity=Identity("farid.finance", ("finance_approver",), at(3600)), operation="grants.approve_payment"
    )
    uow.emit("tranche_paid", tranche_data(4))
    uow.commit()
    with core.engine.connect() as conn:
        (row,) = conn.execute(select(audit_log)).all()
    assert (row.user, row.roles, row.operation, row.entity) == (
        "farid.finance",
        ["finance_approver"],
        "grants.approve_payment",
        "grant:grant-4",
    )
    assert row.detail["event_type"] == "tranche_paid" and row.detail["data"]["amount_eur"] == "96000.00"


def test_a_statement_that_commits_itself_writes_the_units_events_and_the_unit_still_wakes_the_relay(pg_databases):
    """take_event_rows hands the caller the outbox rows (commit() then writes none of them) and, inside
    statements_commit_themselves, a statement is committed as it runs; the connection goes back to transactions."""
    core = pg_databases("grants")
    woken = []
    core.on_commit_with_events.append(lambda: woken.append(1))
    uow = core.unit_of_work(actor="farid.finance")
    uow.emit("tranche_paid", tranche_data(5))
    (row,), audit = uow.take_event_rows()
    with statements_commit_themselves(uow.session.connection()) as conn:
        conn.execute(insert(outbox).values(row))
        assert [r.event_type for r in outbox_rows(core)] == ["tranche_paid"]  # seen by others before commit()
    conn.execute(insert(tranche_ledger).values(event_id="after", payment_id="pay-5", amount="1.00"))
    assert ledger_rows(core) == {}  # a transaction again: not seen until it commits
    uow.commit()
    assert len(outbox_rows(core)) == 1 and audit == [] and woken == [1]  # no audit for a unit without an operation
    assert ledger_rows(core) == {"after": 1}


def test_an_event_large_enough_to_be_compressed_is_compressed_with_lz4(pg_databases):
    """The engine's connections compress with lz4 (pglz cost PostgreSQL a tenth of its CPU per submission)."""
    core = pg_databases("grants")
    uow = core.unit_of_work(actor="farid.finance")
    uow.emit("tranche_paid", {**tranche_data(7), "bank_reference": "BNK-" + "7" * 40})
    uow.commit()
    with core.engine.connect() as conn:
        body = conn.execute(select(outbox.c.body)).scalar_one()
        padded = body[:-1] + ', "padding": "' + "migration and development " * 400 + '"}'
        conn.execute(outbox.update().values(body=padded))
        conn.commit()
        method, stored, length = conn.execute(
            select(
                func.pg_column_compression(outbox.c.body),
                func.pg_column_size(outbox.c.body),
                func.length(outbox.c.body),
            )
        ).one()
    assert method == "lz4" and stored < length / 10


def test_a_connection_dropped_in_the_pool_costs_one_retry_not_a_failed_unit_of_work(pg_databases):
    """No pre-ping: what a PostgreSQL restart leaves in the pool is found by the next statement, and the unit of
    work runs again, once, on a fresh connection."""
    core = pg_databases("calls")
    uow = core.unit_of_work()
    uow.session.execute(select(1))
    uow.commit()  # its connection now waits in the pool
    with Postgres()._admin() as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (core.engine.url.database,),
        )
        assert cur.fetchone()[0] >= 1
    attempts = []

    def work():
        attempts.append(len(attempts) + 1)
        uow.session.execute(insert(tranche_ledger).values(event_id="evt-1", payment_id="pay-1", amount=1))

    retrying_stale(work, uow.rollback)
    uow.commit()
    assert attempts == [1, 2] and ledger_rows(core) == {"evt-1": 1}


def test_only_a_dropped_connection_is_retried(pg_databases):
    core = pg_databases("calls")
    uow = core.unit_of_work()
    attempts = []

    def work():
        attempts.append(len(attempts) + 1)
        uow.session.execute(
            insert(outbox).values(
                event_id="x" * 37,
                event_type="t",
                exchange="e",
                routing_key="t",
                body="{}",
                headers={},
                created_at=at(0),
                attempts=0,
            )
        )

    with pytest.raises(DBAPIError):  # too long for its column: an error of the statement, not of the connection
        retrying_stale(work, uow.rollback)
    uow.rollback()
    assert attempts == [1]


def test_every_event_of_a_unit_is_written_at_commit_in_order_with_its_audit_record(databases):
    """A unit that only emits (no other change) still commits its events; several events keep their order in the
    outbox and each is one audit record (on PostgreSQL both tables are written by one statement)."""
    from services.common.security.auth import Identity

    core = databases("grants")
    uow = core.unit_of_work(
        identity=Identity("farid.finance", ("finance_approver",), at(3600)), operation="grants.approve_payment"
    )
    first, second = uow.emit("tranche_paid", tranche_data(5)), uow.emit("tranche_paid", tranche_data(6))
    assert outbox_rows(core) == []  # nothing is visible before the commit
    uow.commit()
    with core.engine.connect() as conn:
        written = conn.execute(select(outbox.c.event_id).order_by(outbox.c.id)).scalars().all()
        audited = conn.execute(select(audit_log.c.entity, audit_log.c.detail).order_by(audit_log.c.id)).all()
    assert written == [first.event_id, second.event_id]
    assert [(entity, detail["event_id"]) for entity, detail in audited] == [
        ("grant:grant-5", first.event_id),
        ("grant:grant-6", second.event_id),
    ]
