"""Generate the JMDI Grafana dashboards as JSON (deploy/grafana/dashboards/*.json) from plain dicts.

    .venv/bin/python deploy/grafana/generate.py          # rewrite the JSON files
    .venv/bin/python deploy/grafana/generate.py --check  # exit 1 if a committed file is out of date

Every panel queries the provisioned Prometheus datasource by its pinned uid (DATASOURCE_UID). The output is
deterministic (fixed ids, sorted keys), so tests/deploy/test_grafana.py can compare it with the committed files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

DATASOURCE_UID = "jmdi-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
OUT = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict:
    t = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        "range": not instant,
        "instant": instant,
    }
    return t


def timeseries(
    title: str,
    targets: list[dict],
    unit: str = "short",
    description: str = "",
    stack: bool = False,
    w: int = 12,
    h: int = 8,
    min_=None,
    max_=None,
) -> dict:
    defaults = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    targets: list[dict],
    unit: str = "short",
    description: str = "",
    w: int = 6,
    h: int = 4,
    thresholds: list[tuple] | None = None,
) -> dict:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "textMode": "auto",
        },
    }


def bargauge(
    title: str, targets: list[dict], unit: str = "currencyEUR", description: str = "", w: int = 12, h: int = 10
) -> dict:
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def layout(panels: list[dict]) -> list[dict]:
    """Assign ids and flow panels left to right, top to bottom (rows take a full line)."""
    x = y = line_h = 0
    for i, panel in enumerate(panels, start=1):
        pos = panel["gridPos"]
        if panel["type"] == "row" or x + pos["w"] > 24:
            x, y, line_h = 0, y + line_h, 0
        pos["x"], pos["y"] = x, y
        panel["id"] = i
        x += pos["w"]
        line_h = max(line_h, pos["h"])
        if panel["type"] == "row":
            x, y, line_h = 0, y + pos["h"], 0
    return panels


def service_variable() -> dict:
    return {
        "name": "service",
        "label": "Service",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(jmdi_service_info, service)", "refId": "service"},
        "definition": "label_values(jmdi_service_info, service)",
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[dict],
    variables: Sequence[dict] = (),
    time_from: str = "now-6h",
) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["jmdi"],
        "editable": False,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "utc",
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "graphTooltip": 1,
        "templating": {"list": list(variables)},
        "annotations": {"list": []},
        "links": [],
        "panels": layout(panels),
    }


SVC = 'service=~"$service"'


def service_health() -> dict:
    latency = [
        target(
            f"histogram_quantile({q}, sum by (service, le) "
            f"(rate(jmdi_rpc_duration_seconds_bucket{{{SVC}}}[$__rate_interval])))",
            f"{{{{service}}}} p{int(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]
    panels = [
        row("Availability"),
        stat(
            "Targets up",
            [target('sum by (service) (up{job="jmdi", ' + SVC + "})", "{{service}}", instant=True)],
            description="Scraped instances per service (replicas up).",
            w=8,
            thresholds=[(None, "red"), (1, "green")],
        ),
        stat(
            "Uptime",
            [
                target(
                    f"time() - max by (service) (jmdi_service_start_time_seconds{{{SVC}}})", "{{service}}", instant=True
                )
            ],
            unit="s",
            description="Time since the most recently started replica of each service started.",
            w=8,
        ),
        stat(
            "Version",
            [
                target(
                    f"max by (service, version) (jmdi_service_info{{{SVC}}})", "{{service}} {{version}}", instant=True
                )
            ],
            description="Running versions (more than one per service during a rolling update).",
            w=8,
        ),
        row("Gateway (staff API)"),
        timeseries(
            "Staff requests / s by status",
            [target("sum by (status) (rate(jmdi_gateway_requests_total[$__rate_interval]))", "{{status}}")],
            unit="reqps",
            w=8,
            description="Every answer of the gateway: 2xx done, 4xx the request was wrong or refused, "
            "5xx the system failed (GatewayServerErrors fires above 5% for 10m).",
        ),
        timeseries(
            "Staff request p95 by target service",
            [
                target(
                    "histogram_quantile(0.95, sum by (target, le) "
                    "(rate(jmdi_gateway_request_duration_seconds_bucket[$__rate_interval])))",
                    "{{target}}",
                )
            ],
            unit="s",
            w=8,
        ),
        timeseries(
            "Refused at the door / s by reason",
            [target("sum by (reason) (rate(jmdi_gateway_refusals_total[$__rate_interval]))", "{{reason}}")],
            unit="reqps",
            w=8,
            description="No or bad token, role, body too large, unknown operation, client throttled.",
        ),
        row("RPC"),
        timeseries(
            "RPC requests / s by outcome",
            [
                target(
                    f"sum by (service, outcome) (rate(jmdi_rpc_requests_total{{{SVC}}}[$__rate_interval]))",
                    "{{service}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "RPC internal error ratio",
            [
                target(
                    f'sum by (service) (rate(jmdi_rpc_requests_total{{{SVC}, outcome="error"}}[$__rate_interval]))'
                    f" / sum by (service) (rate(jmdi_rpc_requests_total{{{SVC}}}[$__rate_interval]))",
                    "{{service}}",
                )
            ],
            unit="percentunit",
            min_=0,
            description="outcome=error only (RpcErrorRatioHigh fires above 5% for 10m).",
        ),
        timeseries("RPC latency p50 / p95 / p99", latency, unit="s", w=24),
        row("Events"),
        timeseries(
            "Events handled / s by outcome",
            [
                target(
                    f"sum by (service, outcome) (rate(jmdi_events_handled_total{{{SVC}}}[$__rate_interval]))",
                    "{{service}} {{outcome}}",
                )
            ],
            unit="ops",
        ),
        timeseries(
            "Events published / s",
            [
                target(
                    f"sum by (service, event_type) (rate(jmdi_events_published_total{{{SVC}}}[$__rate_interval]))",
                    "{{service}} {{event_type}}",
                )
            ],
            unit="ops",
        ),
        timeseries(
            "Event handler p95 duration",
            [
                target(
                    f"histogram_quantile(0.95, sum by (service, event_type, le) "
                    f"(rate(jmdi_event_handler_duration_seconds_bucket{{{SVC}}}[$__rate_interval])))",
                    "{{service}} {{event_type}}",
                )
            ],
            unit="s",
        ),
        timeseries(
            "Inbox duplicates / s",
            [
                target(
                    f"sum by (service, event_type) (rate(jmdi_inbox_duplicates_total{{{SVC}}}[$__rate_interval]))",
                    "{{service}} {{event_type}}",
                )
            ],
            unit="ops",
            description="Redelivered events the inbox recognised and skipped.",
        ),
        row("Capacity"),
        timeseries(
            "Workers busy / max",
            [
                target(f"sum by (service) (jmdi_workers_busy{{{SVC}}})", "{{service}} busy", "A"),
                target(f"sum by (service) (jmdi_workers_max{{{SVC}}})", "{{service}} max", "B"),
            ],
            description="Summed over replicas. Busy close to max means the service is saturated.",
            w=12,
        ),
        timeseries(
            "Garbage-collector pause time / s",
            [
                target(
                    f"sum by (service) (rate(jmdi_gc_pause_seconds_sum{{{SVC}}}[$__rate_interval]))",
                    "{{service}}",
                    "A",
                ),
                target(
                    f"histogram_quantile(0.99, sum by (service, le) "
                    f"(rate(jmdi_gc_pause_seconds_bucket{{{SVC}}}[$__rate_interval])))",
                    "{{service}} p99 pause",
                    "B",
                ),
            ],
            unit="s",
            description="Seconds per second each service spent in Python's cyclic garbage collector, and its "
            "longest pauses (p99). Objects from start-up are frozen out of the collector's reach.",
            w=12,
        ),
        row("Reliability"),
        timeseries("Outbox pending", [target(f"max by (service) (jmdi_outbox_pending{{{SVC}}})", "{{service}}")], w=8),
        timeseries(
            "Outbox oldest pending age",
            [target(f"max by (service) (jmdi_outbox_oldest_pending_age_seconds{{{SVC}}})", "{{service}}")],
            unit="s",
            w=8,
        ),
        timeseries("Dead letters held", [target(f"max by (service) (jmdi_dead_letters{{{SVC}}})", "{{service}}")], w=8),
        timeseries("Reporting projection lag", [target("max(jmdi_projection_lag_seconds)", "lag")], unit="s", w=8),
        timeseries(
            "E-mails / s by outcome",
            [target("sum by (outcome) (rate(jmdi_emails_total[$__rate_interval]))", "{{outcome}}")],
            unit="ops",
            w=8,
        ),
        stat(
            "Reconciliation differences",
            [target("max(jmdi_reconciliation_differences)", "differences", instant=True)],
            w=8,
            h=8,
            thresholds=[(None, "green"), (1, "red")],
            description="Set by the last reconciliation run; anything above 0 needs attention.",
        ),
        timeseries(
            "Report generation p95 by format",
            [
                target(
                    "histogram_quantile(0.95, sum by (format, le) "
                    "(rate(jmdi_report_generation_duration_seconds_bucket[$__rate_interval])))",
                    "{{format}}",
                )
            ],
            unit="s",
            w=24,
        ),
        timeseries(
            "Malformed messages refused (per 10m) by queue and reason",
            [
                target(
                    f"sum by (service, queue, reason) (increase(jmdi_malformed_messages_total{{{SVC}}}[10m]))",
                    "{{service}} {{queue}} {{reason}}",
                )
            ],
            min_=0,
            description="Messages a service refused before decoding them (services/common/messaging/guard.py) and "
            "dead-lettered into jmdi.dead-letters; MalformedMessages fires on any.",
        ),
        timeseries(
            "Process restarts (per 15m, make run)",
            [
                target("sum by (process) (increase(jmdi_process_restarts_total[15m]))", "{{process}}", "A"),
                target("max by (process) (jmdi_process_crashes_in_a_row)", "{{process}} crashes in a row", "B"),
            ],
            min_=0,
            description="Restarts by `make run`'s supervisor (its /metrics on 127.0.0.1:8006); "
            "ProcessRestartingRepeatedly fires at 3 in 15 minutes.",
        ),
    ]
    return dashboard(
        "jmdi-service-health",
        "JMDI / Service health",
        "Staff requests at the gateway; RPC, events, workers, outbox, dead letters and lag of the four JMDI services.",
        panels,
        [service_variable()],
    )


Q = 'vhost=~"$vhost"'


def rabbitmq() -> dict:
    vhost_var = {
        "name": "vhost",
        "label": "vhost",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(rabbitmq_queue_messages_ready, vhost)", "refId": "vhost"},
        "definition": "label_values(rabbitmq_queue_messages_ready, vhost)",
        "refresh": 2,
        "multi": False,
        "includeAll": True,
        "current": {"selected": True, "text": "All", "value": "$__all"},
        "sort": 1,
    }
    panels = [
        row("Queues"),
        timeseries(
            "Messages ready by queue",
            [target(f"sum by (queue) (rabbitmq_queue_messages_ready{{{Q}}})", "{{queue}}")],
            description="Waiting for a consumer. A growing line means its consumer is down or too slow.",
        ),
        timeseries(
            "Messages unacked by queue",
            [target(f"sum by (queue) (rabbitmq_queue_messages_unacked{{{Q}}})", "{{queue}}")],
            description="Delivered to a consumer and being worked on.",
        ),
        timeseries(
            "Consumers by queue",
            [target(f"sum by (queue) (rabbitmq_queue_consumers{{{Q}}})", "{{queue}}")],
            description="Each replica of a service adds one consumer per queue; 0 means nobody consumes.",
        ),
        timeseries(
            "Dead-letter queue (jmdi.dead-letters)",
            [target(f'sum by (vhost) (rabbitmq_queue_messages{{{Q}, queue="jmdi.dead-letters"}})', "{{vhost}}")],
            w=12,
            h=8,
            min_=0,
            description="Malformed messages the services refused and expired requests, waiting for an "
            "operator (nothing consumes this queue; bounded at 100,000). "
            "DeadLetterQueueGrowing fires while it grows.",
        ),
        stat(
            "Queues without consumers",
            [
                target(
                    f"count(sum by (queue) (rabbitmq_queue_consumers{{{Q}}}) == 0) or vector(0)", "queues", instant=True
                )
            ],
            w=12,
            h=8,
            thresholds=[(None, "green"), (1, "orange")],
        ),
        row("Throughput"),
        timeseries(
            "Published / delivered messages / s",
            [
                target("sum(rate(rabbitmq_channel_messages_published_total[$__rate_interval]))", "published", "A"),
                target("sum(rate(rabbitmq_channel_messages_delivered_total[$__rate_interval]))", "delivered", "B"),
                target(
                    "sum(rate(rabbitmq_channel_messages_delivered_ack_total[$__rate_interval]))",
                    "delivered (manual ack)",
                    "C",
                ),
            ],
            unit="ops",
            w=24,
        ),
        timeseries(
            "Messages published to queues / s",
            [
                target(
                    f"sum by (queue) (rate(rabbitmq_queue_messages_published_total{{{Q}}}[$__rate_interval]))",
                    "{{queue}}",
                )
            ],
            unit="ops",
            w=24,
        ),
        row("Broker"),
        timeseries(
            "Connections / channels",
            [
                target("sum(rabbitmq_connections)", "connections", "A"),
                target("sum(rabbitmq_channels)", "channels", "B"),
            ],
            w=8,
        ),
        timeseries(
            "Memory used",
            [target("sum by (instance) (rabbitmq_process_resident_memory_bytes)", "{{instance}}")],
            unit="bytes",
            w=8,
        ),
        timeseries(
            "Disk space available",
            [target("min by (instance) (rabbitmq_disk_space_available_bytes)", "{{instance}}")],
            unit="bytes",
            w=8,
        ),
    ]
    return dashboard(
        "jmdi-rabbitmq",
        "JMDI / RabbitMQ",
        "Queues, consumers and message rates of the JMDI broker (rabbitmq_prometheus, per-object).",
        panels,
        [vhost_var],
    )


def programme_finance() -> dict:
    # every reporting replica exports the same figures: take one (max by label), never add replicas up
    panels = [
        row("Commitments by window"),
        bargauge(
            "Committed vs allocation by window",
            [
                target("max by (window) (jmdi_committed_eur)", "{{window}} committed", "A", instant=True),
                target("max by (window) (jmdi_window_allocation_eur)", "{{window}} allocation", "B", instant=True),
            ],
            description="EUR awarded in each call window against the window's allocation.",
        ),
        timeseries(
            "Commitment ratio by window",
            [
                target(
                    "max by (window) (jmdi_committed_eur) / max by (window) (jmdi_window_allocation_eur)", "{{window}}"
                )
            ],
            unit="percentunit",
            min_=0,
        ),
        row("Disbursements"),
        bargauge("Disbursed by window", [target("max by (window) (jmdi_disbursed_eur)", "{{window}}", instant=True)]),
        timeseries(
            "Disbursed over time by window",
            [target("max by (window) (jmdi_disbursed_eur)", "{{window}}")],
            unit="currencyEUR",
            stack=True,
        ),
        row("Countries"),
        bargauge(
            "Committed by country",
            [target("sort_desc(max by (country) (jmdi_country_committed_eur))", "{{country}}", instant=True)],
            h=14,
        ),
        bargauge(
            "Disbursed by country",
            [target("sort_desc(max by (country) (jmdi_country_disbursed_eur))", "{{country}}", instant=True)],
            h=14,
        ),
        row("Totals"),
        stat(
            "Total committed",
            [target("sum(max by (window) (jmdi_committed_eur))", "committed", instant=True)],
            unit="currencyEUR",
        ),
        stat(
            "Total disbursed",
            [target("sum(max by (window) (jmdi_disbursed_eur))", "disbursed", instant=True)],
            unit="currencyEUR",
        ),
        stat(
            "Total allocation",
            [target("sum(max by (window) (jmdi_window_allocation_eur))", "allocation", instant=True)],
            unit="currencyEUR",
        ),
        stat(
            "Disbursed / committed",
            [
                target(
                    "sum(max by (window) (jmdi_disbursed_eur)) / sum(max by (window) (jmdi_committed_eur))",
                    "ratio",
                    instant=True,
                )
            ],
            unit="percentunit",
        ),
    ]
    return dashboard(
        "jmdi-programme-finance",
        "JMDI / Programme finance",
        "EC contribution committed and disbursed by window and country (reporting service gauges).",
        panels,
        time_from="now-90d",
    )


DASHBOARDS = {
    "service-health.json": service_health,
    "rabbitmq.json": rabbitmq,
    "programme-finance.json": programme_finance,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, sort_keys=True) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    rendered = render()
    if "--check" in argv:
        stale = [n for n, text in rendered.items() if not (OUT / n).exists() or (OUT / n).read_text() != text]
        if stale:
            print("out of date: " + ", ".join(stale) + " (run deploy/grafana/generate.py)")
            return 1
        return 0
    OUT.mkdir(exist_ok=True)
    for name, text in rendered.items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
