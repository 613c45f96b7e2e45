"""Faults injected into the shared RabbitMQ and PostgreSQL, limited to this run's vhost and databases.

The machine's broker and database are shared with other engineers' tests, so by default neither is restarted:
- broker: every connection of the run's vhost is closed by the broker (its CLI, or the management API), which is what a client
  sees when RabbitMQ restarts (connection forced closed; durable queues and their messages survive either way).
  `--broker-restart` does the real thing (`rabbitmqctl stop_app`, pause, `start_app`) on a machine of your own.
- database: new connections to the run's databases are refused (ALLOW_CONNECTIONS false) and every backend of
  them is terminated (pg_terminate_backend), for a pause, then connections are allowed again — what a
  PostgreSQL restart does to the services' connections, without touching anyone else's databases.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from urllib.parse import quote

import psycopg2

from tests.support.infra import POSTGRES_ADMIN, Broker


class BrokerFault:
    def __init__(self, vhost: str, real_restart: bool = False):
        self.vhost = vhost
        self.broker = Broker()
        self.real_restart = real_restart
        self._cut: set[str] = set()

    def close_connections(self) -> int:
        """Close every connection of the vhost now; returns how many there were.

        The broker's own CLI sees connections the moment they open. The management API's list lags by up to its
        statistics interval (5 s by default), so a service that reconnected a moment ago is missing from it: it
        is only the fallback for a broker on another machine."""
        if self._local_cli():
            return self._close_with_cli()
        closed = 0
        for conn in self.broker.api("GET", f"vhosts/{quote(self.vhost, safe='')}/connections") or []:
            self.broker.api("DELETE", f"connections/{quote(conn['name'], safe='')}")
            closed += 1
        return closed

    def _local_cli(self) -> bool:
        return self.broker.host in ("127.0.0.1", "localhost", "::1") and shutil.which("rabbitmqctl") is not None

    def _close_with_cli(self) -> int:
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_connections", "-p", self.vhost, "pid"],
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        pids = {line.strip() for line in listed.stdout.splitlines() if line.strip().startswith("<")}
        if pids:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_all_connections", "-p", self.vhost, "fault injection: broker outage"],
                check=True,
                timeout=60,
                capture_output=True,
            )
        # closing is asynchronous: a connection listed again by the next round is not counted twice
        fresh = pids - self._cut
        self._cut |= pids
        return len(fresh)

    def outage(self, pause: float) -> int:
        """Take the broker away from the run's services for about `pause` seconds; returns connections cut."""
        if self.real_restart:
            subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
            time.sleep(pause)
            subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=300)
            return -1
        closed = 0
        deadline = time.monotonic() + pause
        while True:  # keep cutting: reconnections during the pause are cut again, as if nobody answered
            closed += self.close_connections()
            if time.monotonic() >= deadline:
                return closed
            time.sleep(0.5)

    def consumers_ready(self, queue_names) -> bool:
        queues = self.broker.queues(self.vhost)
        return all(queues.get(q, {}).get("consumers", 0) > 0 for q in queue_names)


class DatabaseFault:
    def __init__(self, databases):
        self.databases = list(databases)

    def _admin(self):
        conn = psycopg2.connect(POSTGRES_ADMIN)
        conn.autocommit = True
        return conn

    def _allow(self, cur, allowed: bool):
        for db in self.databases:
            cur.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')

    def terminate(self, cur) -> int:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = ANY(%s) "
            "AND pid <> pg_backend_pid()",
            (self.databases,),
        )
        return cur.fetchone()[0]

    def outage(self, pause: float) -> int:
        """Refuse and cut every connection to the run's databases for `pause` seconds; returns backends cut."""
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                self._allow(cur, False)
                try:
                    cut = self.terminate(cur)
                    time.sleep(pause)
                    cut += self.terminate(cur)
                finally:
                    self._allow(cur, True)
        finally:
            conn.close()
        return cut
