"""P1-P6: the system's workloads, each measured in rounds and expressed against its anchor.

Every function returns a Result and never raises: a workload that fails or times out is recorded as an error
(or "missed" with the numbers it reached) and the bench goes on.
"""

import itertools
import json
import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal

import psycopg2

from services.common.contracts.events import make_event
from services.common.contracts.topology import SUBSCRIPTIONS, exchange_name
from services.common.messaging.outbox import WAKE_CHANNEL
from services.common.storage.tables import outbox

from services.reporting.models import PROJECTION_TABLES, ArchivedEvent

from . import hand_sql, live
from .db import connect
from .dataset import TableWriter
from .load import ClientPool
from .profiling import Recording
from .results import Result, Target, median, percentile, ratio

UTC = timezone.utc


def dsn(system, service: str) -> str:
    return system.urls[service].replace("postgresql+psycopg2://", "postgresql://")


_connections = threading.local()


def connection(system, service: str, autocommit: bool = True):
    """One connection per thread and database, kept for the run: the machine's PostgreSQL is shared (100
    connections) and the services' pools come first; a refused connection is retried for a while."""
    cache = getattr(_connections, "cache", None)
    if cache is None:
        cache = _connections.cache = {}
    key = (system.id, service, autocommit)
    conn = cache.get(key)
    if conn is None or conn.closed:
        conn = cache[key] = connect(dsn(system, service), autocommit)
    return conn


def query(system, service: str, sql: str, params=None):
    conn = connection(system, service)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    except psycopg2.OperationalError:
        conn.close()  # reconnect next time
        raise


def guarded(result_id: str, workload: str, targets):
    """Turn an exception inside a workload into a Result with the error (the bench continues)."""

    def decorator(fn):
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return Result(
                    result_id,
                    workload,
                    {},
                    targets,
                    error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}",
                )

        return wrapper

    return decorator


# --- memory -----------------------------------------------------------------------------------------------------


def rss_mb(pid: int):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler:
    """Samples VmRSS of every service process; each labelled round keeps the maximum per service."""

    def __init__(self, system, interval: float = 0.25):
        self.system = system
        self.interval = interval
        self.label = None
        self.rounds: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss")
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            label = self.label
            if label is None:
                continue
            peaks = self.rounds.setdefault(label, {})
            for name, process in self.system.processes.items():
                if process.running:
                    value = rss_mb(process.proc.pid)
                    if value is not None:
                        peaks[name] = max(peaks.get(name, 0.0), value)

    @contextmanager
    def round(self, label: str):
        self.label = label
        try:
            yield
        finally:
            time.sleep(self.interval * 1.5)  # one more sample of the end of the round
            self.label = None

    def peaks(self, prefix: str) -> list[dict]:
        return [peaks for label, peaks in self.rounds.items() if label.startswith(prefix)]

    def stop(self):
        self._stop.set()


# --- the pipeline's state ---------------------------------------------------------------------------------------


def produced(system, producer: str, event_types) -> int:
    rows = query(system, producer, "SELECT count(*) FROM outbox WHERE event_type = ANY(%s)", (list(event_types),))
    return rows[0][0]


def backlog(system) -> dict:
    """Events produced but not yet applied (or dead-lettered) per consumer, and unpublished outbox rows."""
    missing = {}
    for consumer, sources in SUBSCRIPTIONS.items():
        expected = sum(produced(system, producer, types) for producer, types in sources.items())
        done = query(system, consumer, "SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM dead_letters)")
        missing[consumer] = max(0, expected - done[0][0])
    for producer in ("calls", "grants"):
        missing[f"{producer}.outbox"] = query(
            system, producer, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )[0][0]
    return missing


def wait_drained(system, timeout: float, log) -> dict:
    """Wait until every consumer has caught up (bounded); returns the seconds waited and what was left."""
    started = time.monotonic()
    left = backlog(system)
    while any(left.values()) and time.monotonic() - started < timeout:
        time.sleep(1.0)
        left = backlog(system)
    waited = round(time.monotonic() - started, 1)
    if any(left.values()):
        log(f"  pipeline not drained after {waited} s: {left}")
    return {"seconds": waited, "left": {k: v for k, v in left.items() if v}}


# --- P1 deadline rush ---------------------------------------------------------------------------------------------

P1_TARGETS = [Target("ratio", ">=", 0.70)]
P1_WORKLOAD = (
    "deadline rush: parallel clients submitting valid proposals (calls.submit_proposal); ratio: calls "
    "alone (the downstream services paused) to A1c, rounds interleaved; also with the whole system, and calls "
    "alone over the broker as A1c is reached (no gateway hop)"
)
DOWNSTREAM = ("grants", "notifications", "reporting")


@contextmanager
def paused(system, services):
    """SIGSTOP the services meanwhile (their queues fill; they catch up after SIGCONT)."""
    pids = [system.processes[s].proc.pid for s in services if s in system.processes and system.processes[s].running]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@guarded("P1", P1_WORKLOAD, P1_TARGETS)
