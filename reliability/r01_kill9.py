"""R1: kill -9 of each service in turn (`sizes.killed`: all four, or grants alone in `make test`) in the middle of
a flow of at least `flow_events` events; each is restarted at once. Nothing is lost (committed outbox rows are published by the restarted relay, unacknowledged messages
are redelivered), nothing is applied twice (inbox), and every RPC in flight is answered after the restart."""

from __future__ import annotations

import time

from . import invariants
from .flow import Flow
from .scenario import scenario
from .testbed import Testbed


@scenario(1, "kill -9 of each service mid-flow")
def run(outcome, sizes, log, **_):
    with Testbed(log) as bed:
        restarts, killed = {}, {}

        def kill_and_restart(service):
            def action():
                if service == "notifications":
                    # a kill between the SMTP server's acceptance and the row marked sent resends that one message
                    # with the same Message-ID (SMTP offers no way to ask "did you get it?"): at most one per kill
                    bed.resends_allowed += 1
                bed.kill9(service)
                killed[service] = bed.system.processes[service].proc.returncode
                started = time.monotonic()
                bed.restart(service)
                restarts[service] = round(time.monotonic() - started, 1)
                log(f"{service} killed -9 and back in {restarts[service]}s")
                return service

            return action

        # four kills at 15/35/55/75% of the flow; a single one at 40%
        at = [0.15 + 0.2 * i for i in range(len(sizes.killed))] if len(sizes.killed) > 1 else [0.4]
        faults = [(fraction, kill_and_restart(service)) for fraction, service in zip(at, sizes.killed)]
        flow = Flow(bed, "r1", threads=sizes.threads, per_window=sizes.per_window)
        try:
            # a little over the target: the flow stops starting batches on an estimate of what is in flight
            timing = flow.run(int(sizes.flow_events * 1.05), faults=faults, log=log)
        finally:
            flow.close()
        for problem in flow.problems:
            outcome.fail(f"flow: {problem}")
        outcome.check(len(restarts) == len(sizes.killed), f"only {sorted(restarts)} were killed and restarted")
        # the fault must have happened: each process ended by SIGKILL, not by exiting on its own
        outcome.check(killed and all(code == -9 for code in killed.values()), f"exit statuses {killed}: not kill -9")
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.check(figures["events"] >= sizes.flow_events, f"only {figures['events']} events produced")
        outcome.figures = {
            **figures,
            "kills": len(restarts),
            "max_restart_s": max(restarts.values(), default=0),
            "flow_s": round(timing["seconds"]),
            "retries": flow.stats["retries"],
        }
