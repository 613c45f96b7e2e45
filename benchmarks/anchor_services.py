"""The anchors' services: bare nameko with nothing of ours in between, run as real processes.

    python -m benchmarks.anchor_services echo|dispatcher|handler

`echo` returns its argument (the RPC anchor for P1); `dispatcher` publishes N events with nameko's
EventDispatcher and `handler` counts them with a plain event_handler (the events anchor for P2). No database, no
validation, no auth: the ceiling nameko and RabbitMQ set on this machine. AMQP_URI comes from the environment.
"""

import services  # noqa: F401  (first: its warning filter silences eventlet's deprecation notice)

import eventlet  # noqa: E402

eventlet.monkey_patch()  # the way services.common.launch.runner starts our services

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from nameko.events import EventDispatcher, event_handler  # noqa: E402
from nameko.rpc import rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

DISPATCHER, TICK = "bench_dispatcher", "tick"


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, *args, **kwargs):
        return kwargs if kwargs else args[0] if len(args) == 1 else list(args)

    @rpc
    def ping(self):
        return "pong"


class EchoCommitService:
    """The echo doing what every durable operation must: one INSERT and COMMIT on PostgreSQL (psycopg2, as our
    services, one connection per worker from a pool)."""

    name = "bench_echo_commit"
    _pool: list = []

    def _connection(self):
        import psycopg2

        try:
            return EchoCommitService._pool.pop()
        except IndexError:
            conn = psycopg2.connect(os.environ["ANCHOR_DSN"])
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS bench_echo (id bigserial PRIMARY KEY, body text NOT NULL)")
            conn.commit()
            return conn

    @rpc
    def echo(self, *args, **kwargs):
        result = kwargs if kwargs else args[0] if len(args) == 1 else list(args)
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO bench_echo (body) VALUES (%s)", (json.dumps(result, default=str),))
            conn.commit()
        finally:
            EchoCommitService._pool.append(conn)
        return result

    @rpc
    def ping(self):
        return "pong"


class DispatcherService:
    name = DISPATCHER
    dispatch = EventDispatcher()

    @rpc
    def dispatch_many(self, count, body):
        for _ in range(count):
            self.dispatch(TICK, body)
        return count

    @rpc
    def ping(self):
        return "pong"


class HandlerService:
    """Counts events; the bench asks for the count and the wall-clock time of the last one."""

    name = "bench_handler"
    handled = {"count": 0, "first_at": None, "last_at": None}

    @event_handler(DISPATCHER, TICK)
    def on_tick(self, body):
        state = HandlerService.handled
        now = time.time()
        if state["first_at"] is None:
            state["first_at"] = now
        state["count"] += 1
        state["last_at"] = now

    @rpc
    def stats(self):
        return dict(HandlerService.handled)

    @rpc
    def reset(self):
        HandlerService.handled.update(count=0, first_at=None, last_at=None)

    @rpc
    def ping(self):
        return "pong"


SERVICES = {
    "echo": EchoService,
    "echo_commit": EchoCommitService,
    "dispatcher": DispatcherService,
    "handler": HandlerService,
}


def main(argv=None):
    kind = (argv or sys.argv[1:])[0]
    config = {"AMQP_URI": os.environ["AMQP_URI"], "max_workers": int(os.environ.get("MAX_WORKERS", "10"))}
    runner = ServiceRunner(config)
    runner.add_service(SERVICES[kind])
    stopping = eventlet.event.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.ready() or stopping.send(True))
    runner.start()
    stopping.wait()
    with eventlet.Timeout(10, False):
        runner.stop()
        return 0
    runner.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
