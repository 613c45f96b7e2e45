"""The real infrastructure the integration and reliability tests use.

A fresh RabbitMQ vhost and fresh PostgreSQL databases per test run (dropped afterwards), and the services
started as real processes the way `make run` starts them.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg2

from services.common.contracts.topology import PROCESSES, SERVICES  # noqa: F401  (the four services; with the gateway)

REPO = Path(__file__).resolve().parents[2]
AMQP_BASE = os.environ.get("TEST_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
MANAGEMENT_URL = os.environ.get("TEST_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
POSTGRES_ADMIN = os.environ.get("TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")


def run_id() -> str:
    return uuid.uuid4().hex[:8]


class Broker:
    """Creates and removes vhosts through the RabbitMQ management API."""

    def __init__(self):
        parts = urlsplit(AMQP_BASE)
        self.user, self.password = parts.username or "guest", parts.password or "guest"
        self.host, self.port = parts.hostname, parts.port or 5672
        self._auth = "Basic " + b64encode(f"{self.user}:{self.password}".encode()).decode()

    def api(self, method: str, path: str, body=None):
        request = urllib.request.Request(
            MANAGEMENT_URL + "/api/" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
                return json.loads(payload) if payload else None
        except urllib.error.HTTPError as exc:
            if method == "DELETE" and exc.code == 404:
                return None
            raise

    def create_vhost(self, name: str) -> str:
        self.api("PUT", f"vhosts/{quote(name, safe='')}", {})
        self.api(
            "PUT",
            f"permissions/{quote(name, safe='')}/{quote(self.user, safe='')}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        return self.amqp_uri(name)

    def amqp_uri(self, vhost: str, user=None, password=None) -> str:
        return f"amqp://{user or self.user}:{password or self.password}@{self.host}:{self.port}/{quote(vhost, safe='')}"

    def delete_vhost(self, name: str):
        self.api("DELETE", f"vhosts/{quote(name, safe='')}")

    def queues(self, vhost: str) -> dict:
        return {q["name"]: q for q in self.api("GET", f"queues/{quote(vhost, safe='')}")}


class Postgres:
    def _admin(self):
        conn = psycopg2.connect(POSTGRES_ADMIN)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return f"{POSTGRES_URL}/{name}"

    def drop_database(self, name: str):
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """One service as a real OS process: start, stop (SIGTERM), kill -9, restart."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.common.launch.runner", self.name],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30):
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self):
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def eventually(check, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"):
    """Poll until check() returns a truthy value (returned) or raise with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{message} not reached in {timeout}s; last: {last!r}")
