"""The dispatcher on a real database (SQLite) against a real SMTP server: retry budget, crash recovery."""

import email
import email.policy
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from smtp_servers import Mailbox
from services.common.contracts.events import make_event
from services.common.storage.db import DatabaseCore
from services.common.storage.migrations import upgrade
from services.common.storage.tables import outbox
from services.notifications.delivery import FolderTransport
from services.notifications.dispatch import Dispatcher
from services.notifications.models import Notification
from services.notifications.planning import plan
from services.notifications.settings import NotificationSettings
from tests.support import flows


@pytest.fixture
def core(tmp_path):
    url = f"sqlite:///{tmp_path / 'notifications.db'}"
    upgrade("notifications", url)
    database = DatabaseCore(url, "notifications")
    yield database
    database.dispose()


def settings_for(port, **extra):
    return NotificationSettings.from_config(
        {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_TIMEOUT": 5,
            "NOTIFICATION_RETRY_SECONDS": 0,
            "NOTIFICATION_MAX_ATTEMPTS": 3,
            **extra,
        }
    )


def submitted(n=1, language="fr"):
    data = flows.proposal(n, language=language)
    data = {k: v for k, v in data.items() if k != "idempotency_key"}
    return make_event(
        "proposal_submitted",
        {
            **data,
            "proposal_id": f"p-{n}",
            "reference": f"JMDI-2009-MA-{n:04d}",
            "programme_id": "JMDI",
            "applicant_type": "civil_society_organisation",
            "lead_organisation": data["applicants"][0]["name"],
            "submitted_at": datetime(2009, 1, 15, 14, 30, tzinfo=timezone.utc),
        },
        producer="calls",
    )


def planned(core, settings, event):
    uow = core.unit_of_work()
    plan(uow, event, settings)
    uow.commit()


def rows(core):
    with core.sessionmaker() as session:
        return session.execute(select(Notification)).scalars().all()


def events(core, event_type):
    with core.engine.connect() as conn:
        return conn.execute(select(outbox.c.body).where(outbox.c.event_type == event_type)).all()


def test_a_deferred_message_is_retried_then_failed_and_reported(core, smtp_server):
    controller, mailbox = smtp_server(Mailbox(defer={"lead1@example.org"}))
    settings = settings_for(controller.port)
    planned(core, settings, submitted())
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    assert dispatcher.deliver_due() == 3  # no wait between attempts (retry base 0 s): all in one round
    assert dispatcher.deliver_due() == 0
    (row,) = rows(core)
    assert (row.status, row.attempts) == ("failed", 3) and "451" in row.last_error
    assert len(events(core, "notification_failed")) == 1 and not events(core, "notification_sent")
    assert mailbox.received == []


