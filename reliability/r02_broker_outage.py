"""R2: the broker goes away in the middle of the flow and comes back; the services reconnect by themselves.

Default (the broker is shared): every connection of the run's vhost is closed by the broker, again and again for
`fault_pause` seconds, which is what the services see when RabbitMQ restarts. `--broker-restart` stops and starts
the RabbitMQ application instead (only on a broker nobody else uses). Recovery time = from the end of the
outage until every service answers an RPC and every event queue has its consumer back."""

from __future__ import annotations

import time

from services.common.contracts.topology import SERVICES, subscriptions

from . import invariants
from .faults import BrokerFault
from .flow import run_with_fault
from .scenario import scenario
from .staff import Caller
from .testbed import Testbed


def recovered(bed: Testbed, fault: BrokerFault, probe) -> bool:
    queues = [q for *_, q in subscriptions()] + [f"rpc-{s}" for s in SERVICES]
    if not fault.consumers_ready(queues):
        return False
    for service in SERVICES:
        try:
            if probe.call(service, "health")["status"] != "ok":
                return False
        except Exception:
            return False
    return True


@scenario(2, "broker outage mid-flow")
def run(outcome, sizes, log, broker_restart: bool = False, **_):
    with Testbed(log) as bed:
        fault = BrokerFault(bed.system.vhost, real_restart=broker_restart)
        measured = {}

        def outage():
            cut = fault.outage(sizes.fault_pause)
            ended = time.monotonic()
            probe = Caller(bed.system.amqp_uri, bed.system.token("probe", ["programme_manager"]), timeout=10)
            try:
                deadline = ended + 300
                while not recovered(bed, fault, probe) and time.monotonic() < deadline:
                    time.sleep(0.5)
                measured["recovery_s"] = round(time.monotonic() - ended, 1)
            finally:
                probe.close()
            measured["connections_cut"] = cut
            log(
                f"broker outage: {cut} connections cut over {sizes.fault_pause}s, recovered in "
                f"{measured['recovery_s']}s"
            )

        flow = run_with_fault(
            bed, "r2", sizes.fault_flow_events, outage, outcome, log, sizes.threads, per_window=sizes.per_window
        )
        outcome.check("connections_cut" in measured, "the outage never ran: the flow ended before it was due")
        # the fault must have happened: connections of the services were really closed (or the broker restarted)
        outcome.check(
            measured.get("connections_cut", 0) > 0 or (broker_restart and measured.get("connections_cut")),
            f"no connection was cut ({measured.get('connections_cut')}): nothing was proven",
        )
        outcome.check(measured.get("recovery_s", 999) < 300, "services did not reconnect within 300s")
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        seen = flow.callers_saw()
        outcome.figures = {
            **figures,
            **measured,
            "mode": "restart" if broker_restart else "connections_closed",
            "caller_errors": sum(n for k, n in seen.items() if not k.startswith("refused:")),
            "retries": flow.stats["retries"],
        }
