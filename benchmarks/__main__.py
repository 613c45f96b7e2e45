"""`python -m benchmarks` (make bench): anchors first, then the system, in one run on a fresh vhost and databases.

    python -m benchmarks [--rounds 5] [--clients 8] [--quick] [--only P1,P4] [--out bench-results.json]

Prints the anchors and the results as Markdown tables and writes bench-results.json (also after each step, so
an interrupted run leaves what it measured). Exits 0 when the bench ran, whether targets were met or missed;
1 only when the bench itself could not run.
"""

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from services.common.security.auth import StaffIssuer
from services.common.security.keys import KeyDirectory
from services.common.storage.migrations import upgrade
from tests.support.infra import REPO

from .profiling import shown
from tests.support.system import System

from . import anchors, dataset, live, workloads
from .results import Anchor, anchors_table, machine, results_table, write_json

WORKLOADS = ("P1", "P2", "P3", "P4", "P5", "P6")


@dataclass
class Config:
    rounds: int = 5
    clients: int = 8
    warmup_s: float = 3.0
    window_s: float = 4.0  # one round of P1 and of the echo anchor
    grants: int = 100_000
    tranches: int = 300_000
    seed: int = 2008
    p2_round_s: float = 4.0  # events per P2 round are sized so that a round lasts about this long
    p2_min_events: int = 400
    p2_max_events: int = 20_000
    p2_timeout_s: float = 120.0
    p3_grants: int = 40  # grants set up to be paid by P3's probes (probes = rounds x (p3_grants // rounds))
    p3_load_fraction: float = 0.7  # P3's offered load, as a fraction of P2's measured throughput
    p3_timeout_s: float = 30.0
    p4_budget_s: float = 150.0  # P4 rounds after the third stop when the next would pass this
    p5_pilot_events: int = 2000
    p5_round_s: float = 30.0  # longer rebuilds are measured on the archive's first events (see P5)
    p5_budget_s: float = 200.0
    drain_timeout_s: float = 180.0
    profile: bool = True
    only: tuple = WORKLOADS
    out: Path = REPO / "bench-results.json"
    out_dir: Path = field(default_factory=lambda: REPO / "var" / "bench")
    keep: bool = False

    @classmethod
    def quick(cls, **overrides):
        """A few minutes, for working on the bench itself: small data set, 3 short rounds."""
        return cls(
            **{
                "rounds": 3,
                "warmup_s": 1.0,
                "window_s": 2.0,
                "grants": 10_000,
                "tranches": 30_000,
                "p2_round_s": 2.0,
                "p3_grants": 12,
                "p5_pilot_events": 1000,
                "p5_round_s": 8.0,
                "p5_budget_s": 30.0,
                **overrides,
            }
        )


def parse_args(argv) -> Config:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--quick", action="store_true", help="small data set, 3 short rounds (not for the table)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. P1,P4 (anchors always run)")
    parser.add_argument("--grants", type=int)
    parser.add_argument("--tranches", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-profile", action="store_true", help="no py-spy profiles of missed targets")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the vhost and databases (for a post-mortem)")
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "rounds": args.rounds,
            "clients": args.clients,
            "grants": args.grants,
            "tranches": args.tranches,
            "seed": args.seed,
            "out": args.out,
        }.items()
        if v is not None
    }
    if args.only:
        overrides["only"] = tuple(w.strip().upper() for w in args.only.split(",") if w.strip())
    if args.no_profile:
        overrides["profile"] = False
    if args.keep:
        overrides["keep"] = True
    return Config.quick(**overrides) if args.quick else Config(**overrides)


class BenchSystem(System):
    """tests.support.system.System with its logs under var/bench/<id>, the services started on demand and
    notifications on the sink transport."""

    def __init__(self, keep: bool):
        # notifications mail through the sink transport: the services are measured, not a disk's fsyncs
        super().__init__(services=(), extra_env={"MAIL_TRANSPORT": "sink"})
        test_logs = self.log_dir
        self.log_dir = REPO / "var" / "bench" / self.id
        self.log_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(test_logs / "keys"), str(self.log_dir / "keys"))  # the run's issuer and service keys
        shutil.rmtree(test_logs, ignore_errors=True)
        self.keys = KeyDirectory(self.log_dir / "keys")
        self.issuer = StaffIssuer.from_key_file(self.keys.issuer_key)
        self.keep = keep

    def __exit__(self, *exc):
        if not self.keep:
            return super().__exit__(*exc)
        for client in self.clients:
            client.close()
        for process in self.processes.values():
            process.stop()