def test_a_crash_after_the_relay_accepted_is_resent_with_the_same_message_id(core, smtp_server):
    controller, mailbox = smtp_server()
    settings = settings_for(controller.port)
    planned(core, settings, submitted(2, "en"))
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    claimed = dispatcher.claim()
    # the process sends, then dies before recording it: the row stays claimed ...
    from services.notifications.messages import build_message

    settings.transport().send(
        build_message(
            claimed.template,
            claimed.language,
            claimed.context,
            claimed.recipient,
            settings.smtp.sender,
            message_id=claimed.message_id,
        )
    )
    assert dispatcher.deliver_due() == 0  # ... and nobody else takes it while the claim holds
    with core.engine.begin() as conn:  # the claim runs out
        conn.execute(
            update(Notification.__table__).values(next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        )
    assert dispatcher.deliver_due() == 1
    ids = [email.message_from_bytes(c, policy=email.policy.default)["Message-ID"] for _f, _t, c in mailbox.received]
    assert ids == [claimed.message_id, claimed.message_id]  # the duplicate is recognisable
    (row,) = rows(core)
    assert row.status == "sent" and row.attempts == 2 and len(events(core, "notification_sent")) == 1


def test_the_mail_folder_does_not_keep_a_resent_message_twice(core, tmp_path):
    settings = NotificationSettings.from_config({"MAIL_FOLDER": str(tmp_path / "mail")})
    assert isinstance(settings.transport(), FolderTransport)
    planned(core, settings, submitted(3))
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    assert dispatcher.deliver_due() == 1
    with core.engine.begin() as conn:  # as if the first delivery had not been recorded
        conn.execute(
            update(Notification.__table__).values(status="pending", next_attempt_at=datetime.now(timezone.utc))
        )
    assert dispatcher.deliver_due() == 1
    (eml,) = (tmp_path / "mail").glob("*.eml")
    assert "lead3@example.org" in eml.read_text()


def test_due_rows_are_claimed_together_and_each_sent_once(core, smtp_server):
    controller, mailbox = smtp_server()
    settings = settings_for(controller.port)
    for n in (1, 2, 3):
        planned(core, settings, submitted(n, "en"))
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    assert dispatcher.deliver_due(limit=2) == 2  # the limit caps the claim too: the third stays due, unclaimed
    (waiting,) = [r for r in rows(core) if r.status == "pending"]
    assert waiting.attempts == 0 and waiting.message_id is None
    assert dispatcher.deliver_due() == 1
    assert dispatcher.deliver_due() == 0
    assert sorted((r.status, r.attempts) for r in rows(core)) == [("sent", 1)] * 3
    assert len(mailbox.received) == 3 and len(events(core, "notification_sent")) == 3


def test_a_claimed_row_whose_claim_ran_short_is_released_unsent(core, smtp_server):
    controller, mailbox = smtp_server()
    settings = settings_for(controller.port)
    for n in (1, 2):
        planned(core, settings, submitted(n, "en"))
    dispatcher = Dispatcher(core.unit_of_work(), settings, settings.transport())
    first, second = dispatcher.claim_due(5)
    assert dispatcher.claim_due(5) == []  # both reserved
    # the deliveries before the second took so long that its claim no longer covers one more
    short = datetime.now(timezone.utc) + timedelta(seconds=settings.delivery_seconds - 1)
    second.next_attempt_at = short
    with core.engine.begin() as conn:
        conn.execute(update(Notification.__table__).where(Notification.id == second.id).values(next_attempt_at=short))
    assert dispatcher._claim_holds(first) and not dispatcher._claim_holds(second)
    dispatcher.release(second)
    (row,) = [r for r in rows(core) if r.id == second.id]
    assert (row.status, row.attempts) == ("pending", 0)  # due again, the attempt not counted
    assert row.next_attempt_at.replace(tzinfo=timezone.utc) <= datetime.now(timezone.utc)
    assert mailbox.received == []
    dispatcher.deliver(first)  # the first is still ours: sent; the second is due again
    assert dispatcher.deliver_due() == 1
    assert sorted((r.status, r.attempts) for r in rows(core)) == [("sent", 1)] * 2
    assert len(mailbox.received) == 2


def test_a_release_after_the_claim_ran_out_and_another_replica_took_the_row_changes_nothing(core, smtp_server):
    controller, _mailbox = smtp_server()
    settings = settings_for(controller.port)
    planned(core, settings, submitted(1, "en"))
    ours = Dispatcher(core.unit_of_work(), settings, settings.transport())
    (claimed,) = ours.claim_due(5)
    with core.engine.begin() as conn:  # the claim runs out ...
        conn.execute(
            update(Notification.__table__).values(next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        )
    other = Dispatcher(core.unit_of_work(), settings, settings.transport())
    (taken,) = other.claim_due(5)  # ... and another replica claims the row
    assert taken.id == claimed.id and taken.attempts == 2
    ours.release(claimed)
    (row,) = rows(core)
    assert row.attempts == 2 and row.next_attempt_at.replace(tzinfo=timezone.utc) > datetime.now(timezone.utc)
