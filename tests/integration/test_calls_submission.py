"""The submission path on a real database, in process (no broker): what it caches (the call with its programme,
the parsed exclusion list) is never older than the rows it was built from, and the idempotency key answers a
replay from the stored proposal whatever the call's state is now. On PostgreSQL (the caches keyed by the rows'
xmin) and on SQLite (no cache: the definitions read each time)."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select, text, update

from services.calls import commands, schemas, submission
from services.calls.models import ProposalRow, ReferenceSequence
from services.common.security.auth import Identity
from services.common.service.entrypoints import load_input
from services.common.storage.db import DatabaseCore
from services.common.storage.migrations import upgrade
from services.common.storage.tables import audit_log, outbox
from services.common.values.errors import Conflict, InvalidInput
from tests.support import flows
from tests.support.infra import Postgres, run_id

pytestmark = pytest.mark.integration

CALL = "CACHED-2010"
SUBMIT = schemas.SubmitProposal()


@pytest.fixture(params=["postgresql", "sqlite"])
def core(request, tmp_path):
    if request.param == "postgresql":
        name = f"jmdi_submission_{run_id()}"
        url = Postgres().create_database(name)
    else:
        name, url = None, f"sqlite:///{tmp_path / 'calls.db'}"
    upgrade("calls", url)
    made = DatabaseCore(url, "calls")
    yield made
    made.dispose()
    if name:
        Postgres().drop_database(name)


def run(core, use_case, *args):
    """One operation's unit of work, committed as the kit's entrypoint commits it."""
    uow = core.unit_of_work(
        operation="calls.test",
        identity=Identity("amina.pm", ("programme_manager",), datetime.now(timezone.utc) + timedelta(hours=1)),
    )
    try:
        result = use_case(uow, *args)
        uow.commit()
        return result
    finally:
        uow.rollback()


def submit(core, n: int, now: datetime, **changes) -> dict:
    data = load_input(SUBMIT, {**flows.proposal(n, call_id=CALL, country="MA"), **changes})
    return run(core, submission.submit_proposal, data, now)


@pytest.fixture
def open_call(core):
    now = commands.now_utc()
    run(core, commands.load_programme, flows.programme("CACHED"), now)
    run(core, commands.create_call, load_input(schemas.CreateCall(), flows.call(CALL, "CACHED", timedelta(days=1))))
    return run(core, commands.open_call, CALL, now)


def test_a_closed_call_is_seen_by_the_next_submission(core, open_call):
    before_deadline = commands.now_utc()
    assert submit(core, 1, before_deadline)["created"] is True  # the call's context is now cached
    run(core, commands.close_call, CALL, open_call["deadline"] + timedelta(seconds=1))
    with pytest.raises(Conflict) as refused:
        submit(core, 2, before_deadline)  # before the deadline, but the call is closed
    assert {d["rule"] for d in refused.value.details} == {"call.not_open"}


def test_a_changed_programme_is_seen_by_the_next_submission(core, open_call):
    now = commands.now_utc()
    assert submit(core, 1, now)["created"] is True
    countries = [c for c in flows.programme("CACHED")["eligible_countries"] if c != "MA"]
    run(core, commands.update_programme, "CACHED", {"eligible_countries": countries}, now)
    with pytest.raises(Conflict) as refused:
        submit(core, 2, now)
    assert "target_country" in {d["field"] for d in refused.value.details}


def test_each_submission_is_screened_against_the_latest_list(core, open_call):
    now = commands.now_utc()
    assert submit(core, 1, now)["screening"] == "unscreened"  # no list yet
    first = run(
        core, commands.load_exclusion_list, {"csv": "name,registration_number\nNobody Known,\n", "source": "first"}, now
    )
    assert submit(core, 2, now)["screening"] == "clear"
    second = run(
        core,
        commands.load_exclusion_list,
        {"csv": "name,registration_number\n,REG-MA-00003\n", "source": "second"},
        now,
    )
    flagged = submit(core, 3, now)
    stored = run(core, commands.get_proposal, flagged["proposal_id"])
    assert (flagged["screening"], stored["screening_hits"][0]["entry_registration_number"]) == (
        "flagged",
        "REG-MA-00003",
    )
    assert second["list_id"] != first["list_id"]
    with core.engine.connect() as conn:
        screened = conn.execute(select(func.count()).where(outbox.c.event_type == "proposal_screened")).scalar_one()
    assert screened == 3  # the first proposal when the first list came, then the second and the third as submitted


def test_a_replay_is_answered_from_the_stored_proposal_even_once_the_call_is_closed(core, open_call):
    now = commands.now_utc()
    first = submit(core, 1, now)
    run(core, commands.close_call, CALL, open_call["deadline"] + timedelta(seconds=1))
    again = submit(core, 1, now)
    assert (again["created"], again["proposal_id"], again["reference"]) == (
        False,
        first["proposal_id"],
        first["reference"],
    )
    with pytest.raises(Conflict) as reused:
        submit(core, 1, now, title="Something else")
    assert reused.value.rule == "proposal.idempotency_key_reused"
    with core.engine.connect() as conn:
        assert conn.execute(select(ReferenceSequence.last)).scalars().all() == [1]  # no number taken by replays
        assert conn.execute(select(func.count()).select_from(ProposalRow)).scalar_one() == 1
        submitted = conn.execute(select(func.count()).where(outbox.c.event_type == "proposal_submitted")).scalar_one()
        audited = conn.execute(
            select(func.count()).where(audit_log.c.operation == "calls.test", audit_log.c.entity.like("proposal:%"))
        ).scalar_one()
    assert (submitted, audited) == (1, 1)


def test_the_stored_proposal_is_the_event_that_left(core, open_call):
    created = submit(core, 1, commands.now_utc())
    stored = run(core, commands.get_proposal, created["proposal_id"])
    with core.engine.connect() as conn:
        (body,) = conn.execute(select(outbox.c.body).where(outbox.c.event_type == "proposal_submitted")).one()
    event = json.loads(body)
    assert stored["proposal"] == event["data"] and event["data"]["reference"] == created["reference"]
    assert uuid.UUID(event["data"]["proposal_id"]) and created["reference"].startswith("CACHED-")


@pytest.fixture
def statements(core):
    """The SQL each test's submissions send, once armed (a list it appends to)."""
    sent: list[str] = []
    armed = [False]

    def record(conn, cursor, statement, parameters, context, executemany):
        if armed[0]:
            sent.append(statement)
            connections.append(conn.connection.dbapi_connection)

    connections: list = []

    event.listen(core.engine, "before_cursor_execute", record)
    yield sent, armed, connections
    event.remove(core.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_a_later_submission_to_a_call_is_one_statement(core, open_call, statements):
    sent, armed, connections = statements
    now = commands.now_utc()
    first = submit(core, 1, now)  # reads the call: its definitions are known from now on
    armed[0] = True
    second, third = submit(core, 2, now), submit(core, 3, now)
    # each submission one EXECUTE; the statement prepared once on each connection that runs it, before it does
    executes = [n for n, statement in enumerate(sent) if statement.startswith("EXECUTE submission_")]
    prepares = [n for n, statement in enumerate(sent) if statement.startswith("PREPARE submission_")]
    assert len(executes) == 2 and len(prepares) + len(executes) == len(sent)
    assert all(" AS WITH context AS" in sent[n] for n in prepares)
    assert len(prepares) == len(set(connections)) and all(connections[n] == connections[n + 1] for n in prepares)
    prefix = f"CACHED-{open_call['deadline'].year}-MA-"  # proposal_reference's form, numbered in SQL
    assert (first["reference"], second["reference"], third["reference"]) == (
        prefix + "0001",
        prefix + "0002",
        prefix + "0003",
    )
    armed[0] = False
    stored = run(core, commands.get_proposal, second["proposal_id"])
    with core.engine.connect() as conn:
        (body,) = conn.execute(select(outbox.c.body).where(outbox.c.body.contains(second["proposal_id"]))).one()
        (detail,) = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.entity == f"proposal:{second['proposal_id']}")
        ).one()
    event_data = json.loads(body)["data"]
    assert stored["proposal"] == event_data == detail["data"]
    assert event_data["reference"] == stored["reference"] == second["reference"]
    assert "reference of" not in body + json.dumps(detail) + json.dumps(stored, default=str)


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_one_statement_writes_the_screening_event_after_the_submission(core, open_call, statements):
    sent, armed, _ = statements
    now = commands.now_utc()
    run(core, commands.load_exclusion_list, {"csv": "name,registration_number\n,REG-MA-00002\n", "source": "x"}, now)
    submit(core, 1, now)
    armed[0] = True
    flagged = submit(core, 2, now)
    assert [s.split(" ", 1)[0] for s in sent] == ["PREPARE", "EXECUTE"] and flagged["screening"] == "flagged"
    with core.engine.connect() as conn:
        written = conn.execute(
            select(outbox.c.event_type, outbox.c.body)
            .where(outbox.c.body.contains(flagged["proposal_id"]))
            .order_by(outbox.c.id)
        ).all()
        audited = (
            conn.execute(
                select(audit_log.c.detail["event_type"].as_string())
                .where(audit_log.c.entity == f"proposal:{flagged['proposal_id']}")
                .order_by(audit_log.c.id)
            )
            .scalars()
            .all()
        )
    assert [t for t, _ in written] == audited == ["proposal_submitted", "proposal_screened"]
    assert {json.loads(b)["data"]["reference"] for _, b in written} == {flagged["reference"]}


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_a_key_used_again_takes_no_number(core, open_call):
    now = commands.now_utc()
    submit(core, 1, now)
    second = submit(core, 2, now)  # one statement
    again = submit(core, 2, now)  # the same key, the call unchanged: the statement inserts nothing, undone
    assert (again["created"], again["reference"]) == (False, second["reference"])
    third = submit(core, 3, now)
    assert third["reference"][-4:] == "0003"
    with core.engine.connect() as conn:
        assert conn.execute(select(ReferenceSequence.last)).scalars().all() == [3]


