"""`make run`: all four services in the foreground, each its own process; Ctrl-C stops them all cleanly."""
import os
import signal
import subprocess
import sys
import time

from .config import load_config
from .runner import NO_BROKER_HINT, broker_reachable, redact
from .topology import SERVICES


def main() -> int:
    amqp_uri = load_config("calls")["AMQP_URI"]
    problem = broker_reachable(amqp_uri)
    if problem:
        print(f"No RabbitMQ broker answers at {redact(amqp_uri)} ({problem}): {NO_BROKER_HINT}.", file=sys.stderr)
        return 2
    children = {name: subprocess.Popen([sys.executable, "-m", "services.common.runner", name])
                for name in SERVICES}
    stopping = False

    def _stop(_signum=None, _frame=None):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"JMDI services starting: {', '.join(SERVICES)} (Ctrl-C stops them)", flush=True)
    status = 0
    while any(proc.poll() is None for proc in children.values()):
        for name, proc in children.items():
            if proc.poll() not in (None, 0) and not stopping:
                print(f"{name} exited with status {proc.returncode}; stopping the others", file=sys.stderr)
                status = 1
                _stop()
        time.sleep(0.3)
    deadline = time.monotonic() + 25
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    return status


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
