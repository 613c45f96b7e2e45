"""CPU per proposal on P1's path: calls and the gateway alone, `clients` threads submitting through the gateway,
the CPU (user + system, from /proc/<pid>/stat, children included) each service process, this process (the
HTTP clients), PostgreSQL's processes and RabbitMQ's spend per proposal over windows of `seconds` (the servers'
figures include whatever else uses them meanwhile, so measure on an otherwise quiet machine). On a busy machine
a rate says little; this says where the CPU goes. Run from the tree to measure, alternating trees for an A/B:

    .venv/bin/python -m benchmarks.cpu_per_proposal --windows 3 --seconds 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

from benchmarks import live
from tests.support.system import System

TICK = os.sysconf("SC_CLK_TCK")


SERVERS = {"postgres": "postgres", "rabbitmq": "beam.smp"}  # name -> command of the server's processes


def process_table() -> dict[int, tuple[str, int, float]]:
    """Every process, read once: pid -> (command name, parent pid, CPU seconds of user + system)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    head, _, rest = stat.read().rpartition(")")
            except OSError:
                continue
            fields = rest.split()
            table[int(entry)] = (head.split("(", 1)[1], int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return table


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each named process with its children, and of every process of each of SERVERS (postgres:
    the server and its backends), from one reading of the process table."""
    table = process_table()
    figures = {
        name: sum(cpu for each, (_, parent, cpu) in table.items() if each == pid or parent == pid)
        for name, pid in pids.items()
    }
    figures.update(
        {name: sum(cpu for named, _, cpu in table.values() if named == command) for name, command in SERVERS.items()}
    )
    return figures


def measure(windows: int, seconds: float, clients: int, warm_up: float = 3.0) -> list[dict]:
    with System(services=("calls",), extra_env={"MAIL_TRANSPORT": "sink"}) as system:
        staff = live.Staff(system)
        live.open_call(staff)
        lock, stop = threading.Lock(), threading.Event()
        numbers, done = [0], [0]

        def client(i: int):
            while not stop.is_set():
                with lock:
                    numbers[0] += 1
                    n = numbers[0]
                live.submit(staff.pm, (i + 1) * 10_000_000 + n)
                with lock:
                    done[0] += 1

        pids = {name: p.proc.pid for name, p in system.processes.items() if p.proc is not None}
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(warm_up)
        rows = []
        for _ in range(windows):
            before = cpu_seconds(pids)
            own, count, started = sum(os.times()[:2]), done[0], time.monotonic()
            time.sleep(seconds)
            after = cpu_seconds(pids)
            n = max(done[0] - count, 1)
            row = {"proposals_per_s": round(n / (time.monotonic() - started), 1)}
            row.update({f"{name}_ms": round((after[name] - before[name]) / n * 1000, 2) for name in before})
            row["clients_ms"] = round((sum(os.times()[:2]) - own) / n * 1000, 2)
            row["load"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
        stop.set()
        for thread in threads:
            thread.join(30)
        return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    rows = measure(args.windows, args.seconds, args.clients)
    medians = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    print("medians", json.dumps(medians))


if __name__ == "__main__":
    main()
