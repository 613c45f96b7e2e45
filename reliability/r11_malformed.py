"""R11: malformed messages during a flow. Each kind the message guard refuses (services/common/messaging/guard.py) — no
content type, an unknown one, a pickle, an undecodable body, over MESSAGE_MAX_BYTES, and for RPC no reply_to or no
correlation id — is published straight onto the bus to every service's RPC queue and, through every event type's
exchange, to every event queue, while the flow runs. No service crashes (same processes throughout), every
service answers `health` within 1 s afterwards, the flow completes with every invariant, and each message is
dead-lettered exactly once from each queue it reached (jmdi.dead-letters, read back by message id and x-death
queue)."""

from __future__ import annotations

import time
from collections import Counter

from services.common.contracts.topology import PRODUCED, SERVICES, SUBSCRIPTIONS, exchange_name, queue_name
from tests.support import malformed

from . import invariants
from .flow import Flow
from .scenario import scenario
from .testbed import Testbed

LIMIT = 1_048_576  # MESSAGE_MAX_BYTES here (the tests' broker has no max_message_size): 1 MiB, so that the "too
# large" ones stay small enough for a shared broker
HEALTH_BUDGET_S = 1.0


def targets() -> list[tuple[str, str, bool]]:
    """(exchange, routing key, rpc): every service's RPC queue, every event type of every producer."""
    found = [("nameko-rpc", f"{service}.health", True) for service in SERVICES]
    found += [
        (exchange_name(producer), event_type, False) for producer, types in PRODUCED.items() for event_type in types
    ]
    return found


def reached(sent: malformed.Sent) -> list[str]:
    """The queues a message is routed to."""
    if sent.exchange == "nameko-rpc":
        return [f"rpc-{sent.routing_key.split('.')[0]}"]
    producer = sent.exchange.split(".")[0]
    return [
        queue_name(producer, sent.routing_key, consumer)
        for consumer, sources in SUBSCRIPTIONS.items()
        if sent.routing_key in sources.get(producer, ())
    ]


def expected_letters(sent) -> Counter:
    return Counter((item.message_id, queue) for item in sent for queue in reached(item))


def health_times(bed: Testbed) -> dict[str, float]:
    ops = bed.staff("pm")
    times = {}
    for service in SERVICES:
        started = time.monotonic()
        answer = getattr(ops, service).health()
        times[service] = time.monotonic() - started if answer.get("status") == "ok" else float("inf")
    return times


@scenario(11, "malformed messages to every queue mid-flow")
def run(outcome, sizes, log, **_):
    with Testbed(log, extra_env={"MESSAGE_MAX_BYTES": str(LIMIT)}) as bed:
        pids = {s: bed.system.processes[s].proc.pid for s in SERVICES}
        sent: list[malformed.Sent] = []

        def inject():
            sent.extend(malformed.send_all(bed.system.amqp_uri, targets(), large_bytes=LIMIT + 1024))
            log(f"published {len(sent)} malformed messages")
            return "malformed"

        flow = Flow(bed, "r11", threads=sizes.threads, per_window=sizes.per_window)
        try:
            flow.run(sizes.fault_flow_events, faults=[(0.4, inject)], log=log)
        finally:
            flow.close()
        for problem in flow.problems:
            outcome.fail(f"flow: {problem}")
        outcome.check(bool(sent), "the malformed messages were never sent (the flow stopped early)")
        expected = expected_letters(sent)
        deadline = time.monotonic() + 60
        while malformed.dead_letter_count(bed.system.amqp_uri) < sum(expected.values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        crashed = [
            s for s in SERVICES if not bed.system.processes[s].running or bed.system.processes[s].proc.pid != pids[s]
        ]
        outcome.check(not crashed, f"crashed: {crashed}")
        times = health_times(bed)
        slow = {s: round(t, 2) for s, t in times.items() if t > HEALTH_BUDGET_S}
        outcome.check(not slow, f"health slower than {HEALTH_BUDGET_S} s: {slow}")
        letters = Counter(malformed.dead_letters(bed.system.amqp_uri))
        twice = sum(1 for n in letters.values() if n > 1)
        missing = sum(1 for key in expected if key not in letters)
        unexpected = sum(1 for key in letters if key not in expected)
        outcome.check(
            twice == 0 and missing == 0 and unexpected == 0,
            f"dead letters: {missing} missing, {twice} twice, {unexpected} unexpected",
        )
        counted = sum(bed.metric_sum(s, "jmdi_malformed_messages_total") for s in SERVICES)
        outcome.check(counted == sum(expected.values()), f"counted {counted} of {sum(expected.values())}")
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures = {
            **figures,
            "malformed": len(sent),
            "dead_lettered": sum(letters.values()),
            "crashes": len(crashed),
            "max_health_s": round(max(times.values()), 2),
        }
