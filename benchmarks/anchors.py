"""The anchors: what bare nameko, RabbitMQ and PostgreSQL do on this machine in this run.

Every target is a ratio to one of these, so a busy or slow machine moves both sides of the ratio alike.
"""

import os
import subprocess
import sys
import time
from urllib.parse import unquote, urlsplit

import amqp
from kombu import Connection, Consumer, Exchange, Producer, Queue

from tests.support.infra import REPO, eventually

from . import hand_sql
from .db import connect
from .load import ClientPool
from .results import Anchor, median


class AnchorProcess:
    """One of benchmarks.anchor_services as a real process, like our services are run."""

    def __init__(self, kind: str, amqp_uri: str, log_dir, env: dict | None = None):
        self.kind = kind
        log = open(log_dir / f"anchor-{kind}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.anchor_services", kind],
            cwd=REPO,
            env={**os.environ, "AMQP_URI": amqp_uri, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self, proxy, service: str):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"anchor {self.kind} exited with {self.proc.returncode}")
            try:
                return getattr(proxy, service).ping() == "pong"
            except Exception:
                return False

        eventually(ready, 60, 0.3, f"anchor {self.kind}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rpc_echo(
    client_factory, amqp_uri, log_dir, payload: dict, clients: int, rounds: int, seconds: float, warmup: float
) -> Anchor:
    """A1: calls/s of `clients` parallel clients calling a service that returns its argument (P1's payload)."""
    process = AnchorProcess("echo", amqp_uri, log_dir)
    try:
        client = client_factory()
        process.wait_ready(client, "bench_echo")
        pool = ClientPool(clients, lambda i, n: client.bench_echo.echo(**payload), "echo").start()
        time.sleep(warmup)
        windows = pool.windows(rounds, seconds)
        pool.stop()
        return Anchor(
            "A1",
            f"bare nameko RPC echo, {clients} parallel clients",
            "calls/s",
            [round(w["rate"], 1) for w in windows],
            {
                "windows": windows,
                "clients": clients,
                "payload_bytes": len(str(payload)),
                "errors": sum(pool.errors),
                "last_error": pool.last_error,
            },
        )
    finally:
        process.stop()


class CommitEcho:
    """A1c: the echo service doing one INSERT and COMMIT on PostgreSQL per call (the floor for any durable
    operation), `clients` parallel clients sending P1's payload. Its rounds are taken between P1's (interleaved:
    the machine's load moves both); the pool waits between them."""

    def __init__(self, client_factory, amqp_uri, log_dir, dsn: str, payload: dict, clients: int):
        self.process = AnchorProcess("echo_commit", amqp_uri, log_dir, {"ANCHOR_DSN": dsn})
        client = client_factory()
        self.process.wait_ready(client, "bench_echo_commit")
        self.pool = ClientPool(clients, lambda i, n: client.bench_echo_commit.echo(**payload), "echo_commit")
        self.pool.pause().start()
        self.windows: list[dict] = []

    def round(self, seconds: float, warmup: float = 0.0) -> dict:
        self.pool.resume()
        try:
            if warmup:
                time.sleep(warmup)
            window = self.pool.windows(1, seconds)[0]
        finally:
            self.pool.pause()
        self.windows.append(window)
        return window

    def anchor(self, clients: int) -> Anchor:
        return Anchor(
            "A1c",
            f"nameko RPC echo doing one INSERT + COMMIT on PostgreSQL, {clients} parallel clients "
            f"(rounds interleaved with P1's)",
            "calls/s",
            [round(w["rate"], 1) for w in self.windows],
            {
                "windows": self.windows,
                "clients": clients,
                "errors": sum(self.pool.errors),
                "last_error": self.pool.last_error,
            },
        )

    def stop(self):
        self.pool.stop()
        self.process.stop()


class EventDispatch:
    """A2: events/s from nameko's EventDispatcher (one process) to a plain event_handler (another), no DB, P2's event
    body. The processes stay up: `quiet` rounds are taken before the services start, and P2 takes one round before
    each of its own (interleaved, as A1c's with P1's: the machine's load moves both). Each round dispatches as many
    events as the pilot did in `seconds`."""

    def __init__(self, client_factory, amqp_uri, log_dir, body: dict, seconds: float):
        self.body = body
        self.dispatcher = AnchorProcess("dispatcher", amqp_uri, log_dir)
        self.handler = AnchorProcess("handler", amqp_uri, log_dir)
        try:
            self.client = client_factory()
            self.dispatcher.wait_ready(self.client, "bench_dispatcher")
            self.handler.wait_ready(self.client, "bench_handler")
            pilot = self._round(300)
        except BaseException:
            self.stop()
            raise
        self.count = int(min(20000, max(500, pilot["rate"] * seconds)))
        self.quiet: list[dict] = []
        self.interleaved: list[dict] = []

    def _round(self, count: int) -> dict:
        self.client.bench_handler.reset()
        started = time.time()
        self.client.bench_dispatcher.dispatch_many(count=count, body=self.body)
        stats = eventually(
            lambda: (lambda s: s if s["count"] >= count else None)(self.client.bench_handler.stats()),
            120,
            0.05,
            "anchor events handled",
        )
        seconds = stats["last_at"] - started
        return {"events": count, "seconds": seconds, "rate": count / seconds}

    def measure_quiet(self, rounds: int) -> Anchor:
        """The rounds before the services run (the A2 of runs before rounds were interleaved)."""
        self.quiet = [self._round(self.count) for _ in range(rounds)]
        return self.anchor()

    def round(self) -> float:
        """One round between P2's; its rate."""
        self.interleaved.append(self._round(self.count))
        return self.interleaved[-1]["rate"]

    @property
    def quiet_median(self) -> float | None:
        return median([round(m["rate"], 1) for m in self.quiet])

    def anchor(self) -> Anchor:
        """A2 from the interleaved rounds once there are any, else from the quiet ones; both in the detail."""
        rounds = self.interleaved or self.quiet
        return Anchor(
            "A2",
            "bare nameko EventDispatcher → event_handler (no DB)"
            + (" (rounds interleaved with P2's)" if self.interleaved else ""),
            "events/s",
            [round(m["rate"], 1) for m in rounds],
            {
                "rounds": rounds,
                "body_bytes": len(str(self.body)),
                "quiet_rounds": [round(m["rate"], 1) for m in self.quiet],
                "quiet_median": self.quiet_median,
            },
        )

    def stop(self):
        self.dispatcher.stop()
        self.handler.stop()


