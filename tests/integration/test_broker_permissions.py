"""The broker is for services only, on the real RabbitMQ with deploy/rabbitmq's generated definitions (throwaway
vhost and users): who may bind to nameko-rpc, publish which routing keys, claim which user_id; and the services,
each on its own broker user, applying an event only from its producer."""

import json
import urllib.request
import uuid
from urllib.parse import quote

import amqp
import pytest
from sqlalchemy import text

from services.common.contracts.events import make_event
from services.common.contracts.topology import SERVICES
from services.common.service.rpc import ClusterClient
from services.common.values.errors import Conflict, NotAllowed
from tests.support.infra import ServiceProcess, eventually, free_port
from tests.support.principals import BrokerPrincipals, call_opened
from tests.support.system import StaffClient, System

pytestmark = pytest.mark.integration

REPLY = "rpc.reply-{}-" + str(uuid.uuid4())


@pytest.fixture(scope="module")
def system():
    with System(services=()) as running:
        yield running


@pytest.fixture(scope="module")
def principals(system):
    with BrokerPrincipals(system.broker, system.vhost, f"t{system.id}-") as loaded:
        yield loaded
    assert not loaded.left_behind()


def test_no_principal_but_a_service_can_bind_to_or_read_rpc_requests(principals):
    with principals.probe("gateway") as gateway:
        reply = REPLY.format("gateway")
        assert gateway.declare_reply_queue(reply) and gateway.bind(reply, "nameko-rpc", reply)  # its own replies
        for key in ("#", "*.*", "grants.*", "grants.approve_payment", REPLY.format("reporting")):
            assert not gateway.bind(reply, "nameko-rpc", key), key
            assert "ACCESS_REFUSED" in gateway.refusal
        for service in SERVICES:
            assert not gateway.consume(f"rpc-{service}")
        assert not gateway.declare_reply_queue("gateway-tap"), "declares nothing but its reply queues"
    with principals.probe("jmdi-monitoring") as monitoring:
        assert not monitoring.declare_reply_queue(REPLY.format("jmdi-monitoring"))
        assert not any(monitoring.consume(f"rpc-{service}") for service in SERVICES)
    with principals.probe("calls") as calls:  # a service taps nobody else's requests either
        own_reply = REPLY.format("calls")
        assert calls.declare_reply_queue(own_reply)
        for key in ("#", "grants.*", "grants.approve_payment"):
            assert not calls.bind(own_reply, "nameko-rpc", key), key
        assert not calls.consume("rpc-grants")


def test_a_service_cannot_publish_another_services_event_or_rpc(principals):
    with principals.probe("calls") as calls:
        assert calls.publish("calls.events", "call_opened")  # its own event: allowed (so a refusal means something)
        assert not calls.publish("grants.events", "tranche_paid")
        assert not calls.publish("calls.events", "tranche_paid"), "another producer's event type on its exchange"
        assert not calls.publish("nameko-rpc", "grants.approve_payment")
        assert not calls.publish("nameko-rpc", "grants.ledger")
    with principals.probe("reporting") as reporting:
        assert reporting.publish("nameko-rpc", "grants.ledger")  # the one call it is entitled to
        assert reporting.publish("nameko-rpc", REPLY.format("notifications"))  # replies to its caller
        assert not reporting.publish("nameko-rpc", "grants.ledger.x")
        assert not reporting.publish("nameko-rpc", "grants.approve_payment")
        assert not reporting.publish("nameko-rpc", "calls.submit_proposal")
        assert not reporting.publish("nameko-rpc", REPLY.format("calls"))
        assert not reporting.publish("grants.events", "tranche_paid")
    with principals.probe("gateway") as gateway:
        assert gateway.publish("nameko-rpc", "grants.list_grants")  # a staff operation
        assert not gateway.publish("nameko-rpc", "grants.unknown_operation")
        assert not gateway.publish("grants.events", "tranche_paid")
        assert not gateway.publish("calls.events", "call_opened")


def test_an_event_with_a_forged_user_id_is_refused_by_the_broker(principals):
    event = call_opened("FORGED-UID")
    with principals.probe("calls") as calls:
        assert calls.publish("calls.events", "call_opened", "{}", user_id=principals.user("calls"))
        assert not calls.publish("calls.events", "call_opened", "{}", user_id=principals.user("grants"))
        assert "PRECONDITION_FAILED" in calls.refusal and "user_id" in calls.refusal
    with principals.probe("grants") as grants:
        assert not grants.publish("grants.events", "tranche_paid", str(event.body), user_id=principals.user("calls"))


@pytest.fixture(scope="module")
def services(system, principals):
    """grants (per-event handlers) and reporting (batch handler), each on its own broker user, producer check on."""
    for queue in principals.definitions["queues"]:  # the probes' messages are not requests or events to apply
        system.broker.api("DELETE", f"queues/{quote(system.vhost, safe='')}/{quote(queue['name'], safe='')}/contents")
    for service in ("grants", "reporting"):
        env = system.service_env(
            service,
            AMQP_URI=principals.amqp_uri(service),
            DECLARE_TOPOLOGY="false",
            EVENT_PRODUCER_CHECK="true",
            EVENT_PRODUCER_USER_PREFIX=principals.prefix,
        )
        system.processes[service] = ServiceProcess(service, env, system.log_dir).start()
    client = gateway_client(system, principals, ["programme_manager"])
    try:
        for service in ("grants", "reporting"):
            eventually(lambda: healthy(system, client, service), 120, 0.5, f"{service} ready on its own user")
        yield client
    finally:
        client.stop()


