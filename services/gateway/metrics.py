"""The gateway's own Prometheus metrics (beside the kit's service metrics); labels are bounded: the target service
(one of five, or "none"; labelled `target`, since `service` names the process that exposes the metric), the status
code the gateway answered, and a refusal reason from a fixed list."""

from prometheus_client import Counter, Histogram

from services.common.contracts.topology import SERVICES
from services.common.runtime.metrics import LATENCY_BUCKETS

KNOWN_SERVICES = (*SERVICES, "gateway")

REFUSAL_REASONS = ("unauthenticated", "forbidden", "too_large", "unknown_operation", "throttled", "body_timeout")

REQUESTS = Counter(
    "jmdi_gateway_requests", "Staff HTTP requests by target service and answer status", ["target", "status"]
)
DURATION = Histogram(
    "jmdi_gateway_request_duration_seconds",
    "Time from request to answer, by target service",
    ["target"],
    buckets=LATENCY_BUCKETS,
)
REFUSALS = Counter("jmdi_gateway_refusals", "Requests refused at the door, by reason", ["reason"])
REFUSAL_AUDITS_SUPPRESSED = Counter(
    "jmdi_gateway_refusal_audits_suppressed", "Refusals counted but not audited one by one (audit budget spent)"
)


def initialise():
    for reason in REFUSAL_REASONS:
        REFUSALS.labels(reason)
    for service in (*KNOWN_SERVICES, "none"):
        DURATION.labels(service)
        for status in ("200", "401", "403", "422", "500", "503", "504"):
            REQUESTS.labels(service, status)
