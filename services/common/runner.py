"""Start one service the same way everywhere (laptop, compose, Kubernetes):

    python -m services.common.runner <service> [--no-migrate] [--migrate-only]

waits for the broker (one clear line if none answers), applies the service's migrations, then runs it until
SIGINT/SIGTERM, stopping workers gracefully.
"""
import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything opens a socket; also greens psycopg2

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

from kombu import Connection  # noqa: E402

from .config import load_config  # noqa: E402
from .logs import configure_logging  # noqa: E402

log = logging.getLogger("jmdi.runner")

NO_BROKER_HINT = ("start one with `docker compose up -d rabbitmq`, or install your distribution's rabbitmq-server "
                  "and run `rabbitmq-server -detached`; or set AMQP_URI")


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def broker_reachable(amqp_uri: str, wait_seconds: float = 0.0) -> str | None:
    """None if the broker answers (within wait_seconds), else the reason."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with Connection(amqp_uri, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1)
            return None
        except Exception as exc:  # any failure here means "no usable broker"; the reason is printed
            reason = str(exc) or type(exc).__name__
            if time.monotonic() >= deadline:
                return reason
            time.sleep(1)


def service_class(service: str):
    module = importlib.import_module(f"services.{service}.service")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == service and hasattr(value, "db"):
            return value
    raise SystemExit(f"services.{service}.service defines no service named {service!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m services.common.runner")
    parser.add_argument("service")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("--migrate-only", action="store_true")
    parser.add_argument("--broker-wait", type=float, default=30.0)
    args = parser.parse_args(argv)

    config = load_config(args.service)
    configure_logging(args.service, str(config.get("LOG_FORMAT", "text")), str(config.get("LOG_LEVEL", "INFO")))

    if not args.no_migrate:
        from .migrations import upgrade
        upgrade(args.service, config["DATABASE_URL"])
        log.info("migrations applied to %s", redact(config["DATABASE_URL"]))
    if args.migrate_only:
        return 0

    problem = broker_reachable(config["AMQP_URI"], args.broker_wait)
    if problem:
        print(f"{args.service}: no RabbitMQ at {redact(config['AMQP_URI'])} ({problem}); {NO_BROKER_HINT}",
              file=sys.stderr)
        return 2

    from nameko.runners import ServiceRunner
    runner = ServiceRunner(config)
    runner.add_service(service_class(args.service))

    stopping = eventlet.event.Event()

    def _on_signal(signum, _frame):
        if not stopping.ready():
            stopping.send(signum)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    runner.start()
    log.info("%s started (metrics on %s)", args.service, config.get("WEB_SERVER_ADDRESS"))
    runner_thread = eventlet.spawn(runner.wait)
    while not stopping.ready() and not runner_thread.dead:
        eventlet.sleep(0.2)
    if stopping.ready():
        log.info("%s stopping", args.service)
        with eventlet.Timeout(20, False):
            runner.stop()
            return 0
        runner.kill()
        return 0
    # a container crashed: surface it with a non-zero status
    try:
        runner_thread.wait()
    except Exception:
        log.exception("%s crashed", args.service)
    return 1


if __name__ == "__main__":
    sys.exit(main())
