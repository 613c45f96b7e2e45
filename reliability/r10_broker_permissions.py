"""R10: the broker is for services only. The generated least-privilege definitions (deploy/rabbitmq) are loaded
into a throwaway vhost with generated users, and every principal tries what it may not:
- consume another service's queues; publish to another service's events exchange, or another producer's event
  type on its own; publish RPC routing keys it is not entitled to (the gateway: staff operations only; reporting:
  grants.ledger; notifications: reporting.get_report); bind anything to nameko-rpc but its own reply keys;
  name another broker user in an event's user_id. Each is refused; the same principal's own resources are usable
  (otherwise a refusal would prove nothing).
Then the four services run on that vhost with their own users (DECLARE_TOPOLOGY=false, event producer check on),
staff calls come the gateway's way (its broker user, its named reply queues), one proposal reaches every consumer,
reporting reconciles with the grants ledger as itself, and an event published by a non-producer (the vhost
administrator) is refused by every consumer — kept as `refused`, counted, never applied. Users and vhost are
removed."""

from __future__ import annotations

import json
from urllib.parse import quote

import amqp

from services.common.contracts.topology import PRODUCED, SERVICES, SUBSCRIPTIONS, exchange_name, subscriptions
from services.common.security.roles import SERVICE_CALLS
from tests.support import flows
from tests.support.infra import ServiceProcess, eventually
from tests.support.principals import BrokerPrincipals, call_opened

from .scenario import scenario
from .staff import Caller
from .testbed import Testbed

REPLY = "rpc.reply-{}-00000000-0000-4000-8000-000000000010"


def queues_of(service: str) -> list[str]:
    return [f"rpc-{service}", *(q for consumer, _, _, q in subscriptions() if consumer == service)]


class Tally:
    def __init__(self, outcome):
        self.outcome, self.refused, self.allowed = outcome, 0, 0

    def must_refuse(self, done: bool, what: str):
        self.refused += not done
        self.outcome.check(not done, f"allowed: {what}")

    def must_allow(self, done: bool, what: str):
        self.allowed += done
        self.outcome.check(done, f"refused its own: {what}")


@scenario(10, "broker permissions")
def run(outcome, sizes, log, **_):
    with Testbed(log, services=()) as bed:
        system = bed.system
        with BrokerPrincipals(system.broker, system.vhost, f"rel{system.id}-") as principals:
            log(
                f"loaded definitions into {system.vhost}: {len(principals.definitions['users'])} users, "
                f"{len(principals.definitions['topic_permissions'])} topic permissions"
            )
            tally = Tally(outcome)
            try:
                probe_services(tally, principals)
                probe_gateway_and_monitoring(tally, principals)
                outcome.figures.update({"refused": tally.refused, "allowed": tally.allowed})
                log(f"permission probes: {tally.refused} refused as they must be, {tally.allowed} own usable")
                purge(system, principals)
                outcome.figures["flow"] = services_run_with_own_users(outcome, bed, principals, log)
            finally:
                for process in system.processes.values():
                    process.stop()  # before their users go, or they spend their stop reconnecting
        left = principals.left_behind()
        outcome.check(not left, f"users left behind: {left}")


def probe_services(tally: Tally, principals):
    for user in SERVICES:
        with principals.probe(user) as probe:
            for owner in SERVICES:
                own = owner == user
                for queue in queues_of(owner):
                    (tally.must_allow if own else tally.must_refuse)(probe.consume(queue), f"{user} consumes {queue}")
                own_type = PRODUCED[owner][0]
                (tally.must_allow if own else tally.must_refuse)(
                    probe.publish(exchange_name(owner), own_type), f"{user} publishes {own_type} on {owner}.events"
                )
            for other, types in PRODUCED.items():
                if other != user:
                    tally.must_refuse(
                        probe.publish(exchange_name(user), types[0]),
                        f"{user} publishes {other}'s {types[0]} on its own exchange",
                    )
            tally.must_refuse(
                probe.publish(exchange_name(user), PRODUCED[user][0], user_id=principals.user("gateway")),
                f"{user} publishes with another user's user_id",
            )
            entitled = SERVICE_CALLS.get(user, ())
            for key in entitled:
                tally.must_allow(probe.publish("nameko-rpc", key), f"{user} calls {key}")
            for key in ("grants.approve_payment", "calls.open_call", "reporting.get_report", "grants.ledger"):
                if key not in entitled:
                    tally.must_refuse(probe.publish("nameko-rpc", key), f"{user} publishes RPC {key}")
            reply = REPLY.format(user)
            tally.must_allow(probe.declare_reply_queue(reply), f"{user} declares its reply queue")
            for key in ("#", "*.*", *(f"{other}.*" for other in SERVICES if other != user)):
                tally.must_refuse(probe.bind(reply, "nameko-rpc", key), f"{user} binds nameko-rpc with {key}")
            for producer in SUBSCRIPTIONS.get(user, {}):
                tally.must_refuse(
                    probe.bind(reply, exchange_name(producer), "#"), f"{user} binds {producer}.events with #"
                )


