"""No message can crash a service (services/common/messaging/guard.py): every kind of malformed message — no or an unknown
content type, a pickle, an undecodable body, over the size limit, an RPC without reply_to or correlation id — sent
to every service's RPC queue and to event queues (per-event handlers and reporting's batch consumer) is logged
once, counted, dead-lettered once into jmdi.dead-letters, and every service keeps serving. Real processes, real
broker."""

from collections import Counter

import pytest

from services.common.contracts.topology import SERVICES, SUBSCRIPTIONS, exchange_name, queue_name
from tests.support import malformed
from tests.support.infra import eventually
from tests.support.system import System

pytestmark = pytest.mark.integration

LIMIT = 65_536


def metric_by_label(system, service: str, name: str, label: str) -> Counter:
    import urllib.request

    with urllib.request.urlopen(system.metrics_url(service), timeout=10) as response:
        lines = response.read().decode().splitlines()
    found = Counter()
    for line in lines:
        if line.startswith(name + "{"):
            labels = dict(part.split("=", 1) for part in line[len(name) + 1 : line.index("}")].split(","))
            found[labels[label].strip('"')] += float(line.rsplit(" ", 1)[1])
    return found


def event_targets():
    """One event type per producer that each of its consumers handles, and the queues it reaches."""
    targets, queues = [], {}
    for producer, event_type in (("calls", "proposal_submitted"), ("grants", "tranche_paid")):
        consumers = [c for c, sources in SUBSCRIPTIONS.items() if event_type in sources.get(producer, ())]
        targets.append((exchange_name(producer), event_type, False))
        queues[event_type] = [queue_name(producer, event_type, c) for c in consumers]
    return targets, queues


def test_every_malformed_message_is_dead_lettered_once_and_every_service_keeps_serving():
    with System(extra_env={"MESSAGE_MAX_BYTES": str(LIMIT)}) as system:
        pids = {s: system.processes[s].proc.pid for s in SERVICES}
        rpc_targets = [("nameko-rpc", f"{service}.health", True) for service in SERVICES]
        targets, event_queues = event_targets()
        sent = malformed.send_all(system.amqp_uri, rpc_targets + targets, large_bytes=LIMIT + 1000)

        expected = Counter()
        for item in sent:
            queues = (
                [f"rpc-{item.routing_key.split('.')[0]}"]
                if item.exchange == "nameko-rpc"
                else event_queues[item.routing_key]
            )
            for queue in queues:
                expected[(item.message_id, queue)] += 1
        eventually(
            lambda: malformed.dead_letter_count(system.amqp_uri) >= sum(expected.values()),
            60,
            0.5,
            "every malformed message dead-lettered",
        )
        ops = system.client("ops", ["programme_manager"])
        for service in SERVICES:  # every one still serves, the same process as before
            assert getattr(ops, service).health()["status"] == "ok"
            assert system.processes[service].running and system.processes[service].proc.pid == pids[service]
        letters = Counter(malformed.dead_letters(system.amqp_uri))
        assert letters == expected, "each message dead-lettered exactly once, from each queue it reached"

        # counted per service and reason
        for service in SERVICES:
            reasons = metric_by_label(system, service, "jmdi_malformed_messages_total", "reason")
            rpc_kinds = Counter(malformed.KINDS[i.kind] for i in sent if i.routing_key == f"{service}.health")
            event_kinds = Counter()
            for item in sent:
                if item.exchange != "nameko-rpc":
                    event_kinds[malformed.KINDS[item.kind]] += sum(
                        1 for q in event_queues[item.routing_key] if q.endswith(f"--{service}.on_{item.routing_key}")
                    )
            assert reasons == rpc_kinds + event_kinds, service
            # logged once each, never with the body
            log = system.processes[service].log_path.read_text(errors="replace")
            assert log.count("malformed message on") == sum((rpc_kinds + event_kinds).values()), service
            assert "xxxxxxxxxx" not in log
        # nothing left behind in the services' queues
        eventually(
            lambda: all(
                q.get("messages", 0) == 0
                for name, q in system.broker.queues(system.vhost).items()
                if name.startswith(("rpc-", "evt-"))
            ),
            30,
            1,
            "the services' queues empty",
        )


def test_queues_of_an_earlier_version_are_replaced_when_empty_in_local_mode_else_the_start_says_what_to_do(monkeypatch):
    from kombu import Connection, Exchange, Queue

    from services.common.service.entrypoints import declare_topology
    from services.common.messaging.guard import queue_arguments
    from tests.support.infra import Broker, run_id

    broker = Broker()
    vhost = f"jmdi-test-{run_id()}"
    uri = broker.create_vhost(vhost)
    try:
        with Connection(uri) as conn:  # as an earlier version declared them: no arguments, one holding a message
            channel = conn.channel()
            Queue(
                "rpc-calls",
                exchange=Exchange("nameko-rpc", type="topic", durable=True),
                routing_key="calls.*",
                durable=True,
            )(channel).declare()
            held = queue_name("calls", "call_opened", "grants")
            Queue(
                held,
                exchange=Exchange("calls.events", type="topic", durable=True),
                routing_key="call_opened",
                durable=True,
            )(channel).declare()
            channel.basic_publish(
                channel.prepare_message(b"{}", content_type="application/json"),
                exchange="calls.events",
                routing_key="call_opened",
            )
        monkeypatch.setenv("JMDI_LOCAL_MODE", "false")
        with pytest.raises(SystemExit, match="queue rpc-calls exists with other arguments"):
            declare_topology(uri, queue_arguments({}), {}, "calls")
        monkeypatch.setenv("JMDI_LOCAL_MODE", "true")
        with pytest.raises(SystemExit, match=f"queue {held} exists with other arguments"):
            declare_topology(
                uri, queue_arguments({}), {}, "calls"
            )  # rpc-calls (empty) replaced; the one with a message kept
        queues = broker.queues(vhost)
        assert queues["rpc-calls"]["arguments"] == queue_arguments({})
        assert queues[held]["arguments"] == {}
    finally:
        broker.delete_vhost(vhost)


def test_a_malformed_reply_is_dropped_and_counted_and_the_gateway_keeps_its_reply_queue():
    """Replies come without acks (services/common/service/rpc.py NamedReplyListener): a malformed one is dropped,
    never rejected, since rejecting a delivery made without ack closes the channel; the gateway keeps consuming
    the same reply queue on the same connection."""
    with System() as system:
        ops = system.client("ops", ["programme_manager"])
        assert ops.calls.health()["status"] == "ok"
        (reply_queue,) = [q for q in system.broker.queues(system.vhost) if q.startswith("rpc.reply-gateway-")]
        kinds = ("no_content_type", "unknown_content_type", "pickle", "undecodable")
        malformed.send_all(system.amqp_uri, [("nameko-rpc", reply_queue, False)], large_bytes=0, kinds=kinds)

        expected = Counter(malformed.KINDS[kind] for kind in kinds)
        eventually(
            lambda: metric_by_label(system, "gateway", "jmdi_malformed_messages_total", "reason") == expected,
            30,
            0.5,
            "each malformed reply counted by the gateway",
        )
        for _ in range(3):  # the gateway still forwards, its replies on the same queue
            assert ops.calls.health()["status"] == "ok"
        queues = system.broker.queues(system.vhost)
        assert [q for q in queues if q.startswith("rpc.reply-gateway-")] == [reply_queue]
        assert queues[reply_queue].get("messages", 0) == 0
        log = system.processes["gateway"].log_path.read_text(errors="replace")
        assert log.count("malformed message on") == len(kinds)
        assert "broker connection lost" not in log