def test_a_year_whose_numbers_are_used_up_refuses_the_next_proposal(core, open_call):
    now = commands.now_utc()
    submit(core, 1, now)
    with core.engine.begin() as conn:
        conn.execute(update(ReferenceSequence).values(last=9999))
        events = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    with pytest.raises(InvalidInput) as refused:
        submit(core, 2, now)
    assert "sequence" in refused.value.errors
    with core.engine.connect() as conn:
        assert conn.execute(select(ReferenceSequence.last)).scalars().all() == [9999]
        assert conn.execute(select(func.count()).select_from(ProposalRow)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == events


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_one_key_submitted_twice_at_once_takes_one_number(core, open_call):
    """Both submissions pass the statement's check that the key is unused and queue on the sequence row; the one
    that gets it second fails on the key's unique index once the first commits, its number undone with it, and is
    answered from the first's proposal."""
    now = commands.now_utc()
    submit(core, 1, now)  # the call's definitions are known: the next submissions are one statement each
    with core.engine.connect() as holder:
        holder.execute(select(ReferenceSequence).with_for_update())  # the sequence row, held
        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(submit, core, 2, now) for _ in range(2)]
            deadline = time.monotonic() + 10
            while _waiting_for_locks(core) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _waiting_for_locks(core) == 2
            holder.commit()  # both queue behind it: the first inserts, the second meets its committed key
            results = [answer.result(timeout=10) for answer in answers]
    assert sorted(r["created"] for r in results) == [False, True]
    assert results[0]["proposal_id"] == results[1]["proposal_id"] and results[0]["reference"][-4:] == "0002"
    with core.engine.connect() as conn:
        assert conn.execute(select(ReferenceSequence.last)).scalars().all() == [2]
        assert conn.execute(select(func.count()).select_from(ProposalRow)).scalar_one() == 2
        assert (
            conn.execute(select(func.count()).where(outbox.c.body.contains(results[0]["proposal_id"]))).scalar_one()
            == 1
        )


def _waiting_for_locks(core) -> int:
    with core.engine.connect() as conn:  # not the holder's: a transaction sees pg_stat_activity as it first read it
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
