"""R13: the system on a real distributed broker. A three-node RabbitMQ cluster of its own on this machine
(reliability/cluster.py: own node names, ports, data dirs and cookie; the main broker is never touched), every
consumer queue a quorum queue (EVENT_QUEUE_TYPE=quorum: replicated on the three nodes), the services given all three
nodes (a kombu failover list, the node to be killed first, so every service is connected to it). Mid-flow that
node is killed -9: the services reconnect to the others (same processes), nothing is lost, nothing applied twice,
the reporting totals equal the grants ledger (every invariant of reliability/invariants.py), and the cluster is
stopped afterwards."""

from __future__ import annotations

import time

from services.common.contracts.topology import SERVICES

from . import invariants
from .cluster import ClusterBroker, ClusterProblem, LocalCluster
from .flow import Flow
from .scenario import scenario
from .testbed import Testbed

VICTIM = "b"


@scenario(13, "three-node RabbitMQ cluster, a node killed -9 mid-flow")
def run(outcome, sizes, log, **_):
    try:
        cluster = LocalCluster(log=log).start()
    except (ClusterProblem, OSError) as exc:
        outcome.fail(f"the cluster could not be started here: {exc}")
        return
    try:
        with Testbed(log, extra_env={"EVENT_QUEUE_TYPE": "quorum"}, broker=ClusterBroker(cluster, VICTIM)) as bed:
            queues = bed.system.broker.queues(bed.system.vhost)
            consumer_queues = {n: q for n, q in queues.items() if n.startswith(("evt-", "rpc-"))}
            outcome.check(
                consumer_queues and all(q["type"] == "quorum" for q in consumer_queues.values()),
                f"not quorum: {sorted(n for n, q in consumer_queues.items() if q['type'] != 'quorum')}",
            )
            pids = {s: bed.system.processes[s].proc.pid for s in ("gateway", *SERVICES)}
            killed_at = {}

            def kill():
                killed_at["t"] = time.monotonic()
                cluster.kill9(VICTIM)
                return VICTIM

            flow = Flow(bed, "r13", threads=sizes.threads, per_window=sizes.per_window)
            try:
                timing = flow.run(int(sizes.flow_events * 1.05), faults=[(0.4, kill)], log=log)
            finally:
                flow.close()
            for problem in flow.problems:
                outcome.fail(f"flow: {problem}")
            outcome.check(not cluster.running(VICTIM), "the node was not killed")
            restarted = [
                s
                for s, pid in pids.items()
                if not bed.system.processes[s].running or bed.system.processes[s].proc.pid != pid
            ]
            outcome.check(not restarted, f"services that did not reconnect (exited): {restarted}")
            figures = invariants.check(bed, outcome, sizes.settle_seconds)
            outcome.check(figures["events"] >= sizes.flow_events, f"only {figures['events']} events produced")
            left = bed.system.broker.queues(bed.system.vhost)
            outcome.check(
                all(q["type"] == "quorum" for n, q in left.items() if n.startswith("evt-")),
                "an event queue is no longer a quorum queue",
            )
            outcome.figures = {
                **figures,
                "nodes": len(cluster.names),
                "killed": 1 if killed_at else 0,
                "retries": flow.stats["retries"],
                "flow_s": round(timing["seconds"]),
            }
    finally:
        cluster.stop()
        log("cluster stopped")
