"""The metric names dashboards and alerts may use: the JMDI services' documented metrics, RabbitMQ's
(tests/deploy/rabbitmq_metric_names.txt, captured from rabbitmq_prometheus 3.10.8 /metrics/per-object) and up."""

import re
from pathlib import Path

HISTOGRAMS = {
    "jmdi_rpc_duration_seconds",
    "jmdi_event_handler_duration_seconds",
    "jmdi_report_generation_duration_seconds",
    "jmdi_gateway_request_duration_seconds",
    "jmdi_gc_pause_seconds",
}
JMDI = {
    "jmdi_service_info",
    "jmdi_service_start_time_seconds",
    "jmdi_rpc_requests_total",
    "jmdi_events_handled_total",
    "jmdi_events_published_total",
    "jmdi_outbox_pending",
    "jmdi_outbox_oldest_pending_age_seconds",
    "jmdi_inbox_duplicates_total",
    "jmdi_dead_letters",
    "jmdi_events_refused_total",
    "jmdi_workers_busy",
    "jmdi_workers_max",
    "jmdi_emails_total",
    "jmdi_projection_lag_seconds",
    "jmdi_committed_eur",
    "jmdi_disbursed_eur",
    "jmdi_window_allocation_eur",
    "jmdi_country_committed_eur",
    "jmdi_country_disbursed_eur",
    "jmdi_reconciliation_differences",
    "jmdi_gateway_requests_total",
    "jmdi_gateway_refusals_total",
    "jmdi_gateway_refusal_audits_suppressed_total",
    "jmdi_malformed_messages_total",
    # `make run`'s supervisor (services/common/launch/supervisor.py)
    "jmdi_process_restarts_total",
    "jmdi_process_crashes_in_a_row",
    "jmdi_process_up",
} | {h + suffix for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
RABBITMQ = {
    line.strip()
    for line in (Path(__file__).parent / "rabbitmq_metric_names.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
KNOWN = JMDI | RABBITMQ | {"up"}

FUNCTIONS = {
    "abs",
    "absent",
    "absent_over_time",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count_over_time",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "holt_winters",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "label_values",
    "last_over_time",
    "ln",
    "log2",
    "log10",
    "max_over_time",
    "min_over_time",
    "predict_linear",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "sum_over_time",
    "time",
    "timestamp",
    "vector",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "printf",
    "humanize",
    "humanizeDuration",
    "humanizePercentage",
}


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (Grafana variables allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w.])", text))
    names = {n for n in names if not re.fullmatch(r"\d+[smhdwy]?", n)}
    return names - FUNCTIONS
