"""CPU per proposal on P1's path, beside A1c's per call: the CPU (user + system, from /proc/<pid>/stat, children
included) each process spends per completed call, over windows of `seconds` of `clients` threads calling, the
paths' windows interleaved (each path's clients paused while another's run) so the machine's drift moves them all:
- `gateway`: calls and the gateway alone, the clients submitting through the gateway (P1's calls-alone figure);
- `broker`: the same submissions straight over the broker, as A1c's clients call (no gateway hop);
- `anchor`: A1c, the echo service doing one INSERT and COMMIT per call, P1's payload.
The groups: each service process (calls, gateway, the echo), this process (the clients), PostgreSQL's processes
and RabbitMQ's. A path's CPU per call against A1c's says which part of a submission's time is left to remove,
and where; it holds on a machine whose speed moves, where the rates alone do not (the servers' figures include
whatever else uses them meanwhile, so measure on an otherwise quiet machine). Run from the tree to measure,
alternating trees for an A/B:

    .venv/bin/python -m benchmarks.cpu_per_proposal --windows 3 --seconds 6 [--paths gateway,broker,anchor]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from benchmarks import anchors, live
from benchmarks.load import ClientPool
from benchmarks.workloads import dsn
from tests.support.system import System

TICK = os.sysconf("SC_CLK_TCK")
PATHS = ("gateway", "broker", "anchor")

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


def window(pool: ClientPool, pids: dict[str, int], seconds: float, warm_up: float) -> dict:
    """One window of `pool`'s load: calls/s and each group's CPU per call, in ms."""
    pool.resume()
    try:
        time.sleep(warm_up)
        before, own = cpu_seconds(pids), sum(os.times()[:2])
        measured = pool.windows(1, seconds)[0]
        after, own_after = cpu_seconds(pids), sum(os.times()[:2])
    finally:
        pool.pause()
    n = max(measured["calls"], 1)
    row = {"per_s": round(measured["rate"], 1)}
    row.update({f"{name}_ms": round((after[name] - before[name]) / n * 1000, 3) for name in before})
    row["clients_ms"] = round((own_after - own) / n * 1000, 3)
    row["total_ms"] = round(sum(value for key, value in row.items() if key.endswith("_ms")), 3)
    row["load"] = round(os.getloadavg()[0], 2)
    return row


def submitting(client, clients: int, first: int, name: str) -> ClientPool:
    """`clients` threads submitting proposals through `client` (numbers from `first`, distinct per thread), paused."""
    return ClientPool(clients, lambda i, n: live.submit(client, first + (i + 1) * 10_000_000 + n), name).pause().start()


def measure(windows: int, seconds: float, clients: int, paths=PATHS, warm_up: float = 2.0) -> dict[str, list[dict]]:
    with System(services=("calls",), extra_env={"MAIL_TRANSPORT": "sink"}) as system:
        staff = live.Staff(system)
        live.open_call(staff)
        service_pids = {name: p.proc.pid for name, p in system.processes.items() if p.proc is not None}
        pools: dict[str, ClientPool] = {}  # each path's clients, started paused
        pids: dict[str, dict[str, int]] = {}
        echo = None
        bench_pm = lambda: system.rpc_client("bench.pm", ["programme_manager"], timeout=120)  # noqa: E731
        try:
            if "gateway" in paths:
                pools["gateway"] = submitting(staff.pm, clients, 0, "gateway")
                pids["gateway"] = service_pids
            if "broker" in paths:
                pools["broker"] = submitting(bench_pm(), clients, 100_000_000, "broker")
                pids["broker"] = service_pids
            if "anchor" in paths:
                echo = anchors.CommitEcho(
                    bench_pm, system.amqp_uri, system.log_dir, dsn(system, "calls"), live.proposal(1), clients
                )
                pools["anchor"], pids["anchor"] = echo.pool, {"echo": echo.process.proc.pid}
            for path in paths:
                window(pools[path], pids[path], 1.0, warm_up)  # the clients connect and warm up, not counted
            rows: dict[str, list[dict]] = {path: [] for path in paths}
            for _ in range(windows):
                for path in paths:
                    row = window(pools[path], pids[path], seconds, warm_up)
                    rows[path].append(row)
                    print(path, json.dumps(row), flush=True)
            return rows
        finally:
            for pool in pools.values():
                pool.stop()
            if echo is not None:
                echo.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    args = parser.parse_args()
    paths = tuple(p.strip() for p in args.paths.split(",") if p.strip())
    unknown = set(paths) - set(PATHS)
    if unknown or not paths:
        parser.error(f"--paths: choose among {', '.join(PATHS)} (not {', '.join(sorted(unknown)) or 'nothing'})")
    rows = measure(args.windows, args.seconds, args.clients, paths)
    for path, measured in rows.items():
        medians = {key: statistics.median(row[key] for row in measured) for key in measured[0]}
        print("medians", path, json.dumps(medians))


if __name__ == "__main__":
    main()
