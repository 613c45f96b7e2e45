"""Who consumes which events: the one map from which queues, bindings and broker permissions are derived.

Exchanges and routing keys follow nameko's convention (`<producer>.events`, routing key = event type), and
queue names follow nameko's SERVICE_POOL handler naming, so each consumer's queue can be declared before any
producer publishes (at start-up of every service, or by the broker definitions file in production).
"""

from collections.abc import Iterator

CALLS_EVENTS = (
    "call_opened",
    "call_closed",
    "proposal_submitted",
    "proposal_withdrawn",
    "proposal_screened",
    "proposal_evaluated",
    "ranking_published",
)
GRANTS_EVENTS = (
    "grant_awarded",
    "proposal_rejected",
    "contract_signed",
    "payment_requested",
    "payment_cancelled",
    "tranche_paid",
    "report_submitted",
    "report_accepted",
    "grant_amended",
    "grant_closed",
    "grant_decommitted",
    "rates_published",
    "results_reported",
    "grant_terminated",
)
NOTIFICATIONS_EVENTS = ("notification_sent", "notification_failed")
REPORTING_EVENTS = ("report_generated",)

PRODUCED = {
    "calls": CALLS_EVENTS,
    "grants": GRANTS_EVENTS,
    "notifications": NOTIFICATIONS_EVENTS,
    "reporting": REPORTING_EVENTS,
}

SERVICES = tuple(PRODUCED)
# what `make run` and deployments start: the services, and the gateway (the staff door; it produces no events)
PROCESSES = (*SERVICES, "gateway")

# consumer service -> producer service -> event types it handles
SUBSCRIPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "grants": {
        "calls": (
            "call_opened",
            "proposal_submitted",
            "proposal_withdrawn",
            "proposal_screened",
            "proposal_evaluated",
            "ranking_published",
        )
    },
    "notifications": {"calls": CALLS_EVENTS, "grants": GRANTS_EVENTS, "reporting": REPORTING_EVENTS},
    "reporting": {"calls": CALLS_EVENTS, "grants": GRANTS_EVENTS},
}


def producer_of(event_type: str) -> str:
    for service, events in PRODUCED.items():
        if event_type in events:
            return service
    raise KeyError(event_type)


def exchange_name(producer: str) -> str:
    return f"{producer}.events"


def handler_method(event_type: str) -> str:
    return f"on_{event_type}"


def queue_name(producer: str, event_type: str, consumer: str) -> str:
    """nameko's SERVICE_POOL queue name for the consumer's `on_<event_type>` handler."""
    return f"evt-{producer}-{event_type}--{consumer}.{handler_method(event_type)}"


def subscriptions() -> Iterator[tuple[str, str, str, str]]:
    """Yield (consumer, producer, event_type, queue) for every subscription."""
    for consumer, sources in SUBSCRIPTIONS.items():
        for producer, event_types in sources.items():
            for event_type in event_types:
                yield consumer, producer, event_type, queue_name(producer, event_type, consumer)
