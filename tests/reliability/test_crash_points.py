"""Each crash window of the delivery path hit on purpose in a real service process (services/common/messaging/crashpoints.py),
on the real broker and PostgreSQL: after the restart, the proposal is everywhere it must be and its effect — the
e-mail its lead receives, counted at the SMTP server — happened exactly once.

The windows: the relay dies holding committed rows before publishing them; the relay dies after the broker
confirmed them, before marking them sent; the broker refuses (nacks) a publish; a confirm never comes; a consumer
dies after committing an event's change, before acking it (per-event handler and batch consumer)."""

import time
import urllib.request

import pytest
from kombu import Connection

from reliability.mailsink import MailSink
from services.common.contracts.topology import SERVICES
from services.common.messaging.crashpoints import CRASH_STATUS
from tests.support import flows
from tests.support.infra import eventually, run_id
from tests.support.system import System

pytestmark = pytest.mark.reliability

CONSUMERS = ("grants", "notifications", "reporting")


@pytest.fixture(scope="module")
def sink():
    server = MailSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(sink):
    with System(
        extra_env={**sink.env(), "NOTIFICATIONS_DELIVERY_SECONDS": "0.3", "OUTBOX_SWEEP_SECONDS": "0.5"}
    ) as running:
        pm = running.client("maria.pm", ["programme_manager"])
        pm.calls.load_programme(programme=flows.programme())
        pm.calls.create_call(**flows.call())
        pm.calls.open_call(call_id="JMDI-2008")
        yield running


def arm(system, service: str, point: str, folder) -> None:
    """Restart `service` with one crash point armed (it fires once)."""
    system.processes[service].stop()
    system.start_with(
        service, {"JMDI_TEST_MODE": "true", "JMDI_TEST_CRASH_AT": point, "JMDI_TEST_CRASH_MARKERS": str(folder)}
    )
    system.wait_ready(service)


def crashed_and_restarted(system, service: str, folder, point: str):
    """The process died at the point (its own exit status, the marker left), then runs again as configured."""
    eventually(lambda: not system.processes[service].running, 60, 0.2, f"{service} crashed at {point}")
    assert system.processes[service].proc.returncode == CRASH_STATUS
    assert (folder / point).exists()
    system.start_with(service)
    system.wait_ready(service)


def submit_until_answered(system, n: int) -> dict:
    """A careful client: the same submission (same idempotency key) until an answer comes."""
    client = system.client("maria.pm", ["programme_manager"], timeout=5)
    deadline = time.monotonic() + 120
    while True:
        try:
            return client.calls.submit_proposal(**flows.proposal(n))
        except Exception:  # no answer (the service died) or connection lost: ask again
            if time.monotonic() > deadline:
                raise
            client = system.client("maria.pm", ["programme_manager"], timeout=5)


def duplicates_absorbed(system, service: str) -> float:
    with urllib.request.urlopen(system.metrics_url(service), timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("jmdi_inbox_duplicates_total{")
    )


def settled(system, sink) -> bool:
    queues = system.broker.queues(system.vhost)
    return (
        all(system.pending_outbox(s) == 0 for s in SERVICES)
        and system.scalar("notifications", "SELECT count(*) FROM notifications WHERE status = 'pending'") == 0
        and all(q.get("messages", 0) == 0 for name, q in queues.items() if name.startswith("evt-"))
    )


def wait_settled(system, sink):
    """Settled for three polls two seconds apart: the broker's queue figures lag by up to five seconds."""
    streak = 0

    def steady():
        nonlocal streak
        streak = streak + 1 if settled(system, sink) else 0
        return streak >= 3

    eventually(steady, 120, 2.0, "system settled")


def exactly_once_everywhere(system, sink, proposal: dict, n: int):
    pid = proposal["proposal_id"]
    held = {
        "calls": f"SELECT count(*) FROM proposals WHERE id = '{pid}'",
        "grants": f"SELECT count(*) FROM proposals WHERE proposal_id = '{pid}'",
        "notifications": f"SELECT count(*) FROM proposals WHERE proposal_id = '{pid}'",
        "reporting": f"SELECT count(*) FROM proposal_facts WHERE proposal_id = '{pid}'",
    }
    eventually(lambda: all(system.scalar(s, q) == 1 for s, q in held.items()), 90, 0.3, "proposal everywhere")
    lead = f"lead{n}@example.org"
    eventually(lambda: sink.received_by_kind().get((lead, "submission_receipt")), 90, 0.3, "receipt received")
    wait_settled(system, sink)
    (message_id,) = sink.received_by_kind()[(lead, "submission_receipt")]  # one distinct message ...
    assert sink.message_ids[message_id] == 1  # ... received once
    # one notification planned per recipient and template for this proposal (no constraint on this key)
    assert (
        system.scalar(
            "notifications",
            f"SELECT count(*) FROM notifications WHERE proposal_id = '{pid}' AND template = 'submission_receipt'",
        )
        == 1
    )


def test_the_relay_dying_between_the_commit_and_the_publish(system, sink, tmp_path):
    arm(system, "calls", "outbox.before_publish", tmp_path)
    proposal = submit_until_answered(system, 501)
    crashed_and_restarted(system, "calls", tmp_path, "outbox.before_publish")
    exactly_once_everywhere(system, sink, proposal, 501)


