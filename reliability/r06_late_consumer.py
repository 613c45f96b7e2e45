"""R6: consumers that have never run while events are published (reporting and notifications: not even their
databases exist yet). The kit declared their queues when calls and grants started, so every event waits; when
they start for the first time they apply them all, once."""

from __future__ import annotations

import time

from services.common.contracts.topology import subscriptions
from tests.support.bus import ready_messages

from . import invariants
from .flow import Flow
from .scenario import scenario
from .testbed import Testbed

LATE = ("notifications", "reporting")


@scenario(6, "consumers that never ran catch up")
def run(outcome, sizes, log, **_):
    with Testbed(log, services=("calls", "grants")) as bed:
        flow = Flow(bed, "r6", threads=sizes.threads, per_window=5)
        try:
            flow.run(sizes.late_consumer_events, log=log)
        finally:
            flow.close()
        for problem in flow.problems:
            outcome.fail(f"flow: {problem}")
        bed.settle(sizes.settle_seconds, running=["calls", "grants"])
        late_queues = [queue for consumer, _, _, queue in subscriptions() if consumer in LATE]
        outcome.figures["waiting"] = sum(ready_messages(bed.system.amqp_uri, late_queues).values())
        started = time.monotonic()
        for service in LATE:
            bed.system.start(service)  # first start ever: its database is migrated now
        for service in LATE:
            bed.system.wait_ready(service, 120)
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures["catch_up_s"] = round(time.monotonic() - started, 1)
        outcome.figures = {**figures, **outcome.figures}