def gateway_client(system, principals, roles):
    """Staff calls the way the gateway makes them: as the gateway's broker user, on its named reply queues."""
    token = system.token("maria.pm", roles)
    return ClusterClient(
        {"AMQP_URI": principals.amqp_uri("gateway"), "DECLARE_TOPOLOGY": False},
        "gateway",
        context_data={"authorization": token},
        timeout=30,
    )


def healthy(system, client, service):
    process = system.processes[service]
    if not process.running:
        raise AssertionError(f"{service} exited:\n{process.log_tail()}")
    try:
        return getattr(client.start(), service).health()["status"] == "ok"
    except Exception:
        return False


def publish_as(probe, event, routing_key=None, **properties):
    return probe.publish(
        "calls.events",
        routing_key or event.event_type,
        json.dumps(event.body),
        message_id=event.event_id,
        delivery_mode=2,
        **properties,
    )


def refused_letters(system, service):
    with system.db(service).connect() as conn:
        return list(conn.execute(text("SELECT body, error, status FROM dead_letters WHERE status = 'refused'")))


def inbox_ids(system, service):
    with system.db(service).connect() as conn:
        return {row[0] for row in conn.execute(text("SELECT event_id FROM inbox"))}


def test_an_event_from_the_wrong_producer_user_is_dead_lettered_and_counted_not_applied(system, principals, services):
    genuine = call_opened("GENUINE-2008")
    unproven, impersonated = call_opened("UNPROVEN-2008"), call_opened("ADMIN-2008")
    smuggled = make_event(
        "call_closed",
        {"call_id": "GENUINE-2008", "closed_at": genuine.data["deadline"], "proposals": 0},
        producer="calls",
    )
    admin = system.broker  # the vhost's administrator: any exchange, any routing key — but not the calls user
    with principals.probe("calls") as calls:
        assert publish_as(calls, genuine, user_id=principals.user("calls"))
        # the calls user itself, smuggling one of its event types into the queue of another
        assert publish_as(calls, smuggled, routing_key="call_opened", user_id=principals.user("calls"))
    conn = amqp.Connection(
        host=f"{admin.host}:{admin.port}",
        userid=admin.user,
        password=admin.password,
        virtual_host=system.vhost,
        confirm_publish=True,
    )
    conn.connect()
    try:
        channel = conn.channel()
        for event, properties in ((unproven, {}), (impersonated, {"user_id": admin.user})):
            channel.basic_publish(
                amqp.Message(
                    json.dumps(event.body), content_type="application/json", message_id=event.event_id, **properties
                ),
                exchange="calls.events",
                routing_key="call_opened",
            )
    finally:
        conn.close()

    for service in ("grants", "reporting"):
        eventually(lambda: genuine.event_id in inbox_ids(system, service), 90, 0.5, f"{service} applied it")
        letters = eventually(
            lambda: len(refused_letters(system, service)) >= 3 and refused_letters(system, service),
            90,
            0.5,
            f"{service} refused three",
        )
        assert len(letters) == 3
        errors = " | ".join(letter.error for letter in letters)
        assert f"call_opened carries no user_id: no proof it was published by '{principals.user('calls')}'" in errors
        assert f"published by broker user '{admin.user}', not by '{principals.user('calls')}'" in errors
        assert "a call_closed event on the queue of call_opened" in errors
        applied = inbox_ids(system, service)
        assert not {unproven.event_id, impersonated.event_id, smuggled.event_id} & applied, "never applied"
        with urllib.request.urlopen(system.metrics_url(service), timeout=10) as response:
            metrics = response.read().decode()
        counted = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("jmdi_events_refused_total{")
            and f'service="{service}"' in line
            and 'event_type="call_opened"' in line
        ]
        assert counted == [2.0], counted

    # kept as evidence, never replayed
    pm = services.start()
    held = pm.grants.list_dead_letters(status="refused")
    assert len(held) == 3 and all(letter["status"] == "refused" for letter in held)
    with pytest.raises(Conflict, match="dead_letter.not_held"):
        pm.grants.replay_dead_letter(id=held[0]["id"])


def test_the_gateway_on_its_own_broker_user_forwards_staff_calls(system, principals, services):
    """The real gateway, as compose and Kubernetes run it: its least-privilege broker user, DECLARE_TOPOLOGY=false,
    its replies on its named reply queues."""
    port = free_port()
    env = system.service_env(
        "gateway",
        AMQP_URI=principals.amqp_uri("gateway"),
        DECLARE_TOPOLOGY="false",
        GATEWAY_PORT=str(port),
        GATEWAY_METRICS_PORT=str(free_port()),
    )
    gateway = ServiceProcess("gateway", env, system.log_dir)
    gateway.log_path = system.log_dir / "gateway-least-privilege.log"
    gateway.start()
    try:
        url = f"http://127.0.0.1:{port}"

        def answers():
            if not gateway.running:
                raise AssertionError(f"the gateway exited:\n{gateway.log_tail()}")
            try:
                return StaffClient(url, system.token("olga.audit", ["auditor"])).grants.health()
            except Exception:
                return None

        health = eventually(answers, 120, 0.5, "the gateway answers on its own user")
        assert (health["service"], health["status"]) == ("grants", "ok")
        with pytest.raises(NotAllowed, match="may not grants.approve_payment"):
            StaffClient(url, system.token("olga.audit", ["auditor"])).grants.approve_payment(payment_id="P-1")
        assert StaffClient(url, system.token("ec.reporter", ["ec_reporter"])).reporting.list_reports() == []
    finally:
        gateway.stop()
