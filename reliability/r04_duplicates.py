"""R4: every event delivered three times. After a flow has settled, a duplicate publisher republishes every event
the producers committed (their outbox rows, as the relay published them) and every event the suite published,
twice more; the consumers must acknowledge the copies without applying them: every table of every service, the
reporting totals and the e-mails sent stay exactly as they were."""

from __future__ import annotations

import time

from kombu import Connection, Exchange, Producer

from services.common.contracts.topology import SERVICES, exchange_name

from . import invariants
from .flow import Flow
from .scenario import scenario
from .testbed import Testbed


def republish(bed: Testbed, times: int) -> int:
    """Publish every committed event `times` more times, with publisher confirms; returns messages published."""
    messages = []
    for service in SERVICES:
        for event_id, event_type, body in bed.rows(
            service, "SELECT event_id, event_type, body FROM outbox ORDER BY id"
        ):
            messages.append((exchange_name(service), event_type, body, event_id))
    import json

    for body in bed.injected_bodies:
        messages.append((exchange_name(body["producer"]), body["event_type"], json.dumps(body), body["event_id"]))
    published = 0
    with Connection(bed.system.amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producers = {}
        for _ in range(times):
            for exchange, routing_key, body, event_id in messages:
                producer = producers.get(exchange)
                if producer is None:
                    producer = producers[exchange] = Producer(
                        conn.channel(), exchange=Exchange(exchange, type="topic", durable=True)
                    )
                producer.publish(
                    body,
                    routing_key=routing_key,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=event_id,
                )
                published += 1
    return published


def snapshot(bed: Testbed) -> dict:
    auditor = bed.staff("auditor")
    return {
        # every table but the timers' leases (a timer taking its lease is not an effect of an event)
        "tables": {s: bed.table_counts(s, exclude=("leases",)) for s in SERVICES},
        "totals": auditor.reporting.totals(),
        "ledger": auditor.grants.ledger(),
        "emails": bed.sink.messages,
        "mail_rows": bed.rows("notifications", "SELECT id, status, message_id FROM notifications ORDER BY id"),
    }


@scenario(4, "every event delivered three times")
def run(outcome, sizes, log, **_):
    with Testbed(log) as bed:
        flow = Flow(bed, "r4", threads=sizes.threads, per_window=5)
        try:
            flow.run(sizes.duplicate_flow_events, log=log)
        finally:
            flow.close()
        for problem in flow.problems:
            outcome.fail(f"flow: {problem}")
        bed.settle(sizes.settle_seconds)
        before = snapshot(bed)
        seen_before = {
            s: bed.metric_sum(s, "jmdi_inbox_duplicates_total") for s in ("grants", "notifications", "reporting")
        }
        started = time.monotonic()
        copies = republish(bed, times=2)
        log(f"republished {copies} copies")
        produced = bed.produced()
        expected = {c: 2 * bed.expected_count(c, produced) for c in seen_before}
        deadline = time.monotonic() + sizes.settle_seconds
        while time.monotonic() < deadline:
            seen = {s: bed.metric_sum(s, "jmdi_inbox_duplicates_total") - seen_before[s] for s in seen_before}
            if all(seen[s] >= expected[s] for s in seen) and bed.queues_idle():
                break
            time.sleep(1)
        outcome.figures["copies"] = copies
        outcome.figures["absorbed"] = int(sum(seen.values()))
        outcome.figures["absorb_s"] = round(time.monotonic() - started, 1)
        outcome.check(
            all(seen[s] >= expected[s] for s in seen),
            f"duplicates recognised by the inboxes {seen}, expected {expected}",
        )
        bed.settle(sizes.settle_seconds)
        after = snapshot(bed)
        for key in before:
            if key == "tables":
                for service in SERVICES:
                    changed = {
                        t: (n, after["tables"][service].get(t))
                        for t, n in before["tables"][service].items()
                        if after["tables"][service].get(t) != n
                    }
                    outcome.check(not changed, f"{service} tables changed by duplicates: {changed}")
            else:
                outcome.check(before[key] == after[key], f"{key} changed by duplicates")
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures = {**figures, **outcome.figures}