def p1_deadline_rush(system, staff, cfg, echo, sampler, log, commit_echo=None) -> Result:
    """Rounds interleaved: A1c (when given), then calls alone, then the whole system, `cfg.rounds` times."""
    live.open_call(staff)
    pool = ClientPool(cfg.clients, lambda i, n: live.submit(staff.pm, (i + 1) * 10_000_000 + n), "p1").start()
    # the same submissions straight over the broker, as A1c's clients call: what the gateway's hop costs
    broker_client = system.rpc_client("bench.pm", ["programme_manager"], timeout=120)
    over_broker = ClientPool(
        cfg.clients, lambda i, n: live.submit(broker_client, 100_000_000 + (i + 1) * 10_000_000 + n), "p1-rpc"
    )
    over_broker.pause().start()
    time.sleep(cfg.warmup_s)
    pool.pause()
    over_broker.resume()  # its clients' proxies connect and warm up, not counted
    time.sleep(cfg.warmup_s)
    over_broker.pause()
    if commit_echo is not None:
        commit_echo.round(1.0)  # warm-up, not counted
        commit_echo.windows.clear()
    alone, whole, direct, anchor_rates = [], [], [], []
    for r in range(cfg.rounds):
        if commit_echo is not None:
            anchor_rates.append(round(commit_echo.round(cfg.window_s)["rate"], 1))
        with paused(system, DOWNSTREAM):
            pool.resume()
            with sampler.round(f"P1.{r}.alone"):
                alone += pool.windows(1, cfg.window_s)
            pool.pause()
            over_broker.resume()
            direct += over_broker.windows(1, cfg.window_s)
            over_broker.pause()
        # the downstream services first catch up with what calls produced alone: the whole system's window
        # measures the rush with them keeping up, not their backlog
        wait_drained(system, cfg.drain_timeout_s, log)
        pool.resume()
        with sampler.round(f"P1.{r}"):
            whole += pool.windows(1, cfg.window_s)
        pool.pause()
        log(
            f"  P1 round {r + 1}: A1c {anchor_rates[-1] if anchor_rates else '-'} calls/s, calls alone "
            f"{alone[-1]['rate']:.1f} (over the broker {direct[-1]['rate']:.1f}), whole system "
            f"{whole[-1]['rate']:.1f} proposals/s"
        )
    over_broker.stop()
    rates_alone = [round(w["rate"], 1) for w in alone]
    rates_direct = [round(w["rate"], 1) for w in direct]
    rates = [round(w["rate"], 1) for w in whole]
    rate, rate_alone, rate_direct = median(rates), median(rates_alone), median(rates_direct)
    anchor = median(anchor_rates) if anchor_rates else None
    value = ratio(rate_alone, anchor) if anchor else ratio(rate, echo.value)
    profile = None
    pool.resume()
    if value is None or value < P1_TARGETS[0].bound:
        profile = _profile_during(system, "calls", cfg, max(8.0, cfg.window_s))
    pool.stop()
    submitted = query(system, "calls", "SELECT count(*) FROM proposals WHERE call_id = %s", (live.LIVE_CALL,))[0][0]
    drain = wait_drained(system, cfg.drain_timeout_s, log)
    raw = {
        "proposals_per_s": rates,
        "proposals_per_s_median": rate,
        "proposals_per_s_calls_alone": rates_alone,
        "proposals_per_s_calls_alone_over_broker": rates_direct,
        "windows_calls_alone_over_broker": direct,
        "errors_over_broker": sum(over_broker.errors),
        "last_error_over_broker": over_broker.last_error,
        "anchor_a1c_calls_per_s": anchor_rates,
        "anchor_echo_calls_per_s": echo.value,
        "anchor_echo_rounds": echo.rounds,
        "ratio_to_a1_echo": _round(ratio(rate_alone, echo.value)),
        "clients": cfg.clients,
        "windows": whole,
        "windows_calls_alone": alone,
        "errors": sum(pool.errors),
        "last_error": pool.last_error,
        "proposals_submitted": submitted,
        "downstream_drain": drain,
        "summary": f"calls alone {fmt_rate(rate_alone)} proposals/s (over the broker, no gateway: "
        f"{fmt_rate(rate_direct)}), whole system {fmt_rate(rate)} vs A1c "
        f"{fmt_rate(anchor)} calls/s (interleaved), A1 echo {fmt_rate(echo.value)}; {cfg.clients} clients",
    }
    return Result(
        "P1",
        P1_WORKLOAD,
        {
            "ratio": _round(value),
            "ratio_whole_system": _round(ratio(rate, anchor) if anchor else None),
            "ratio_over_broker": _round(ratio(rate_direct, anchor) if anchor else None),
            "proposals_per_s": rate_alone,
            "proposals_per_s_over_broker": rate_direct,
            "proposals_per_s_whole_system": rate,
        },
        P1_TARGETS,
        raw,
        profile=profile,
    )


def _profile_during(system, service: str, cfg, seconds: float) -> dict | None:
    if not cfg.profile:
        return None
    recording = Recording(system.processes[service].proc.pid, cfg.out_dir / f"profile-{service}-p1.txt", seconds)
    time.sleep(seconds)
    return {"service": service, **recording.stop()}


# --- P2 event pipeline --------------------------------------------------------------------------------------------

P2_TARGETS = [Target("ratio", ">=", 4.0)]
P2_WORKLOAD = "event pipeline: grants outbox → RabbitMQ → reporting projection (inbox, archive, facts)"