def log(message: str):
    print(message, flush=True)


def git_commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except OSError:
        return None


class Run:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.started = datetime.now(timezone.utc)
        self.t0 = time.monotonic()
        self.anchors: list[Anchor] = []
        self.results = []
        self.data_set = {}
        self.steps = {}

    def anchor(self, anchor_id: str, fn, *args, **kwargs):
        log(f"anchor {anchor_id} …")
        started = time.monotonic()
        try:
            produced = fn(*args, **kwargs)
        except Exception as exc:
            produced = Anchor(anchor_id, anchor_id, "", [], error=f"{type(exc).__name__}: {exc}")
        for a in produced if isinstance(produced, list) else [produced]:
            self.anchors.append(a)
            log(f"  {a.id}: {a.value} {a.unit} {a.rounds}" + (f" ERROR {a.error}" if a.error else ""))
        self.steps[anchor_id] = round(time.monotonic() - started, 1)
        self.save()
        return produced

    def workload(self, workload_id: str, fn, *args, **kwargs):
        if workload_id not in self.cfg.only:
            return None
        log(f"{workload_id} …")
        started = time.monotonic()
        result = fn(*args, **kwargs)
        self.results.append(result)
        self.steps[workload_id] = round(time.monotonic() - started, 1)
        log(
            f"  {workload_id}: {result.figures} → {result.status}"
            + (f"\n  ERROR {result.error}" if result.error else "")
        )
        self.save()
        return result

    def find(self, anchor_id: str) -> Anchor:
        return next((a for a in self.anchors if a.id == anchor_id), Anchor(anchor_id, anchor_id, "", []))

    def payload(self) -> dict:
        cfg = asdict(self.cfg)
        cfg.update(out=shown(self.cfg.out), out_dir=shown(self.cfg.out_dir), only=list(self.cfg.only))
        return {
            "run": {
                "started_at": self.started.isoformat(),
                "duration_s": round(time.monotonic() - self.t0, 1),
                "commit": git_commit(),
                "machine": machine(),
                "config": cfg,
                "step_seconds": self.steps,
                "data_set": {k: v for k, v in self.data_set.items() if k != "expected"},
            },
            "anchors": {a.id: a.to_json() for a in self.anchors},
            "results": {r.id: r.to_json() for r in self.results},
        }

    def save(self):
        write_json(self.cfg.out, self.payload())


def main(argv=None) -> int:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    # nameko's standalone proxies close channels with replies in flight: py-amqp warns about each one
    logging.getLogger("amqp").setLevel(logging.ERROR)
    run = Run(cfg)
    log(
        f"JMDI bench: {cfg.rounds} rounds, {cfg.clients} clients, data set {cfg.grants:,} grants / "
        f"{cfg.tranches:,} tranches; {os.cpu_count()} CPUs, load {machine()['loadavg']}"
    )
    try:
        with BenchSystem(cfg.keep) as system:
            cfg.out_dir = system.log_dir
            measure(run, system)
    except Exception as exc:
        log(f"the bench could not run: {type(exc).__name__}: {exc}")
        run.save()
        return 1
    finally:
        run.save()
    log("\n## Anchors\n\n" + anchors_table(run.anchors))
    log("\n## Results\n\n" + results_table(run.results))
    log(f"\n{len(run.results)} workloads in {time.monotonic() - run.t0:.0f} s; results in {cfg.out}")
    return 0