def kombu_rates(amqp_uri: str, body: bytes, rounds: int, seconds: float) -> list[Anchor]:
    """A3/A4: raw persistent publishing (confirms batched as the outbox relay does, and one confirm per message)
    and consuming (prefetch 500, one ack per message) of a durable queue."""
    exchange = Exchange("bench.raw", type="topic", durable=True)
    queue = Queue("bench.raw", exchange=exchange, routing_key="raw", durable=True)
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()

    def publish_batched(count: int, batch: int = 500) -> float:
        conn = _raw_connection(amqp_uri)
        conn.connect()
        channel = conn.channel()
        channel.confirm_select()
        acked = [0]

        def on_ack(delivery_tag, multiple):
            acked[0] = delivery_tag

        channel.events["basic_ack"].add(on_ack)
        started = time.perf_counter()
        sent = 0
        while sent < count:
            for _ in range(min(batch, count - sent)):
                channel.basic_publish(
                    amqp.Message(body, delivery_mode=2, content_type="application/json"),
                    exchange="bench.raw",
                    routing_key="raw",
                )
                sent += 1
            while acked[0] < sent:
                conn.drain_events(timeout=30)
        elapsed = time.perf_counter() - started
        conn.close()
        return count / elapsed

    def publish_each(count: int) -> float:
        with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
            producer = Producer(conn.default_channel, exchange=exchange, routing_key="raw")
            started = time.perf_counter()
            for _ in range(count):
                producer.publish(body, delivery_mode=2, content_type="application/json", content_encoding="utf-8")
            return count / (time.perf_counter() - started)

    def consume(count: int) -> float:
        received = [0]
        with Connection(amqp_uri) as conn:
            channel = conn.channel()
            channel.basic_qos(0, 500, False)

            def on_message(_body, message):
                message.ack()
                received[0] += 1

            with Consumer(channel, [queue], callbacks=[on_message], accept=["json", "application/json"]):
                started = time.perf_counter()
                while received[0] < count:
                    conn.drain_events(timeout=30)
                return count / (time.perf_counter() - started)

    anchors = []
    pilot = publish_batched(2000)
    consume(2000)
    count = int(min(100000, max(2000, pilot * seconds)))
    batched, consumed = [], []
    for _ in range(rounds):
        batched.append(round(publish_batched(count), 1))
        consumed.append(round(consume(count), 1))
    anchors.append(
        Anchor(
            "A3",
            "raw kombu/py-amqp persistent publish, confirms batched (500)",
            "msg/s",
            batched,
            {"messages_per_round": count, "body_bytes": len(body)},
        )
    )
    each_count = int(min(20000, max(500, count / 8)))
    each = [round(publish_each(each_count), 1) for _ in range(rounds)]
    consume(each_count * rounds)
    anchors.append(
        Anchor(
            "A3b",
            "raw kombu persistent publish, one confirm per message",
            "msg/s",
            each,
            {"messages_per_round": each_count},
        )
    )
    anchors.append(
        Anchor(
            "A4",
            "raw kombu consume, prefetch 500, one ack per message",
            "msg/s",
            consumed,
            {"messages_per_round": count},
        )
    )
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).delete()
        exchange(conn.default_channel).delete()
    return anchors


def _raw_connection(amqp_uri: str) -> amqp.Connection:
    parts = urlsplit(amqp_uri)
    return amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=unquote(parts.path[1:]) or "/",
    )


def hand_sql_totals(dsn: str, programme_id: str, as_of, rounds: int) -> Anchor:
    """A5: the EC totals as one hand-written GROUP BY (benchmarks/hand_sql.py) on reporting's tables."""
    conn = connect(dsn)
    try:
        hand_sql.totals(conn, programme_id, as_of)  # warm the cache, as the report's first call is not counted
        timings, result = [], None
        for _ in range(rounds):
            elapsed, result = hand_sql.totals(conn, programme_id, as_of)
            timings.append(round(elapsed, 4))
    finally:
        conn.close()
    overall = result.get("overall", (0, 0, 0))
    return Anchor(
        "A5",
        "hand-written SQL GROUP BY of the EC totals (by window, country, overall)",
        "s",
        timings,
        {
            "committed_eur": hand_sql.cents(overall[0]),
            "disbursed_eur": hand_sql.cents(overall[1]),
            "grants": overall[2],
            "median_s": median(timings),
        },
    )