def test_the_relay_dying_after_the_publish_before_marking_it_sent(system, sink, tmp_path):
    before = {s: duplicates_absorbed(system, s) for s in CONSUMERS}
    arm(system, "calls", "outbox.after_publish", tmp_path)
    proposal = submit_until_answered(system, 502)
    crashed_and_restarted(system, "calls", tmp_path, "outbox.after_publish")
    # the restarted relay published it again: every consumer receives the copy and recognises it ...
    eventually(
        lambda: all(duplicates_absorbed(system, s) > before[s] for s in CONSUMERS), 90, 0.5, "the copies recognised"
    )
    exactly_once_everywhere(system, sink, proposal, 502)  # ... and its effects happened once


def test_the_broker_refusing_a_publish(system, sink):
    full = f"refuses-everything-{run_id()}"  # RabbitMQ nacks what a full reject-publish queue cannot take
    with Connection(system.amqp_uri) as conn:
        channel = conn.channel()
        channel.queue_declare(full, durable=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        channel.queue_bind(full, "calls.events", routing_key="proposal_submitted")
    try:
        proposal = submit_until_answered(system, 503)
        refused = (
            f"SELECT attempts FROM outbox WHERE event_type = 'proposal_submitted' AND published_at IS NULL "
            f"AND body::json -> 'data' ->> 'proposal_id' = '{proposal['proposal_id']}'"
        )
        eventually(lambda: (system.scalar("calls", refused) or 0) >= 2, 60, 0.3, "the publish refused and retried")
    finally:
        with Connection(system.amqp_uri) as conn:
            conn.channel().queue_delete(full)
    exactly_once_everywhere(system, sink, proposal, 503)


def test_a_confirm_that_never_comes(system, sink, tmp_path):
    arm(system, "calls", "publisher.no_confirm", tmp_path)
    try:
        proposal = submit_until_answered(system, 504)
        # after the confirm timeout the relay gives up on that publish and sends the row again
        retried = (
            f"SELECT attempts FROM outbox WHERE body::json -> 'data' ->> 'proposal_id' = "
            f"'{proposal['proposal_id']}' AND event_type = 'proposal_submitted'"
        )
        eventually(lambda: (system.scalar("calls", retried) or 0) >= 1, 60, 0.5, "the unconfirmed publish retried")
        exactly_once_everywhere(system, sink, proposal, 504)
        assert (tmp_path / "publisher.no_confirm").exists()
    finally:
        system.processes["calls"].stop()
        system.start_with("calls")
        system.wait_ready("calls")


def test_a_consumer_dying_after_applying_before_its_ack(system, sink, tmp_path):
    # grants consumes one event at a time (notifications and reporting in batches: the test below)
    arm(system, "grants", "inbox.after_apply", tmp_path)
    proposal = submit_until_answered(system, 505)
    crashed_and_restarted(system, "grants", tmp_path, "inbox.after_apply")
    # redelivered to the restarted process and recognised (its counter starts at 0 with the process) ...
    eventually(lambda: duplicates_absorbed(system, "grants") >= 1, 90, 0.5, "the redelivery recognised")
    exactly_once_everywhere(system, sink, proposal, 505)  # ... and its effects happened once


def test_a_batch_consumer_dying_after_its_commit_before_its_ack(system, sink, tmp_path):
    arm(system, "reporting", "batch.after_apply", tmp_path)
    proposal = submit_until_answered(system, 506)
    crashed_and_restarted(system, "reporting", tmp_path, "batch.after_apply")
    eventually(lambda: duplicates_absorbed(system, "reporting") >= 1, 90, 0.5, "the redelivered batch recognised")
    exactly_once_everywhere(system, sink, proposal, 506)


def test_crash_points_are_inert_outside_test_mode(system, sink, tmp_path):
    # the same settings without JMDI_TEST_MODE: nothing fires, nothing is marked, the service keeps running
    system.processes["calls"].stop()
    system.start_with(
        "calls",
        {"JMDI_TEST_CRASH_AT": "outbox.before_publish,outbox.after_publish", "JMDI_TEST_CRASH_MARKERS": str(tmp_path)},
    )
    system.wait_ready("calls")
    try:
        proposal = submit_until_answered(system, 507)
        exactly_once_everywhere(system, sink, proposal, 507)
        assert system.processes["calls"].running and list(tmp_path.iterdir()) == []
    finally:
        system.processes["calls"].stop()
        system.start_with("calls")
        system.wait_ready("calls")


def test_the_notifications_batch_consumer_dying_after_its_commit_before_its_ack(system, sink, tmp_path):
    arm(system, "notifications", "batch.after_apply", tmp_path)
    proposal = submit_until_answered(system, 508)
    crashed_and_restarted(system, "notifications", tmp_path, "batch.after_apply")
    eventually(lambda: duplicates_absorbed(system, "notifications") >= 1, 90, 0.5, "the redelivered batch recognised")
    exactly_once_everywhere(system, sink, proposal, 508)  # planned once, the receipt sent once
