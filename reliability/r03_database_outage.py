"""R3: PostgreSQL goes away in the middle of the flow (the run's databases refuse connections and every backend
is terminated for `fault_pause` seconds: what a restart does to the services' connections, without touching the
shared server). The services recover by themselves; every RPC caller got a success or a clear error; no change
was half applied (each state row has exactly its event — invariants.atomic_changes); invariants hold."""

from __future__ import annotations

import time

from services.common.contracts.topology import SERVICES

from . import invariants
from .faults import DatabaseFault
from .flow import TRANSIENT, run_with_fault
from .scenario import scenario
from .staff import Caller
from .testbed import Testbed


def clear(error: str) -> bool:
    """What a caller may see while the database is away: a typed refusal, an internal error that names the
    database failure, or no answer in time (then it retries with the same request)."""
    kind, _, name = error.partition(":")
    return kind in ("refused", "no_answer") or (kind == "internal" and name in TRANSIENT)


@scenario(3, "database outage mid-flow")
def run(outcome, sizes, log, **_):
    with Testbed(log) as bed:
        fault = DatabaseFault(bed.system.databases.values())
        measured = {}

        def outage():
            cut = fault.outage(sizes.fault_pause)
            ended = time.monotonic()
            probe = Caller(bed.system.amqp_uri, bed.system.token("probe", ["programme_manager"]), timeout=10)
            try:
                pending = set(SERVICES)
                while pending and time.monotonic() < ended + 300:
                    for service in list(pending):
                        try:  # health reads the service's database
                            if probe.call(service, "health")["status"] == "ok":
                                pending.discard(service)
                        except Exception:
                            pass
                    time.sleep(0.3)
                measured["recovery_s"] = round(time.monotonic() - ended, 1)
            finally:
                probe.close()
            measured["backends_cut"] = cut
            log(
                f"database outage: {cut} backends cut over {sizes.fault_pause}s, recovered in {measured['recovery_s']}s"
            )

        flow = run_with_fault(
            bed, "r3", sizes.fault_flow_events, outage, outcome, log, sizes.threads, per_window=sizes.per_window
        )
        seen = flow.callers_saw()
        unclear = {name: n for name, n in seen.items() if not clear(name)}
        outcome.check(not unclear, f"callers got errors that do not say what happened: {unclear}")
        outcome.check("backends_cut" in measured, "the outage never ran: the flow ended before it was due")
        # the fault must have happened: the services' database connections were really terminated
        outcome.check(
            measured.get("backends_cut", 0) > 0,
            f"no database backend was cut ({measured.get('backends_cut')}): nothing was proven",
        )
        outcome.check(measured.get("recovery_s", 999) < 300, "services did not recover within 300s")
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures = {
            **figures,
            **measured,
            "caller_errors": sum(n for k, n in seen.items() if not k.startswith("refused:")),
            "db_errors": sum(n for k, n in seen.items() if k.startswith("internal:")),
            "retries": flow.stats["retries"],
        }
