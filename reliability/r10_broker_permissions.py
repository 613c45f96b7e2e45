"""R10: broker permissions. The least-privilege definitions (deploy/rabbitmq/generate_definitions.py) are loaded
into a throwaway vhost with generated users; each service's user must be refused consuming another service's
queues and publishing to another service's events exchange (and may do both on its own — otherwise a refusal
would prove nothing), and the staff user may do neither. Then the four services run on that vhost with their
own users and DECLARE_TOPOLOGY=false, and one proposal reaches every consumer. Users and vhost are removed."""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
from urllib.parse import quote

import amqp
from amqp.exceptions import AccessRefused

from services.common.topology import SERVICES, exchange_name, subscriptions
from tests.support import flows
from tests.support.infra import REPO, Broker, ServiceProcess, eventually

from .scenario import scenario
from .staff import Caller
from .testbed import Testbed

GENERATOR = REPO / "deploy" / "rabbitmq" / "generate_definitions.py"
STAFF_USER = "jmdi-staff"


def definitions(vhost: str, prefix: str, passwords: dict) -> dict:
    args = [sys.executable, str(GENERATOR), "--vhost", vhost, "--user-prefix", prefix, "--output", "-"]
    for user, password in passwords.items():
        args += ["--password", f"{user}={password}"]
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout)


def queues_of(service: str) -> list[str]:
    return [f"rpc-{service}", *(q for consumer, _, _, q in subscriptions() if consumer == service)]


class Probe:
    """One AMQP connection as a user; each attempt on a fresh channel (a refusal closes the channel)."""

    def __init__(self, host: str, port: int, vhost: str, user: str, password: str):
        self.conn = amqp.Connection(host=f"{host}:{port}", userid=user, password=password, virtual_host=vhost,
                                    confirm_publish=True, connect_timeout=10)
        self.conn.connect()

    def consume(self, queue: str) -> bool:
        channel = self.conn.channel()
        try:
            tag = channel.basic_consume(queue=queue, callback=lambda message: None)
            channel.basic_cancel(tag)
            channel.close()
            return True
        except AccessRefused:
            return False

    def publish(self, exchange: str) -> bool:
        channel = self.conn.channel()
        try:
            # a routing key nothing is bound to: an allowed publish delivers nothing
            channel.basic_publish(amqp.Message("{}", content_type="application/json"), exchange=exchange,
                                  routing_key="reliability.probe")
            channel.close()
            return True
        except AccessRefused:
            return False

    def close(self):
        try:
            self.conn.close()
        except Exception:  # already closed by the broker
            pass


@scenario(10, "broker permissions")
def run(outcome, sizes, log, **_):
    with Testbed(log, services=()) as bed:
        broker, vhost = Broker(), bed.system.vhost
        prefix = f"rel{bed.system.id}-"
        passwords = {user: secrets.token_urlsafe(18) for user in (*SERVICES, STAFF_USER)}
        defs = definitions(vhost, prefix, passwords)
        users = [u["name"] for u in defs["users"]]
        try:
            broker.api("POST", "definitions", defs)
            log(f"loaded definitions into {vhost}: {len(users)} users, {len(defs['queues'])} queues")
            refused, allowed = probe_all(outcome, broker, vhost, prefix, passwords, log)
            outcome.figures.update({"refused": refused, "allowed": allowed})
            outcome.figures["flow"] = services_run_with_own_users(outcome, bed, broker, prefix, passwords, log)
        finally:
            for process in bed.system.processes.values():
                process.stop()  # before their users go, or they spend their stop reconnecting
            for user in users:
                broker.api("DELETE", f"users/{quote(user, safe='')}")
        left = [u["name"] for u in broker.api("GET", "users") if u["name"].startswith(prefix)]
        outcome.check(not left, f"users left behind: {left}")


def probe_all(outcome, broker, vhost, prefix, passwords, log) -> tuple[int, int]:
    refused = allowed = 0
    for user in (*SERVICES, STAFF_USER):
        probe = Probe(broker.host, broker.port, vhost, prefix + user, passwords[user])
        try:
            for owner in SERVICES:
                own = owner == user
                for queue in queues_of(owner):
                    ok = probe.consume(queue)
                    if own:
                        allowed += ok
                        outcome.check(ok, f"{user} may not consume its own queue {queue}")
                    else:
                        refused += not ok
                        outcome.check(not ok, f"{user} consumed {owner}'s queue {queue}")
                ok = probe.publish(exchange_name(owner))
                if own:
                    allowed += ok
                    outcome.check(ok, f"{user} may not publish to its own exchange {exchange_name(owner)}")
                else:
                    refused += not ok
                    outcome.check(not ok, f"{user} published to {owner}'s exchange {exchange_name(owner)}")
        finally:
            probe.close()
    log(f"permission probes: {refused} refused as they must be, {allowed} own resources usable")
    return refused, allowed


def services_run_with_own_users(outcome, bed, broker, prefix, passwords, log) -> str:
    """The services on the definitions' vhost with their own users: one proposal reaches every consumer."""
    system = bed.system
    for service in SERVICES:
        env = {**system.env, "AMQP_URI": broker.amqp_uri(system.vhost, prefix + service, passwords[service]),
               "DECLARE_TOPOLOGY": "false"}
        system.processes[service] = ServiceProcess(service, env, system.log_dir)
        system.start(service)
    for service in SERVICES:
        system.wait_ready(service, 120)
    staff_uri = broker.amqp_uri(system.vhost, prefix + STAFF_USER, passwords[STAFF_USER])
    pm = Caller(staff_uri, system.token("maria.pm", ["programme_manager"]))
    try:
        pm.call("calls", "load_programme", {"programme": flows.programme()})
        pm.call("calls", "create_call", flows.call())
        pm.call("calls", "open_call", {"call_id": "JMDI-2008"})
        pm.call("calls", "submit_proposal", flows.proposal(1, country="MA"))
    finally:
        pm.close()
    expected = {"grants": 2, "notifications": 2, "reporting": 2}
    try:
        eventually(lambda: all(system.inbox_count(s) >= n for s, n in expected.items()), 90, 0.5, "events applied")
    except AssertionError as exc:
        outcome.fail(f"services on least-privilege users: {exc}")
        return "stuck"
    held = sum(system.held_dead_letters(s) for s in expected)
    outcome.check(held == 0, f"{held} dead letters with least-privilege users")
    log("services ran on their own users: the proposal reached grants, notifications and reporting")
    return "ok"
