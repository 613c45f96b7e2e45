"""The anchors' services: bare nameko with nothing of ours in between, run as real processes.

    python -m benchmarks.anchor_services echo|dispatcher|handler

`echo` returns its argument (the RPC anchor for P1); `dispatcher` publishes N events with nameko's
EventDispatcher and `handler` counts them with a plain event_handler (the events anchor for P2). No database, no
validation, no auth: the ceiling nameko and RabbitMQ set on this machine. AMQP_URI comes from the environment.
"""
import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # the way services.common.runner starts our services

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


SERVICES = {"echo": EchoService, "dispatcher": DispatcherService, "handler": HandlerService}


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