def measure(run: Run, system: BenchSystem):
    cfg = run.cfg
    reporting_dsn = workloads.dsn(system, "reporting")

    # --- the data set (P4/P5 and the SQL anchor), before any service runs -------------------------------------
    log("data set …")
    started = time.monotonic()
    upgrade("reporting", system.urls["reporting"])
    run.data_set = dataset.load(reporting_dsn, cfg.seed, cfg.grants, cfg.tranches, log=log)
    run.steps["data_set"] = round(time.monotonic() - started, 1)

    # --- anchors ----------------------------------------------------------------------------------------------
    # the anchors are bare nameko services, reached over the broker (the workloads go through the gateway, as staff)
    probe_client = lambda: system.rpc_client("bench.pm", ["programme_manager"], timeout=120)  # noqa: E731
    sample_event = workloads_sample_body()
    echo = run.anchor(
        "A1",
        anchors.rpc_echo,
        probe_client,
        system.amqp_uri,
        system.log_dir,
        live.proposal(1),
        cfg.clients,
        cfg.rounds,
        cfg.window_s,
        cfg.warmup_s,
    )
    dispatch = None  # A2's processes stay up: P2 takes an A2 round before each of its own

    def quiet_dispatch():
        nonlocal dispatch
        dispatch = anchors.EventDispatch(probe_client, system.amqp_uri, system.log_dir, sample_event, cfg.p2_round_s)
        return dispatch.measure_quiet(cfg.rounds)

    try:
        run.anchor("A2", quiet_dispatch)
        run.anchor("A3", anchors.kombu_rates, system.amqp_uri, json.dumps(sample_event).encode(), cfg.rounds, 2.0)
        hand = run.anchor("A5", anchors.hand_sql_totals, reporting_dsn, "JMDI", date.max, cfg.rounds)
        measure_system(run, system, probe_client, echo, hand, dispatch)
    finally:
        if dispatch is not None:
            dispatch.stop()


def measure_system(run: Run, system: BenchSystem, probe_client, echo, hand, dispatch: anchors.EventDispatch | None):
    """The workloads, with the services running (the anchors they are measured against given)."""
    cfg = run.cfg

    # --- the system -------------------------------------------------------------------------------------------
    log("starting the services …")
    started = time.monotonic()
    for service, process in system.processes.items():
        if not process.running:  # the gateway runs already (the system starts it): a second one would be orphaned
            system.start(service)
    for service in system.processes:
        system.wait_ready(service, timeout=120)
    run.steps["start_services"] = round(time.monotonic() - started, 1)
    staff = live.Staff(system)
    sampler = workloads.RssSampler(system)
    try:
        workloads.idle_rss(system, sampler, cfg)
        needs_p1 = {"P1", "P2", "P3"} & set(cfg.only)
        commit_echo = None
        if "P1" in cfg.only:  # A1c: its rounds interleave with P1's
            try:
                commit_echo = anchors.CommitEcho(
                    probe_client,
                    system.amqp_uri,
                    system.log_dir,
                    workloads.dsn(system, "calls"),
                    live.proposal(1),
                    cfg.clients,
                )
            except Exception as exc:
                run.anchors.append(Anchor("A1c", "A1c", "", [], error=f"{type(exc).__name__}: {exc}"))
        try:
            p1 = (
                run.workload("P1", workloads.p1_deadline_rush, system, staff, cfg, echo, sampler, log, commit_echo)
                if needs_p1
                else None
            )
        finally:
            if commit_echo is not None:
                commit_echo.stop()
                run.anchors.append(commit_echo.anchor(cfg.clients))
                run.save()
        if p1 is None and needs_p1:  # P2/P3 need P1's proposals even when P1 is not reported
            workloads.p1_deadline_rush(system, staff, cfg, echo, sampler, log)
        p2 = run.workload("P2", workloads.p2_event_pipeline, system, cfg, dispatch, sampler, log)
        if dispatch is not None and dispatch.interleaved:
            run.anchors = [dispatch.anchor() if a.id == "A2" else a for a in run.anchors]
            run.save()
        run.workload(
            "P3", workloads.p3_propagation_lag, system, staff, cfg, p2 or workloads.Result("P2", "", {}, []), log
        )
        run.workload("P4", workloads.p4_budget_report, system, staff, cfg, hand, run.data_set, sampler, log)
        run.workload("P5", workloads.p5_rebuild, system, staff, cfg, sampler, log)
        run.workload("P6", workloads.p6_memory, sampler, cfg)
    finally:
        sampler.stop()


def workloads_sample_body() -> dict:
    """A tranche_paid envelope as it travels on the bus: the anchors carry the same bytes as P2's events."""
    from decimal import Decimal

    from services.common.contracts.events import make_event

    return make_event(
        "tranche_paid",
        {
            "payment_id": "PAY-G-000001-1",
            "grant_id": "G-000001",
            "reference": "JMDI-2009-MA-0001",
            "tranche_number": 1,
            "amount_eur": Decimal("96000.00"),
            "value_date": date(2009, 7, 1),
            "bank_reference": "BNK-000001-1",
            "approved_by": "farid.finance",
        },
        producer="grants",
    ).body


if __name__ == "__main__":
    sys.exit(main())