class GrantsEvents:
    """Valid grant_awarded + tranche_paid events (make_event) for the live call's proposals, as outbox rows of the
    grants database: what the commits of many awards and payments would leave behind."""

    batches = itertools.count(1)  # batch prefixes stay unique across instances

    def __init__(self, system, reserved: int):
        rows = query(
            system,
            "calls",
            'SELECT id, reference, "window", target_country, data FROM proposals '
            "WHERE call_id = %s ORDER BY submitted_at",
            (live.LIVE_CALL,),
        )
        if len(rows) <= reserved:
            raise RuntimeError(f"P2 needs proposals from P1; found {len(rows)}")
        self.proposals = rows[reserved:]

    def build(self, count: int, label: str) -> tuple[str, list[dict]]:
        """`count` events (a quarter awards, three tranches each) with ids starting with a batch prefix."""
        batch = next(GrantsEvents.batches)
        prefix = f"b2{batch:06x}"
        now = datetime.now(UTC)
        rows, serial = [], 0

        def row(event_type, data):
            nonlocal serial
            serial += 1
            rows.append(
                outbox_row(
                    make_event(
                        event_type,
                        data,
                        producer="grants",
                        actor="bench",
                        event_id=f"{prefix}-0000-4000-8000-{serial:012x}",
                    ),
                    "grants",
                )
            )

        for g in range(count // 4):
            pid, reference, window, country, data = self.proposals[g % len(self.proposals)]
            grant_id = f"G-{label}-{batch}-{g}"
            row(
                "grant_awarded",
                {
                    "grant_id": grant_id,
                    "proposal_id": pid,
                    "reference": reference,
                    "call_id": live.LIVE_CALL,
                    "programme_id": live.LIVE_PROGRAMME,
                    "window": window,
                    "country": country,
                    "applicant_type": data["applicant_type"],
                    "lead_organisation": data["lead_organisation"],
                    "title": data["title"],
                    "amount_eur": Decimal("150000.00"),
                    "budget": {k: Decimal(v) for k, v in data["budget"].items()},
                    "decision_reference": "SC-2010-02",
                    "decision_date": date.today(),
                    "awarded_at": now,
                },
            )
            for n, amount in enumerate(("60000.00", "45000.00", "30000.00"), start=1):
                row(
                    "tranche_paid",
                    {
                        "payment_id": f"{grant_id}-T{n}",
                        "grant_id": grant_id,
                        "reference": reference,
                        "tranche_number": n,
                        "amount_eur": Decimal(amount),
                        "value_date": date.today(),
                        "bank_reference": f"BNK-{grant_id}-{n}",
                        "approved_by": "bench.approver",
                    },
                )
        return prefix, rows


def insert_outbox(system, rows: list[dict], producer: str = "grants") -> float:
    """COPY the rows into the producer's outbox in one transaction; returns the wall-clock time of the commit.
    Its NOTIFY wakes the producer's relay at the commit, as the producer's own commits do."""
    writer = TableWriter(outbox)
    for r in rows:
        writer.add(r)
    conn = connection(system, producer, autocommit=False)
    with conn, conn.cursor() as cur:
        writer.flush(cur)
        cur.execute(f"NOTIFY {WAKE_CHANNEL}")
    return time.time()


def outbox_row(evt, producer: str) -> dict:
    return {
        "event_id": evt.event_id,
        "event_type": evt.event_type,
        "exchange": exchange_name(producer),
        "routing_key": evt.event_type,
        "body": json.dumps(evt.body),
        "headers": {},
        "created_at": datetime.now(UTC),
        "published_at": None,
        "attempts": 0,
    }


def applied(system, prefix: str):
    """(count, first, last applied_at as epoch seconds) of a batch in reporting's inbox."""
    ((count, first, last),) = query(
        system,
        "reporting",
        "SELECT count(*), extract(epoch FROM min(applied_at)), extract(epoch FROM max(applied_at)) FROM inbox "
        "WHERE event_id LIKE %s",
        (prefix + "-%",),
    )
    return count, float(first) if first is not None else None, float(last) if last is not None else None


def published(system, prefix: str):
    ((count, first, last),) = query(
        system,
        "grants",
        "SELECT count(*), extract(epoch FROM min(published_at)), extract(epoch FROM max(published_at)) FROM outbox "
        "WHERE event_id LIKE %s AND published_at IS NOT NULL",
        (prefix + "-%",),
    )
    return count, float(first) if first is not None else None, float(last) if last is not None else None


APPLIED_POLL_SECONDS = 0.5


def pipeline_round(system, events: GrantsEvents, count: int, label: str, timeout: float) -> dict:
    prefix, rows = events.build(count, label)
    committed = insert_outbox(system, rows)
    deadline = time.monotonic() + timeout
    done, first, last = applied(system, prefix)
    while done < len(rows) and time.monotonic() < deadline:
        # the figures come from the rows' own stamps, not from when this poll sees them: each poll scans the
        # inbox (~7 ms of PostgreSQL at 50,000 rows), so it polls seldom enough not to load what it measures
        time.sleep(APPLIED_POLL_SECONDS)
        done, first, last = applied(system, prefix)
    relayed, relay_first, relay_last = published(system, prefix)
    # per event: from the first event leaving the outbox to the last one applied. Reporting stamps a whole batch
    # when it commits, so its own first stamp comes after the first batch's work (span_rate leaves that out)
    span = (last - relay_first) if relay_first is not None and last is not None and last > relay_first else None
    applied_span = (last - first) if first is not None and last is not None and last > first else None
    return {
        "events": len(rows),
        "applied": done,
        "complete": done == len(rows),
        "rate": round(done / span, 1) if span else None,
        "span_rate": round(done / applied_span, 1) if applied_span else None,
        "end_to_end_rate": round(done / (last - committed), 1) if last else None,
        "first_applied_after_commit_s": round(first - committed, 3) if first else None,
        "relay_rate": round(relayed / (relay_last - relay_first), 1)
        if relay_first and relay_last and relay_last > relay_first
        else None,
        "seconds": round(span, 3) if span else None,
    }


@guarded("P2", P2_WORKLOAD, P2_TARGETS)
def p2_event_pipeline(system, cfg, dispatch, sampler, log) -> Result:
    if dispatch is None:
        raise RuntimeError("the anchor A2 could not start: P2 has nothing to be measured against")
    events = GrantsEvents(system, reserved=cfg.p3_grants)
    pilot = pipeline_round(system, events, 400, "pilot", cfg.p2_timeout_s)
    wait_drained(system, cfg.drain_timeout_s, log)
    count = int(min(cfg.p2_max_events, max(cfg.p2_min_events, (pilot["rate"] or 100) * cfg.p2_round_s))) // 4 * 4
    rounds, drains, anchor_rates = [], [], []
    for r in range(cfg.rounds):
        # A2's round just before (interleaved, as A1c's with P1's): the services idle after the drain, as here
        anchor_rates.append(round(dispatch.round(), 1))
        with sampler.round(f"P2.{r}"):
            rounds.append(pipeline_round(system, events, count, f"r{r}", cfg.p2_timeout_s))
        log(
            f"  P2 round {r + 1}: {rounds[-1]['rate']} events/s ({rounds[-1]['applied']}/{count} applied); "
            f"A2 before it {anchor_rates[-1]} events/s"
        )
        drains.append(wait_drained(system, cfg.drain_timeout_s, log)["seconds"])
    rates = [r["rate"] for r in rounds]
    incomplete = [r for r in rounds if not r["complete"]]
    rate = median(rates)
    anchor = median(anchor_rates)
    value = ratio(rate, anchor)
    profile = None
    if cfg.profile and (value is None or value < P2_TARGETS[0].bound):
        recording = Recording(
            system.processes["reporting"].proc.pid, cfg.out_dir / "profile-reporting-p2.txt", cfg.p2_timeout_s
        )
        extra = pipeline_round(system, events, count, "profiled", cfg.p2_timeout_s)
        profile = {"service": "reporting", "round": extra, **recording.stop()}
        wait_drained(system, cfg.drain_timeout_s, log)
    raw = {
        "events_per_s": rates,
        "events_per_s_median": rate,
        "anchor_dispatch_events_per_s": anchor,
        "anchor_dispatch_rounds": anchor_rates,
        # A2 measured before the services started, as in the runs before its rounds were interleaved
        "anchor_dispatch_quiet_events_per_s": dispatch.quiet_median,
        "ratio_to_quiet_anchor": _round(ratio(rate, dispatch.quiet_median)),
        "events_per_round": count,
        "pilot": pilot,
        "rounds": rounds,
        "relay_events_per_s_median": median([r["relay_rate"] for r in rounds]),
        "drain_after_round_s": drains,
        "summary": f"{fmt_rate(rate)} events/s applied vs dispatch→handler {fmt_rate(anchor)} events/s",
    }
    notes = [f"{len(incomplete)} round(s) did not complete within {cfg.p2_timeout_s} s"] if incomplete else []
    return Result(
        "P2", P2_WORKLOAD, {"ratio": _round(value), "events_per_s": rate}, P2_TARGETS, raw, notes, profile=profile
    )


# --- P3 propagation lag -------------------------------------------------------------------------------------------

P3_TARGETS = [Target("p99_s", "<=", 0.5)]
P3_WORKLOAD = "propagation lag under sustained P2 load: approve_payment returns → tranche fact in reporting"


class Feeder:
    """Keeps the pipeline busy: a steady flow of P2 events into the grants outbox, `rate` per second."""

    def __init__(self, system, events: GrantsEvents, rate: float, seconds_of_events: float):
        self.system = system
        self.tick = 0.25
        per_tick = max(4, int(rate * self.tick) // 4 * 4)
        ticks = int(seconds_of_events / self.tick) + 1
        _, rows = events.build(per_tick * ticks, "p3")
        self.chunks = [rows[i : i + per_tick] for i in range(0, len(rows), per_tick)]
        self.rate = per_tick / self.tick
        self.fed = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="feeder")

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        next_at = time.monotonic()
        try:
            for chunk in self.chunks:
                if self._stop.is_set():
                    return
                insert_outbox(self.system, chunk)
                self.fed += len(chunk)
                next_at += self.tick
                time.sleep(max(0.0, next_at - time.monotonic()))
        except Exception as exc:  # reported with P3: its probes then ran without the intended load
            self.error = f"{type(exc).__name__}: {exc}"

    def stop(self):
        self._stop.set()
        self._thread.join(30)


@guarded("P3", P3_WORKLOAD, P3_TARGETS)
def p3_propagation_lag(system, staff, cfg, p2: Result, log) -> Result:
    payments = p3_payable_tranches(system, staff, cfg.p3_grants)
    wait_drained(system, cfg.drain_timeout_s, log)
    p2_rate = (p2.figures or {}).get("events_per_s") or 200
    probes_per_round = max(1, len(payments) // cfg.rounds)
    offered = p2_rate * cfg.p3_load_fraction
    feeder = Feeder(
        system, GrantsEvents(system, reserved=cfg.p3_grants), offered, cfg.rounds * probes_per_round * 1.5 + 10
    )
    conn = connection(system, "reporting")
    rounds, probes = [], []
    try:
        feeder.start()
        time.sleep(2)  # the pipeline reaches its steady state
        n = 0
        for r in range(cfg.rounds):
            lags = []
            for _ in range(probes_per_round):
                payment = payments[n]
                live.approve(staff, payment, n)
                returned = time.time()
                seen = _wait_visible(conn, payment["payment_id"], cfg.p3_timeout_s)
                lag = (seen - returned) if seen else None
                probes.append({"payment_id": payment["payment_id"], "returned": returned, "lag_s": lag})
                lags.append(lag if lag is not None else cfg.p3_timeout_s)
                n += 1
                time.sleep(0.3)
            rounds.append(
                {
                    "p50_s": round(percentile(lags, 50), 4),
                    "p99_s": round(percentile(lags, 99), 4),
                    "max_s": round(max(lags), 4),
                    "probes": len(lags),
                }
            )
            log(f"  P3 round {r + 1}: p50 {rounds[-1]['p50_s']} s, p99 {rounds[-1]['p99_s']} s")
    finally:
        feeder.stop()
    breakdown = _lag_breakdown(system, probes)
    wait_drained(system, cfg.drain_timeout_s, log)
    p50, p99 = median([r["p50_s"] for r in rounds]), median([r["p99_s"] for r in rounds])
    all_lags = [p["lag_s"] for p in probes if p["lag_s"] is not None]
    raw = {
        "rounds": rounds,
        "offered_events_per_s": round(feeder.rate, 1),
        "fed_events": feeder.fed,
        "p2_events_per_s": p2_rate,
        "load_fraction_of_p2": cfg.p3_load_fraction,
        "pooled_p50_s": _round(percentile(all_lags, 50)),
        "pooled_p99_s": _round(percentile(all_lags, 99)),
        "not_seen": sum(1 for p in probes if p["lag_s"] is None),
        "breakdown_median_s": breakdown,
        "summary": f"{len(probes)} probes under {feeder.rate:.0f} events/s offered",
    }
    notes = [f"the load feeder failed: {feeder.error}"] if feeder.error else []
    if feeder.fed < feeder.rate * 2:
        notes.append(f"only {feeder.fed} events were fed: the probes ran with little load")
    return Result("P3", P3_WORKLOAD, {"p50_s": _round(p50), "p99_s": _round(p99)}, P3_TARGETS, raw, notes)


def p3_payable_tranches(system, staff, count: int) -> list[dict]:
    """The first `count` live proposals ranked (ranking_published through the calls outbox, as calls would
    publish it), awarded, contracted, their pre-financing requested: ready for P3's timed approvals."""
    rows = query(
        system,
        "calls",
        'SELECT id, reference, "window", target_country FROM proposals '
        "WHERE call_id = %s ORDER BY submitted_at LIMIT %s",
        (live.LIVE_CALL, count),
    )
    proposals = [dict(zip(("id", "reference", "window", "target_country"), r)) for r in rows]
    events = []
    for window in sorted({p["window"] for p in proposals}):
        ranked = live.ranking_entries([p for p in proposals if p["window"] == window])
        events.append(
            outbox_row(
                make_event(
                    "ranking_published",
                    {
                        "call_id": live.LIVE_CALL,
                        "window": window,
                        "threshold": Decimal("60.00"),
                        "main": ranked,
                        "reserve": [],
                        "excluded": [],
                        "published_at": datetime.now(UTC),
                    },
                    producer="calls",
                ),
                "calls",
            )
        )
    insert_outbox(system, events, "calls")
    grants = [live.award(staff, p["id"]) for p in proposals]
    return [live.payable_tranche(staff, grant, n) for n, grant in enumerate(grants)]


def _wait_visible(conn, payment_id: str, timeout: float):
    deadline = time.monotonic() + timeout
    with conn.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT 1 FROM tranche_facts WHERE payment_id = %s", (payment_id,))
            if cur.fetchone():
                return time.time()
            time.sleep(0.01)
    return None


def _lag_breakdown(system, probes) -> dict:
    """Median seconds from the RPC's return to publication (outbox relay) and from publication to the fact."""
    relay, consume = [], []
    for probe in probes:
        rows = query(
            system,
            "grants",
            "SELECT event_id, extract(epoch FROM published_at) FROM outbox "
            "WHERE event_type = 'tranche_paid' AND body LIKE %s",
            (f'%"payment_id": "{probe["payment_id"]}"%',),
        )
        if not rows or rows[0][1] is None:
            continue
        event_id, published_at = rows[0][0], float(rows[0][1])
        done = query(
            system, "reporting", "SELECT extract(epoch FROM applied_at) FROM inbox WHERE event_id = %s", (event_id,)
        )
        relay.append(published_at - probe["returned"])
        if done:
            consume.append(float(done[0][0]) - published_at)
    return {"return_to_published": _round(median(relay)), "published_to_applied": _round(median(consume))}


# --- P4 budget report ---------------------------------------------------------------------------------------------

P4_TARGETS = [Target("ratio", "<=", 2.0), Target("rss_mb", "<=", 300)]
P4_WORKLOAD = (
    "EC budget report totals (reporting.budget_report, JSON, grants=false) over the data set, each round "
    "next to a hand-SQL round; then every grant line through reporting.grant_lines"
)
GRANT_PAGE = 5000


@guarded("P4", P4_WORKLOAD, P4_TARGETS)
def p4_budget_report(system, staff, cfg, hand, data_set: dict, sampler, log) -> Result:
    args = {"programme_id": "JMDI", "format": "json", "grants": False}
    recording = (
        Recording(system.processes["reporting"].proc.pid, cfg.out_dir / "profile-reporting-p4.txt", 600)
        if cfg.profile
        else None
    )
    started = time.perf_counter()
    first = staff.reporter.reporting.budget_report(**args)  # warm-up, profiled; not counted
    warmup = time.perf_counter() - started
    profile = {"service": "reporting", "call": "warm-up budget_report", **recording.stop()} if recording else None
    timings, report, notes, same_time_sql = [], first, [], []
    hand_conn = connection(system, "reporting", False)
    for r in range(cfg.rounds):
        # interleaved: the hand SQL right before each report round, so machine load moves both sides
        same_time_sql.append(round(hand_sql.totals(hand_conn, "JMDI", date.max)[0], 4))
        with sampler.round(f"P4.{r}"):
            started = time.perf_counter()
            report = staff.reporter.reporting.budget_report(**args)
            timings.append(round(time.perf_counter() - started, 3))
        log(f"  P4 round {r + 1}: {timings[-1]} s (hand SQL {same_time_sql[-1]} s)")
        if len(timings) >= 3 and len(timings) < cfg.rounds and sum(timings) + timings[-1] > cfg.p4_budget_s:
            notes.append(f"{len(timings)} rounds within the P4 budget of {cfg.p4_budget_s:.0f} s")
            break
    # the grant lines, paged as a client (or the file exports) read them: time and reporting's memory meanwhile
    lines, pages, after = 0, 0, None
    with sampler.round("P4.lines"):
        started = time.perf_counter()
        while True:
            page = staff.reporter.reporting.grant_lines(
                programme_id="JMDI", limit=GRANT_PAGE, **({"after": after} if after else {})
            )
            lines, pages, after = lines + len(page["grants"]), pages + 1, page["next"]
            if after is None:
                break
        lines_s = round(time.perf_counter() - started, 3)
    log(f"  P4 grant lines: {lines:,} in {pages} pages, {lines_s} s")
    rss = [peaks.get("reporting") for peaks in sampler.peaks("P4.") if peaks.get("reporting") is not None]
    rss_mb_peak = round(max(rss), 1) if rss else None
    report_s = median(timings)
    hand_now = median(same_time_sql)
    value = ratio(report_s, hand_now)
    scrape_s = _metrics_scrape_seconds(system, "reporting")
    expected = data_set.get("expected", {})
    checks = {
        "report_committed_eur": report.get("committed_eur"),
        "report_disbursed_eur": report.get("disbursed_eur"),
        "hand_sql_committed_eur": hand.detail.get("committed_eur"),
        "hand_sql_disbursed_eur": hand.detail.get("disbursed_eur"),
        "data_set": expected,
        "report_awards": report.get("counts", {}).get("awards"),
        "grant_lines_paged": lines,
    }
    agree = (
        checks["report_committed_eur"] == checks["hand_sql_committed_eur"] == expected.get("committed_eur")
        and checks["report_disbursed_eur"] == checks["hand_sql_disbursed_eur"] == expected.get("disbursed_eur")
        and lines == checks["report_awards"]
    )
    raw = {
        "report_s": timings,
        "report_s_median": report_s,
        "warmup_s": round(warmup, 3),
        "anchor_hand_sql_s": hand.value,
        "anchor_hand_sql_rounds": hand.rounds,
        "hand_sql_s_now": same_time_sql,
        "ratio_to_anchor_a5": _round(ratio(report_s, hand.value)),
        "response_bytes": len(json.dumps(report)),
        "totals_agree": agree,
        "checks": checks,
        "grant_lines_s": lines_s,
        "grant_lines_pages": pages,
        "rss_mb_rounds": rss,
        "metrics_scrape_s": scrape_s,
        "summary": f"report {fmt_s(report_s)} vs hand SQL {fmt_s(hand_now)} (interleaved); "
        f"{lines:,} grant lines paged in {fmt_s(lines_s)}; reporting peak {fmt_rate(rss_mb_peak)} MB",
    }
    if not agree:
        notes.append("the report's totals differ from the hand SQL / the data set: see raw.checks")
    return Result(
        "P4",
        P4_WORKLOAD,
        {"ratio": _round(value), "report_s": report_s, "rss_mb": rss_mb_peak},
        P4_TARGETS,
        raw,
        notes,
        profile=profile,
    )


def _metrics_scrape_seconds(system, service: str):
    """One GET /metrics (Prometheus' scrape; the Kubernetes probes use the same path) after new events."""
    import urllib.request

    started = time.perf_counter()
    try:
        with urllib.request.urlopen(system.metrics_url(service), timeout=300) as response:
            response.read()
    except Exception as exc:  # informational: the figure is reported as missing
        return f"{type(exc).__name__}: {exc}"
    return round(time.perf_counter() - started, 3)


# --- P5 rebuild -------------------------------------------------------------------------------------------------

P5_TARGETS = [Target("events_per_s", ">=", 20000)]
P5_WORKLOAD = "rebuild of reporting's projections from its event archive (reporting.rebuild_projections)"


@contextmanager
def archive_slice(system, events: int | None):
    """Reporting's archive cut to its first `events` events (arrival order) while inside; None: the whole of it.

    The full archive is set aside by renaming it (instant) and restored on the way out."""
    if events is None:
        yield
        return
    table = ArchivedEvent.__tablename__
    conn = connection(system, "reporting")
    with conn.cursor() as cur:
        cur.execute("SET lock_timeout = '60s'")
        cur.execute(f"ALTER TABLE {table} RENAME TO {table}_full")
        try:
            cur.execute(f"CREATE TABLE {table} (LIKE {table}_full INCLUDING ALL)")
            cur.execute(f"INSERT INTO {table} SELECT * FROM {table}_full ORDER BY seq LIMIT %s", (events,))
            cur.execute(f"ANALYZE {table}")
            yield
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"ALTER TABLE {table}_full RENAME TO {table}")


def _vacuum(system):
    """What autovacuum would do between rebuilds, done now: each round starts without the previous round's dead
    rows (a rebuild deletes every fact), so rounds are comparable."""
    with connection(system, "reporting").cursor() as cur:
        for model in PROJECTION_TABLES + (ArchivedEvent,):
            cur.execute(f"VACUUM ANALYZE {model.__tablename__}")


def _rebuild(staff, system) -> tuple[int, float]:
    _vacuum(system)
    started = time.perf_counter()
    replayed = staff.ops.reporting.rebuild_projections()["events_replayed"]
    return replayed, time.perf_counter() - started


def _rebuilt_as_archived(system) -> bool:
    """Every grant_awarded and tranche_paid of the (possibly cut) archive is a fact again after the rebuild."""
    table = ArchivedEvent.__tablename__
    ((awards, tranches),) = query(
        system,
        "reporting",
        f"SELECT count(*) FILTER (WHERE event_type = 'grant_awarded'), "
        f"count(*) FILTER (WHERE event_type = 'tranche_paid') FROM {table}",
    )
    ((grant_rows, tranche_rows),) = query(
        system, "reporting", "SELECT (SELECT count(*) FROM grant_facts), (SELECT count(*) FROM tranche_facts)"
    )
    return (awards, tranches) == (grant_rows, tranche_rows)


P5_SIZING_STEPS = 3  # rebuilds, at most, between the pilot and the rounds
P5_WHOLE_ROUNDS = 3  # the whole archive is rebuilt when this many rebuilds of it fit in the P5 budget


def _p5_size(archived: int, rate: float, cfg, least: int) -> int:
    """The events per rebuild at `rate`: the whole archive if P5_WHOLE_ROUNDS rebuilds of it fit in the budget,
    else what fits in a round."""
    if archived / rate * P5_WHOLE_ROUNDS <= cfg.p5_budget_s:
        return archived
    return min(archived, max(int(rate * cfg.p5_round_s), least))


@guarded("P5", P5_WORKLOAD, P5_TARGETS)
def p5_rebuild(system, staff, cfg, sampler, log) -> Result:
    """A pilot rebuild over the archive's first events gives a first rate, sizing rebuilds a truer one; the rounds
    then replay the whole archive if P5_WHOLE_ROUNDS rebuilds fit in cfg.p5_budget_s at that rate, else the largest
    first slice that fits in cfg.p5_round_s."""
    archived = query(system, "reporting", f"SELECT count(*) FROM {ArchivedEvent.__tablename__}")[0][0]
    _, before = hand_sql.totals(connection(system, "reporting", False), "JMDI", date.max)
    notes, profile = [], None
    pilot_size = min(archived, cfg.p5_pilot_events)
    recording = (
        Recording(system.processes["reporting"].proc.pid, cfg.out_dir / "profile-reporting-p5.txt", 30)
        if cfg.profile
        else None
    )
    with archive_slice(system, pilot_size if pilot_size < archived else None):
        replayed, elapsed = _rebuild(staff, system)
    if recording:
        profile = {"service": "reporting", "note": "the pilot rebuild", **recording.stop()}
    pilot = {"events": replayed, "seconds": round(elapsed, 2), "rate": round(replayed / elapsed, 1)}
    log(f"  P5 pilot: {replayed:,} events in {elapsed:.1f} s")
    # a set-based rebuild has a fixed cost (new tables, indexes, the swap) a small pilot cannot spread: sizing
    # rebuilds grow the slice to what the last one's rate fits in a round, until the whole archive fits the budget
    # or the size stops growing, so the rounds measure the whole archive whenever it fits (and leave its facts)
    sizing, measured, rate = [], pilot_size, pilot["rate"]
    size = _p5_size(archived, rate, cfg, pilot_size)
    while measured * 1.2 < size < archived and len(sizing) < P5_SIZING_STEPS:
        with archive_slice(system, size):
            replayed, elapsed = _rebuild(staff, system)
        sizing.append({"events": replayed, "seconds": round(elapsed, 2), "rate": round(replayed / elapsed, 1)})
        log(f"  P5 sizing: {replayed:,} events in {elapsed:.1f} s")
        measured, rate = size, replayed / elapsed
        size = _p5_size(archived, rate, cfg, pilot_size)
    sliced = size < archived
    if sliced:
        notes.append(
            f"measured on the archive's first {size:,} of {archived:,} events: at the rate measured the "
            f"whole archive takes {archived / rate:.0f} s per rebuild, {P5_WHOLE_ROUNDS} rebuilds beyond "
            f"the P5 budget of {cfg.p5_budget_s:.0f} s"
        )
    rounds, spent = [], 0.0
    with archive_slice(system, size if sliced else None):
        while len(rounds) < cfg.rounds:
            with sampler.round(f"P5.{len(rounds)}"):
                replayed, elapsed = _rebuild(staff, system)
            rounds.append({"events": replayed, "seconds": round(elapsed, 2), "rate": round(replayed / elapsed, 1)})
            log(f"  P5 round {len(rounds)}: {replayed:,} events in {elapsed:.1f} s")
            spent += elapsed
            if len(rounds) < cfg.rounds and spent + elapsed * 1.1 > cfg.p5_budget_s:
                notes.append(f"{len(rounds)} round(s) within the P5 budget of {cfg.p5_budget_s:.0f} s")
                break
        complete = _rebuilt_as_archived(system)
    if not complete:
        notes.append("the rebuilt facts do not match the archive's grant_awarded/tranche_paid events")
    same = None
    if not sliced:
        _, after = hand_sql.totals(connection(system, "reporting", False), "JMDI", date.max)
        same = before == after
        if not same:
            notes.append("the rebuilt projections give different totals than before the rebuild")
    rates = [r["rate"] for r in rounds]
    rate = median(rates)
    raw = {
        "rounds": rounds,
        "events_per_s": rates,
        "pilot": pilot,
        "sizing": sizing,
        "archived_events": archived,
        "events_per_rebuild": size,
        "whole_archive": not sliced,
        "whole_archive_estimate_s": round(archived / rate, 1) if rate else None,
        "facts_match_archive": complete,
        "totals_unchanged": same,
        "summary": f"{median([r['events'] for r in rounds]):,} events per rebuild in "
        f"{median([r['seconds'] for r in rounds]):.1f} s"
        + (f" (archive: {archived:,}, ~{archived / rate / 60:.0f} min whole)" if sliced and rate else ""),
    }
    return Result("P5", P5_WORKLOAD, {"events_per_s": rate}, P5_TARGETS, raw, notes, profile=profile)


# --- P6 memory ----------------------------------------------------------------------------------------------------

P6_TARGETS = [Target("rss_idle_mb", "<=", 150), Target("rss_load_mb", "<=", 300)]
P6_WORKLOAD = "resident memory (VmRSS) of each service process: idle, and under P1/P2 (max over services)"
# P4 and P5 rounds are sampled too: their peaks are reported by service (raw.peak_by_service_mb), not judged


def idle_rss(system, sampler, cfg):
    for r in range(cfg.rounds):
        with sampler.round(f"idle.{r}"):
            time.sleep(1.0)


@guarded("P6", P6_WORKLOAD, P6_TARGETS)
def p6_memory(sampler, cfg) -> Result:
    def per_round_max(prefix_list):
        rounds = [peaks for prefix in prefix_list for peaks in sampler.peaks(prefix)]
        return [round(max(p.values()), 1) for p in rounds if p], rounds

    idle, idle_rounds = per_round_max(["idle."])
    load, load_rounds = per_round_max(["P1.", "P2."])
    by_service = {}
    for label, peaks in sampler.rounds.items():
        phase = label.split(".")[0]
        for service, mb in peaks.items():
            current = by_service.setdefault(service, {})
            current[phase] = round(max(current.get(phase, 0.0), mb), 1)
    figures = {"rss_idle_mb": median(idle), "rss_load_mb": median(load)}
    peak_load = max(load) if load else None
    notes = []
    if peak_load is not None and peak_load > P6_TARGETS[1].bound >= (figures["rss_load_mb"] or 0):
        notes.append(f"the peak under load ({peak_load:.0f} MB) exceeds the bound though the median does not")
    raw = {
        "idle_rounds_mb": idle,
        "load_rounds_mb": load,
        "peak_load_mb": peak_load,
        "peak_by_service_mb": by_service,
        "summary": f"idle {fmt_rate(figures['rss_idle_mb'])} MB, load {fmt_rate(figures['rss_load_mb'])} MB "
        f"(peak {fmt_rate(peak_load)} MB)",
    }
    return Result("P6", P6_WORKLOAD, figures, P6_TARGETS, raw, notes)


# --- helpers -------------------------------------------------------------------------------------------------------


def _round(value, places: int = 4):
    return None if value is None else round(value, places)


def fmt_s(value) -> str:
    return "—" if value is None else f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def fmt_rate(value) -> str:
    return "—" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
