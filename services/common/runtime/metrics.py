"""Prometheus metrics every service exposes on /metrics; label values are bounded (no ids in labels)."""

import time

import eventlet

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

# the *_created series double the output and no dashboard or alert reads them
disable_created_metrics()

RPC_OUTCOMES = ("ok", "invalid_input", "not_found", "conflict", "not_allowed", "error")
EVENT_OUTCOMES = ("applied", "duplicate", "failed", "dead_lettered", "refused")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

SERVICE_INFO = Gauge("jmdi_service_info", "Service identity (always 1)", ["service", "version"])
SERVICE_START = Gauge("jmdi_service_start_time_seconds", "Unix time the service process started", ["service"])
RPC_REQUESTS = Counter("jmdi_rpc_requests", "RPC calls by outcome", ["service", "method", "outcome"])
RPC_DURATION = Histogram(
    "jmdi_rpc_duration_seconds", "RPC handling time", ["service", "method"], buckets=LATENCY_BUCKETS
)
EVENTS_HANDLED = Counter("jmdi_events_handled", "Events consumed by outcome", ["service", "event_type", "outcome"])
EVENT_DURATION = Histogram(
    "jmdi_event_handler_duration_seconds", "Event handling time", ["service", "event_type"], buckets=LATENCY_BUCKETS
)
EVENTS_PUBLISHED = Counter("jmdi_events_published", "Events published from the outbox", ["service", "event_type"])
OUTBOX_PENDING = Gauge("jmdi_outbox_pending", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "jmdi_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
INBOX_DUPLICATES = Counter(
    "jmdi_inbox_duplicates", "Redelivered events skipped by the inbox", ["service", "event_type"]
)
EVENTS_REFUSED = Counter(
    "jmdi_events_refused", "Events refused, never applied: not published by their producer", ["service", "event_type"]
)
DEAD_LETTERS = Gauge("jmdi_dead_letters", "Dead letters held now", ["service"])
MALFORMED_MESSAGES = Counter(
    "jmdi_malformed_messages",
    "Messages refused before decoding and dead-lettered: "
    "too large, no or unknown content type, undecodable, no reply_to or correlation id",
    ["service", "queue", "reason"],
)
WORKERS_BUSY = Gauge("jmdi_workers_busy", "Workers running now", ["service"])
WORKERS_MAX = Gauge("jmdi_workers_max", "Worker pool size", ["service"])


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


class Instrumentation(DependencyProvider):
    """Counts and times every RPC and event-handler worker of the service, and its worker pool usage."""

    def setup(self):
        self.service = self.container.service_name
        self.started = {}
        SERVICE_START.labels(self.service).set(time.time())
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("jmdi")
        except PackageNotFoundError:
            release = "dev"
        SERVICE_INFO.labels(self.service, release).set(1)
        WORKERS_MAX.labels(self.service).set(self.container.max_workers)
        self._initialise_series()

    def _initialise_series(self):
        """Create every bounded label combination at zero, so rates and ratios exist before the first event."""
        from ..contracts.topology import PRODUCED

        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, Rpc):
                for outcome in RPC_OUTCOMES:
                    RPC_REQUESTS.labels(self.service, entrypoint.method_name, outcome)
                RPC_DURATION.labels(self.service, entrypoint.method_name)
            for event_type in getattr(entrypoint, "event_types", None) or (
                [entrypoint.event_type] if isinstance(entrypoint, EventHandler) else []
            ):
                for outcome in EVENT_OUTCOMES:
                    EVENTS_HANDLED.labels(self.service, event_type, outcome)
                INBOX_DUPLICATES.labels(self.service, event_type)
                EVENTS_REFUSED.labels(self.service, event_type)
                EVENT_DURATION.labels(self.service, event_type)
        for event_type in PRODUCED.get(self.service, ()):
            EVENTS_PUBLISHED.labels(self.service, event_type)
        OUTBOX_PENDING.labels(self.service).set(0)
        OUTBOX_OLDEST_AGE.labels(self.service).set(0)
        DEAD_LETTERS.labels(self.service).set(0)
        WORKERS_BUSY.labels(self.service).set(0)

    def get_dependency(self, worker_ctx):
        return None

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()
        # JSON logs read the call-id stack from the running greenthread (see logs.py)
        eventlet.getcurrent().jmdi_worker_ctx = worker_ctx
        WORKERS_BUSY.labels(self.service).inc()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        WORKERS_BUSY.labels(self.service).dec()
        if started is None:
            return
        elapsed = time.perf_counter() - started
        entrypoint = worker_ctx.entrypoint
        if isinstance(entrypoint, Rpc):
            method = entrypoint.method_name
            outcome = "ok"
            if exc_info is not None:
                outcome = getattr(exc_info[1], "code", "error")
            RPC_REQUESTS.labels(self.service, method, outcome).inc()
            RPC_DURATION.labels(self.service, method).observe(elapsed)
        elif isinstance(entrypoint, EventHandler):
            EVENT_DURATION.labels(self.service, entrypoint.event_type).observe(elapsed)
