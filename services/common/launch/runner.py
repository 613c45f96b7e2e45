"""Start one service the same way everywhere (laptop, compose, Kubernetes):

    python -m services.common.launch.runner <service> [--no-migrate] [--migrate-only]

waits for the broker (one clear line saying why it cannot be used: none answers, login refused, no such virtual
host, no access to it), applies the service's migrations, then runs it until
SIGINT/SIGTERM, stopping workers gracefully.
"""

import eventlet  # noqa: E402  (services/__init__.py has silenced its deprecation notice)

eventlet.monkey_patch()  # before anything opens a socket; also greens psycopg2

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import unquote, urlsplit  # noqa: E402

from kombu import Connection  # noqa: E402

from ..runtime.config import load_config, redact, service_class  # noqa: E402
from ..runtime.heap import settle  # noqa: E402
from .logs import configure_logging  # noqa: E402

log = logging.getLogger("jmdi.runner")

NO_BROKER_HINT = (
    "start one with `docker compose up -d rabbitmq`, or install your distribution's rabbitmq-server "
    "and run `rabbitmq-server -detached`; or set AMQP_URI"
)


class BrokerProblem:
    """Why the broker at AMQP_URI cannot be used, told apart: nobody answers (start one), the login is refused
    (user or password), the virtual host does not exist, or the user has no access to it."""

    def __init__(self, amqp_uri: str, exc: Exception):
        self.uri = redact(amqp_uri)
        parts = urlsplit(amqp_uri)
        self.user = unquote(parts.username or "guest")
        self.vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.reason = str(getattr(exc, "reply_text", "") or exc) or type(exc).__name__
        code = getattr(exc, "reply_code", None)
        if code == 403:
            self.kind = "login_refused"
        elif code == 530 and "not found" in self.reason:
            self.kind = "vhost_missing"
        elif code == 530:
            self.kind = "vhost_refused"
        else:
            self.kind = "unreachable"

    @property
    def answered(self) -> bool:
        """A broker answered (and refused): waiting longer will not help."""
        return self.kind != "unreachable"

    def __str__(self) -> str:
        if self.kind == "login_refused":
            return (
                f"The RabbitMQ broker at {self.uri} refused the login of user {self.user!r} (wrong user name or "
                f"password): correct the user and password in AMQP_URI (`rabbitmqctl list_users` on the broker "
                f"lists its users)"
            )
        if self.kind == "vhost_missing":
            return (
                f"The RabbitMQ broker at {self.uri} has no virtual host {self.vhost!r}: create it "
                f"(`rabbitmqctl add_vhost {self.vhost}` and give {self.user!r} permissions on it) or correct "
                f"the virtual host at the end of AMQP_URI"
            )
        if self.kind == "vhost_refused":
            return (
                f"The RabbitMQ broker at {self.uri} does not let user {self.user!r} use virtual host "
                f"{self.vhost!r} ({self.reason}): grant it (`rabbitmqctl set_permissions -p {self.vhost} "
                f"{self.user} '.*' '.*' '.*'`) or use a user that has access"
            )
        return f"No RabbitMQ broker answers at {self.uri} ({self.reason}): {NO_BROKER_HINT}"


def broker_problem(amqp_uri: str, wait_seconds: float = 0.0) -> BrokerProblem | None:
    """None if the broker lets us in; else what is wrong. Only silence is waited out (a broker still starting):
    a broker that answers with a refusal will not change its mind."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with Connection(amqp_uri, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1)
            return None
        except Exception as exc:  # every failure is classified and told in one line
            problem = BrokerProblem(amqp_uri, exc)
            if problem.answered or time.monotonic() >= deadline:
                return problem
            time.sleep(1)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m services.common.launch.runner")
    parser.add_argument("service")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("--migrate-only", action="store_true")
    parser.add_argument("--broker-wait", type=float, default=30.0)
    args = parser.parse_args(argv)

    config = load_config(args.service)
    configure_logging(args.service, str(config.get("LOG_FORMAT", "text")), str(config.get("LOG_LEVEL", "INFO")))

    from ..security.secrecy import local_mode, startup_problem

    if local_mode():
        log.warning(
            "%s: LOCAL MODE (JMDI_LOCAL_MODE=true): development secrets are accepted (the broker's guest "
            "login, databases without passwords, the keys under var/keys); never run a deployment so",
            args.service,
        )
    if not args.migrate_only:
        from ..security.auth import identity_problem

        problem = identity_problem(args.service, config) or startup_problem(args.service, config)
        if problem:
            print(f"{args.service}: {problem}", file=sys.stderr)
            return 2

    if not args.no_migrate:
        from ..storage.migrations import upgrade

        upgrade(args.service, config["DATABASE_URL"])
        log.info("migrations applied to %s", redact(config["DATABASE_URL"]))
    if args.migrate_only:
        return 0

    unreachable = broker_problem(config["AMQP_URI"], args.broker_wait)
    if unreachable:
        print(f"{args.service}: {unreachable}", file=sys.stderr)
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
    settle(args.service)  # after start: the extensions' set-up objects are frozen with the libraries'
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