def probe_gateway_and_monitoring(tally: Tally, principals):
    with principals.probe("gateway") as gateway:
        reply = REPLY.format("gateway")
        tally.must_allow(
            gateway.declare_reply_queue(reply) and gateway.bind(reply, "nameko-rpc", reply),
            "gateway binds its own replies",
        )
        tally.must_allow(gateway.publish("nameko-rpc", "grants.list_grants"), "gateway calls a staff operation")
        for key in ("#", "*.*", "grants.*", "grants.approve_payment", REPLY.format("reporting")):
            tally.must_refuse(gateway.bind(reply, "nameko-rpc", key), f"gateway binds nameko-rpc with {key}")
        for service in SERVICES:
            tally.must_refuse(gateway.consume(f"rpc-{service}"), f"gateway consumes rpc-{service}")
            tally.must_refuse(
                gateway.publish(exchange_name(service), PRODUCED[service][0]), f"gateway publishes {service}'s event"
            )
        tally.must_refuse(
            gateway.publish("nameko-rpc", "grants.no_such_operation"), "gateway publishes a non-operation"
        )
    with principals.probe("jmdi-monitoring") as monitoring:
        tally.must_refuse(monitoring.declare_reply_queue(REPLY.format("jmdi-monitoring")), "monitoring declares")
        for service in SERVICES:
            tally.must_refuse(monitoring.consume(f"rpc-{service}"), f"monitoring consumes rpc-{service}")


def purge(system, principals):
    """The probes' messages are neither requests nor events: empty every queue before the services start."""
    for queue in principals.definitions["queues"]:
        system.broker.api("DELETE", f"queues/{quote(system.vhost, safe='')}/{quote(queue['name'], safe='')}/contents")


def services_run_with_own_users(outcome, bed, principals, log) -> str:
    system = bed.system
    for service in SERVICES:
        env = system.service_env(
            service,
            AMQP_URI=principals.amqp_uri(service),
            DECLARE_TOPOLOGY="false",
            EVENT_PRODUCER_CHECK="true",
            EVENT_PRODUCER_USER_PREFIX=principals.prefix,
        )
        system.processes[service] = ServiceProcess(service, env, system.log_dir).start()
    pm = Caller(principals.amqp_uri("gateway"), system.token("maria.pm", ["programme_manager"]), principal="gateway")
    auditor = Caller(principals.amqp_uri("gateway"), system.token("au.claire", ["auditor"]), principal="gateway")
    try:
        for service in SERVICES:
            eventually(lambda: ready(system, pm, service), 120, 0.5, f"{service} ready on its own user")
        pm.call("calls", "load_programme", {"programme": flows.programme()})
        pm.call("calls", "create_call", flows.call())
        pm.call("calls", "open_call", {"call_id": "JMDI-2008"})
        pm.call("calls", "submit_proposal", flows.proposal(1, country="MA"))
        expected = {"grants": 2, "notifications": 2, "reporting": 2}
        eventually(lambda: all(system.inbox_count(s) >= n for s, n in expected.items()), 90, 0.5, "events applied")
        reconciled = auditor.call("reporting", "reconcile", {})
        outcome.check(reconciled.get("differences") == [], f"reconcile as reporting's own identity: {reconciled}")
        forged = non_producer_event(system)
        eventually(lambda: all(refused_count(system, s) >= 1 for s in expected), 90, 0.5, "forged event refused")
        applied = [s for s in expected if inbox_has(system, s, forged.event_id)]
        outcome.check(not applied, f"a forged event was applied by {applied}")
    except AssertionError as exc:
        outcome.fail(f"services on least-privilege users: {exc}")
        return "stuck"
    finally:
        pm.close()
        auditor.close()
    held = sum(system.held_dead_letters(s) for s in expected)
    outcome.check(held == 0, f"{held} dead letters held with least-privilege users")
    log(
        "services ran on their own users: staff through the gateway's user, the proposal reached every consumer, "
        "reporting reconciled as itself, a forged event was refused by all"
    )
    return "ok"


def ready(system, caller, service) -> bool:
    if not system.processes[service].running:
        raise AssertionError(f"{service} exited:\n{system.processes[service].log_tail()}")
    try:
        return caller.call(service, "health")["status"] == "ok"
    except Exception:  # not consuming yet
        return False


def non_producer_event(system):
    """A valid call_opened, published by the vhost's administrator (no user_id: RabbitMQ vouches for nobody)."""
    event = call_opened("FORGED-2008")
    broker = system.broker
    conn = amqp.Connection(
        host=f"{broker.host}:{broker.port}",
        userid=broker.user,
        password=broker.password,
        virtual_host=system.vhost,
        confirm_publish=True,
    )
    conn.connect()
    try:
        conn.channel().basic_publish(
            amqp.Message(json.dumps(event.body), content_type="application/json", message_id=event.event_id),
            exchange="calls.events",
            routing_key="call_opened",
        )
    finally:
        conn.close()
    return event


def refused_count(system, service) -> int:
    return system.scalar(service, "SELECT count(*) FROM dead_letters WHERE status = 'refused'")


def inbox_has(system, service, event_id) -> bool:
    return bool(system.scalar(service, f"SELECT count(*) FROM inbox WHERE event_id = '{event_id}'"))
