"""One scenario's running system: tests/support/system.py's System (fresh vhost and databases, the services as
real processes) plus the SMTP sink, the staff the flows act as, and a record of the events the suite itself put
on the bus (so the invariants count them as produced)."""

from __future__ import annotations

import contextlib
import io
import time

from sqlalchemy import text

from services.common.contracts.topology import SERVICES, SUBSCRIPTIONS
from tests.support.bus import publish
from tests.support.system import System

from .mailsink import MailSink

# the people a flow acts as: four eyes need two finance people
STAFF = {
    "pm": ("maria.pm", ["programme_manager"]),
    "committee": ("sc.chair", ["committee"]),
    "officer": ("fo.amina", ["finance_officer"]),
    "approver": ("fa.jonas", ["finance_approver"]),
    "auditor": ("au.claire", ["auditor"]),
    "reporter": ("ec.reporter", ["ec_reporter"]),
}

FAST_ENV = {
    "NOTIFICATIONS_DELIVERY_SECONDS": "0.5",
    "OUTBOX_SWEEP_SECONDS": "0.5",
}


def consumed_types(service: str) -> set[str]:
    return {t for types in SUBSCRIPTIONS.get(service, {}).values() for t in types}


class Testbed:
    def __init__(self, log, services=SERVICES, extra_env=None, rpc_timeout: float = 60, broker=None):
        self.log = log
        self.sink = MailSink()
        self.resends_allowed = 0  # see R1: kills of notifications between SMTP acceptance and its record
        self.wanted = services
        self.extra_env = {**FAST_ENV, **self.sink.env(), **(extra_env or {})}
        self.rpc_timeout = rpc_timeout
        self.injected: dict[str, str] = {}  # event_id -> event_type published by the suite itself
        self.injected_bodies: list[dict] = []
        self.records = []  # the flows' ClientRecords (reliability/evidence.py)
        self._staff = {}
        self.system: System | None = None
        self.broker = broker  # None: the test broker; R13: its own cluster

    def __enter__(self) -> "Testbed":
        self.sink.start()
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet):  # stdout carries only the verdict lines
            self.system = System(services=self.wanted, extra_env=self.extra_env, broker=self.broker).__enter__()
        self.log(f"system {self.system.id}: vhost {self.system.vhost}, logs in {self.system.log_dir}")
        return self

    def __exit__(self, *exc):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.system.__exit__(*exc)
        finally:
            self.sink.stop()

    # --- people -----------------------------------------------------------------------------------------------
    def staff(self, who: str):
        if who not in self._staff:
            user, roles = STAFF[who]
            self._staff[who] = self.system.client(user, roles, timeout=self.rpc_timeout)
        return self._staff[who]

    # --- the bus ----------------------------------------------------------------------------------------------
    def inject(self, body: dict, times: int = 1):
        """Publish an event as its producer would (and remember it as produced)."""
        self.injected[body["event_id"]] = body["event_type"]
        self.injected_bodies.append(body)
        publish(self.system.amqp_uri, body, times=times)

    # --- databases --------------------------------------------------------------------------------------------
    def rows(self, service: str, query: str, **params) -> list:
        with self.system.db(service).connect() as conn:
            return conn.execute(text(query), params).all()

    def value(self, service: str, query: str, **params):
        with self.system.db(service).connect() as conn:
            return conn.execute(text(query), params).scalar()

    def has_table(self, service: str, table: str) -> bool:
        return bool(
            self.value(
                service,
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = :t",
                t=table,
            )
        )

    def table_counts(self, service: str, exclude=()) -> dict[str, int]:
        """Row count of every table of a service's database (one statement)."""
        tables = [
            r[0]
            for r in self.rows(
                service,
                "SELECT table_name FROM information_schema.tables WHERE "
                "table_schema = 'public' AND table_type = 'BASE TABLE' "
                "ORDER BY table_name",
            )
            if r[0] not in exclude
        ]
        if not tables:
            return {}
        union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        return {name: count for name, count in self.rows(service, union)}

    def produced(self) -> dict[str, str]:
        """event_id -> event_type of every event committed by a producer, plus those the suite published."""
        events = dict(self.injected)
        for service in SERVICES:
            if self.has_table(service, "outbox"):  # a service never started has no tables yet (R6)
                for event_id, event_type in self.rows(service, "SELECT event_id, event_type FROM outbox"):
                    events[event_id] = event_type
        return events

    def expected_count(self, consumer: str, produced: dict[str, str]) -> int:
        wanted = consumed_types(consumer)
        return sum(1 for t in produced.values() if t in wanted)

    def settle(self, timeout: float, running=None) -> dict:
        """Wait until the outboxes are drained, every consumer applied (or dead-lettered) every event produced for
        it and no e-mail is left to send, with nothing moving for a few polls. Returns the last observation."""
        running = running or [s for s in SERVICES if self.system.processes[s].running]
        deadline = time.monotonic() + timeout
        last, stable = None, 0
        while time.monotonic() < deadline:
            try:
                seen = self.observe(running)
            except Exception as exc:  # a database away (R3) answers again soon
                self.log(f"settle: {exc}")
                time.sleep(1)
                continue
            done = (
                seen["pending_outbox"] == 0
                and seen["pending_mail"] == 0
                and all(seen["applied"][c] + seen["held"][c] >= seen["expected"][c] for c in seen["expected"])
            )
            stable = stable + 1 if done and seen == last else 0
            if stable >= 3:
                return seen
            last = seen
            time.sleep(1)
        self.log(f"settle: not settled after {timeout}s: {last}")
        return last or {}

    def observe(self, running) -> dict:
        produced = self.produced()
        consumers = [c for c in SUBSCRIPTIONS if c in running]
        pending_mail = 0
        if "notifications" in running and self.has_table("notifications", "notifications"):
            pending_mail = self.value("notifications", "SELECT count(*) FROM notifications WHERE status = 'pending'")
        return {
            "produced": len(produced),
            "pending_outbox": sum(self.system.pending_outbox(s) for s in running),
            "pending_mail": pending_mail,
            "expected": {c: self.expected_count(c, produced) for c in consumers},
            "applied": {c: self.system.inbox_count(c) for c in consumers},
            "held": {c: self.system.held_dead_letters(c) for c in consumers},
        }

    def metric_sum(self, service: str, name: str) -> float:
        """Sum of a Prometheus counter over its labels, read from the service's /metrics."""
        import urllib.request

        with urllib.request.urlopen(self.system.metrics_url(service), timeout=10) as response:
            text_ = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text_.splitlines() if line.startswith(name + "{"))

    def queues_idle(self) -> bool:
        """No message ready or unacknowledged in any event queue of the run's vhost (management API)."""
        queues = self.system.broker.queues(self.system.vhost)
        return all(q.get("messages", 0) == 0 for name, q in queues.items() if name.startswith("evt-"))

    def kill9(self, service: str):
        self.system.kill9(service)

    def restart(self, service: str, timeout: float = 120):
        self.system.start(service)
        self.system.wait_ready(service, timeout)
