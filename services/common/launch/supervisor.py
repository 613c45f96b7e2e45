"""`make run`: the four services and the gateway in the foreground, each its own process; Ctrl-C stops them all.

`make run` is local mode (JMDI_LOCAL_MODE=true, announced at start): development secrets are accepted (the
broker's guest login, SQLite, the keys under var/keys) and every /metrics server listens on 127.0.0.1 unless
METRICS_HOST says otherwise. Without JMDI_JWKS a staff token issuer key pair and a key pair for each service that
calls another are created once under var/keys; the services and the gateway get the public keys (and each signing
service its own private key), the `jmdi` CLI signs staff tokens with the issuer's key, and — every service being
the broker's one `guest` user — the event producer check is off. With JMDI_JWKS set, the processes run with the
keys given.

A process that exits on its own is restarted after a delay that doubles with each crash in a row (1 s, 2 s, 4 s ...
at most BACKOFF_MAX_SECONDS; a process that ran BACKOFF_RESET_SECONDS counts as healthy again); the others keep
running. Every crash and restart is a log line and counts in `jmdi_process_restarts_total{process}` on the
supervisor's own /metrics (SUPERVISOR_METRICS_PORT, default 8006).
"""

import os
import signal
import subprocess
import sys
import time

import eventlet
import eventlet.wsgi
from prometheus_client import Counter, Gauge, make_wsgi_app

from ..contracts.topology import PROCESSES
from ..runtime.config import load_config
from ..security.keys import local_mode_environments
from .runner import broker_problem

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
BACKOFF_RESET_SECONDS = 60.0

RESTARTS = Counter(
    "jmdi_process_restarts", "Processes restarted by `make run`'s supervisor after they exited", ["process"]
)
CRASHES_IN_A_ROW = Gauge(
    "jmdi_process_crashes_in_a_row", "Exits of a process without a healthy run in between", ["process"]
)
UP = Gauge("jmdi_process_up", "1 while the supervisor's process is running", ["process"])


def backoff(crashes_in_a_row: int) -> float:
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(crashes_in_a_row - 1, 0), BACKOFF_MAX_SECONDS)


def local_settings(environ) -> dict:
    """What `make run` adds to the environment: local mode, /metrics on the loopback interface."""
    return {
        "JMDI_LOCAL_MODE": environ.get("JMDI_LOCAL_MODE", "true"),
        "METRICS_HOST": environ.get("METRICS_HOST", "127.0.0.1"),
    }


class Child:
    def __init__(self, name: str, env: dict):
        self.name = name
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.crashes = 0
        self.restart_at: float | None = None
        # every process's series from the start, at 0: Prometheus then sees the first restart as an increase
        # (the ProcessRestartingRepeatedly alert, deploy/prometheus/alerts.yml)
        RESTARTS.labels(name)
        CRASHES_IN_A_ROW.labels(name).set(0)

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "services.common.launch.runner", self.name], env=self.env)
        self.started_at = time.monotonic()
        self.restart_at = None
        UP.labels(self.name).set(1)

    def terminate(self) -> None:
        """SIGTERM to the process, if it is running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


def main() -> int:
    amqp_uri = load_config("calls")["AMQP_URI"]
    problem = broker_problem(amqp_uri)
    if problem:
        print(f"{problem}.", file=sys.stderr)
        return 2
    environ = {**os.environ, **local_settings(os.environ)}
    if environ["JMDI_LOCAL_MODE"].strip().lower() in ("1", "true", "yes", "on"):
        print(
            "LOCAL MODE (JMDI_LOCAL_MODE=true): development secrets are accepted and /metrics listens on "
            f"{environ['METRICS_HOST']}; a deployment runs each service with its own secrets instead "
            "(docs/access.md).",
            flush=True,
        )
    environments = local_mode_environments(environ, PROCESSES)
    metrics_port = int(environ.get("SUPERVISOR_METRICS_PORT") or 8006)
    try:
        # green, like everything once services.common.launch.runner is imported (it monkey-patches)
        listener = eventlet.listen((environ["METRICS_HOST"], metrics_port))
        eventlet.spawn(eventlet.wsgi.server, listener, make_wsgi_app(), log_output=False)
    except OSError as exc:
        print(f"supervisor: no /metrics on {environ['METRICS_HOST']}:{metrics_port} ({exc})", file=sys.stderr)
    children = {name: Child(name, env) for name, env in environments.items()}
    for child in children.values():
        child.start()
    stopping = False

    def _stop(_signum=None, _frame=None):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for child in children.values():
            child.terminate()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    gateway = load_config("gateway")["GATEWAY_ADDRESS"].replace("0.0.0.0", "127.0.0.1")
    print(f"JMDI starting: {', '.join(PROCESSES)}; staff API at http://{gateway} (Ctrl-C stops them)", flush=True)
    while not stopping:
        now = time.monotonic()
        for child in children.values():
            if child.restart_at is not None:
                if now >= child.restart_at and not stopping:
                    RESTARTS.labels(child.name).inc()
                    print(f"{child.name}: restarting (crash {child.crashes} in a row)", file=sys.stderr, flush=True)
                    child.start()
                continue
            proc = child.proc
            assert proc is not None  # every child was started before this loop
            if proc.poll() is None:
                if child.crashes and now - child.started_at >= BACKOFF_RESET_SECONDS:
                    child.crashes = 0  # healthy again: the next crash starts the backoff from the beginning
                    CRASHES_IN_A_ROW.labels(child.name).set(0)
                continue
            UP.labels(child.name).set(0)
            child.crashes += 1
            CRASHES_IN_A_ROW.labels(child.name).set(child.crashes)
            delay = backoff(child.crashes)
            child.restart_at = now + delay
            print(
                f"{child.name} exited with status {proc.returncode} (crash {child.crashes} in a row); "
                f"restarting it in {delay:.0f} s, the others keep running",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(0.3)
    deadline = time.monotonic() + 25
    for child in children.values():
        if child.proc is None:
            continue
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
