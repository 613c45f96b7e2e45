"""The dispatcher on PostgreSQL against a real SMTP server: the messages of a claim the relay accepted are recorded
sent together (one UPDATE, one multi-row outbox INSERT), failures on their own, each announced once."""

import email
import email.policy
import json
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from smtp_servers import Mailbox
from services.common.storage.db import insert_rows, utcnow
from services.common.storage.tables import outbox
from services.notifications.dispatch import Dispatcher
from services.notifications.models import Notification
from services.notifications.settings import NotificationSettings
from test_notification_dispatch import planned, settings_for, submitted


@pytest.fixture
def core(pg_core):
    return pg_core


def rows(core):
    with core.sessionmaker() as session:
        return {r.recipient: r for r in session.execute(select(Notification)).scalars()}


def events(core, event_type):
    with core.engine.connect() as conn:
        return [
            json.loads(r.body) for r in conn.execute(select(outbox.c.body).where(outbox.c.event_type == event_type))
        ]


def statements(core):
    seen = []
    event.listen(core.engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: seen.append(sql))
    return seen


def test_a_claim_is_recorded_sent_in_one_statement_and_each_message_announced_once(core, smtp_server):
    controller, mailbox = smtp_server()
    settings = settings_for(controller.port)
    for n in range(1, 6):
        planned(core, settings, submitted(n, "en"))
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    seen = statements(core)
    assert dispatcher.deliver_due() == 5
    assert len([s for s in seen if s.lstrip().upper().startswith("INSERT INTO OUTBOX")]) == 1
    assert len([s for s in seen if s.lstrip().upper().startswith("UPDATE NOTIFICATIONS")]) == 2  # claim, sent
    assert dispatcher.deliver_due() == 0
    sent = rows(core)
    assert {(r.status, r.attempts, r.last_error) for r in sent.values()} == {("sent", 1, None)}
    announced = sorted(
        (e["data"]["notification_id"], e["data"]["message_id"]) for e in events(core, "notification_sent")
    )
    assert announced == sorted((r.id, r.message_id) for r in sent.values())
    ids = sorted(email.message_from_bytes(c, policy=email.policy.default)["Message-ID"] for *_, c in mailbox.received)
    assert ids == sorted(r.message_id for r in sent.values())


def test_a_failure_in_a_claim_is_recorded_alone_and_the_others_are_sent(core, smtp_server):
    controller, mailbox = smtp_server(Mailbox(defer={"lead2@example.org"}))
    settings = settings_for(controller.port)
    for n in (1, 2, 3):
        planned(core, settings, submitted(n, "en"))
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    assert dispatcher.deliver_due() == 5  # three sent, the deferred one tried three times (no wait between)
    status = {recipient: (r.status, r.attempts) for recipient, r in rows(core).items()}
    assert status == {
        "lead1@example.org": ("sent", 1),
        "lead2@example.org": ("failed", 3),
        "lead3@example.org": ("sent", 1),
    }
    assert len(events(core, "notification_sent")) == 2 and len(events(core, "notification_failed")) == 1
    assert len(mailbox.received) == 2


def test_a_row_another_replica_finished_meanwhile_is_neither_changed_nor_announced_again(core, smtp_server):
    controller, _mailbox = smtp_server()
    settings = settings_for(controller.port)
    for n in (1, 2):
        planned(core, settings, submitted(n, "en"))
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    first, second = dispatcher.claim_due(5)
    assert dispatcher.send(first) and dispatcher.send(second)
    with core.engine.begin() as conn:  # the claim of the second ran out; another replica sent and recorded it
        conn.execute(update(Notification.__table__).where(Notification.id == second.id).values(status="sent"))
    dispatcher.record_sent_persistently([first, second])
    after = {r.id: r for r in rows(core).values()}
    assert after[first.id].status == "sent" and after[first.id].sent_at is not None
    assert after[second.id].status == "sent" and after[second.id].sent_at is None  # left as the other replica left it
    (only,) = events(core, "notification_sent")
    assert only["data"]["notification_id"] == first.id


BATCH_ROWS = 20_000


def test_a_claim_reads_the_rows_it_takes_not_every_pending_row(core):
    """A backlog of pending rows written by planning batches (a batch's rows share next_attempt_at and created_at),
    on a table never analysed (a server without autovacuum): a claim of 20 reads about 20 rows (the pending rows'
    index walked in the claim's order), not every row of a batch (an index of status and next_attempt_at) nor every
    pending row (the bitmap scan and sort the planner picks without statistics), and a row due earlier is still
    claimed first."""
    settings = NotificationSettings.from_config({})
    batch_time, earlier = utcnow(), utcnow() - timedelta(minutes=5)

    def row(n, at):
        return {
            "id": f"n-{n}",
            "source_event_id": f"e-{n}",
            "event_type": "tranche_paid",
            "template": "tranche_paid",
            "recipient": f"lead{n}@example.org",
            "language": "en",
            "context": {},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }

    uow = core.unit_of_work()
    insert_rows(uow.session, Notification, [row(n, batch_time) for n in range(BATCH_ROWS)] + [row("early", earlier)])
    uow.commit()
    plans = []

    def explain(_conn, cursor, statement, parameters, _context, _executemany):
        if statement.lstrip().upper().startswith("SELECT") and "SKIP LOCKED" in statement:
            with cursor.connection.cursor() as explaining:  # same transaction
                explaining.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                plans.append(explaining.fetchone()[0][0]["Plan"])

    event.listen(core.engine, "after_cursor_execute", explain)
    try:
        claimed = Dispatcher(core.unit_of_work(), settings, transport=None).claim_due(20)
    finally:
        event.remove(core.engine, "after_cursor_execute", explain)
    assert len(claimed) == 20 and claimed[0].id == "n-early"
    assert len(plans) == 1 and rows_scanned(plans[0]) <= 40


def rows_scanned(plan: dict) -> int:
    """The rows the plan's scans returned (EXPLAIN ANALYZE's actual rows of every scan node)."""
    own = plan["Actual Rows"] * plan.get("Actual Loops", 1) if plan["Node Type"].endswith("Scan") else 0
    return own + sum(rows_scanned(child) for child in plan.get("Plans", []))
