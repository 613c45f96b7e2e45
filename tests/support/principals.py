"""The broker's least-privilege principals for a test: deploy/rabbitmq's generated definitions loaded into a
throwaway vhost with prefixed users and random passwords, and probes that try what each principal may not do."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote

import amqp
from amqp.exceptions import AccessRefused, PreconditionFailed

from services.common.contracts.events import make_event
from services.common.contracts.topology import SERVICES

from . import flows
from .infra import REPO

GENERATOR = REPO / "deploy" / "rabbitmq" / "generate_definitions.py"
PRINCIPALS = (*SERVICES, "gateway", "jmdi-monitoring")


class BrokerPrincipals:
    """`with BrokerPrincipals(broker, vhost, prefix) as principals:` users exist inside, are removed after."""

    def __init__(self, broker, vhost: str, prefix: str):
        self.broker, self.vhost, self.prefix = broker, vhost, prefix
        self.passwords = {user: secrets.token_urlsafe(18) for user in PRINCIPALS}
        self.definitions: dict = {}

    def __enter__(self):
        args = [sys.executable, str(GENERATOR), "--vhost", self.vhost, "--user-prefix", self.prefix, "--output", "-"]
        for user, password in self.passwords.items():
            args += ["--password", f"{user}={password}"]
        self.definitions = json.loads(
            subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout
        )
        self.broker.api("POST", "definitions", self.definitions)
        return self

    def __exit__(self, *exc):
        for user in self.definitions.get("users", []):
            self.broker.api("DELETE", f"users/{quote(user['name'], safe='')}")

    def user(self, principal: str) -> str:
        return self.prefix + principal

    def amqp_uri(self, principal: str) -> str:
        return self.broker.amqp_uri(self.vhost, self.user(principal), self.passwords[principal])

    def probe(self, principal: str) -> "Probe":
        return Probe(self.broker.host, self.broker.port, self.vhost, self.user(principal), self.passwords[principal])

    def left_behind(self) -> list[str]:
        return [u["name"] for u in self.broker.api("GET", "users") if u["name"].startswith(self.prefix)]


class Probe:
    """One AMQP connection as a user; each attempt on a fresh channel (a refusal closes the channel).
    Every method returns True when the broker allowed it, False when it refused."""

    REFUSALS = (AccessRefused, PreconditionFailed)

    def __init__(self, host: str, port: int, vhost: str, user: str, password: str):
        self.user = user
        self.conn = amqp.Connection(
            host=f"{host}:{port}",
            userid=user,
            password=password,
            virtual_host=vhost,
            confirm_publish=True,
            connect_timeout=10,
        )
        self.conn.connect()
        self.refusal = ""

    def _attempt(self, action) -> bool:
        channel = self.conn.channel()
        try:
            action(channel)
            channel.close()
            return True
        except self.REFUSALS as exc:
            self.refusal = str(exc)
            return False

    def consume(self, queue: str) -> bool:
        return self._attempt(lambda ch: ch.basic_cancel(ch.basic_consume(queue=queue, callback=lambda m: None)))

    def bind(self, queue: str, exchange: str, routing_key: str) -> bool:
        return self._attempt(lambda ch: ch.queue_bind(queue, exchange, routing_key))

    def declare_reply_queue(self, name: str) -> bool:
        return self._attempt(
            lambda ch: ch.queue_declare(name, durable=False, auto_delete=True, arguments={"x-expires": 60000})
        )

    def publish(self, exchange: str, routing_key: str = "probe.nothing-bound", body: str = "{}", **properties) -> bool:
        message = amqp.Message(body, content_type="application/json", **properties)
        return self._attempt(lambda ch: ch.basic_publish(message, exchange=exchange, routing_key=routing_key))

    def close(self):
        try:
            self.conn.close()
        except Exception:  # already closed by the broker
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def call_opened(call_id: str):
    """A valid call_opened event (as the calls service would publish it)."""
    return make_event(
        "call_opened",
        {
            "call_id": call_id,
            "programme_id": "JMDI",
            "programme_name": "JMDI",
            "envelope_eur": Decimal("15000000"),
            "rule_profile": "ec_prag",
            "title": f"Call {call_id}",
            "deadline": datetime.now(timezone.utc) + timedelta(days=30),
            "min_grant_eur": Decimal("50000"),
            "max_grant_eur": Decimal("200000"),
            "max_ec_share": Decimal("0.9"),
            "windows": [{"window": w, "name": w, "allocation_eur": Decimal("1000000")} for w in flows.WINDOWS],
        },
        producer="calls",
        actor="test",
    )
