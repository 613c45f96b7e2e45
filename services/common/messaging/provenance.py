"""Who published an event: the AMQP `user_id` property, which RabbitMQ checks against the publishing connection.

The outbox publisher sets `user_id` to its own broker user (RabbitMQ refuses the message if it names anyone
else), so on the consumer side `user_id` is proof of the publisher. A consumer applies an event only when:
- the event type is the one the queue was bound for (a producer cannot slip another type into its own queue);
- the envelope's `producer` is the producer of that type;
- and, with the check on, `user_id` is that producer's broker user: EVENT_PRODUCER_USER_PREFIX + the producer's
  name (calls → calls; with the prefix "jmdi-", calls → jmdi-calls).
Anything else is refused: kept as a dead letter with status `refused` (never replayed) and counted in
jmdi_events_refused_total. `make run` connects every service as one `guest` user, so there the check is off
(EVENT_PRODUCER_CHECK=false) and every service says so at start; compose and Kubernetes leave it on.
"""

from __future__ import annotations

import logging

from ..contracts.topology import producer_of
from ..runtime.config import as_bool

log = logging.getLogger(__name__)


class ProducerCheck:
    def __init__(self, enabled: bool = True, user_prefix: str = ""):
        self.enabled = enabled
        self.user_prefix = user_prefix

    @classmethod
    def from_config(cls, config: dict) -> "ProducerCheck":
        return cls(
            as_bool(config.get("EVENT_PRODUCER_CHECK", True)), str(config.get("EVENT_PRODUCER_USER_PREFIX") or "")
        )

    def expected_user(self, producer: str) -> str:
        return self.user_prefix + producer

    def announce(self, service: str) -> None:
        if self.enabled:
            log.info(
                "%s applies an event only from its producer's broker user (%s)",
                service,
                self.expected_user("<producer>"),
            )
        else:
            log.warning(
                "%s: event producer check OFF (local mode: one broker user for every service); "
                "any client of this broker could publish events",
                service,
            )

    def refusal(self, body, broker_user, routed_as: str | None) -> str | None:
        """None when the event may be applied, else why not."""
        event_type = body.get("event_type") if isinstance(body, dict) else None
        if routed_as is not None and event_type != routed_as:
            return f"a {str(event_type)[:60]} event on the queue of {routed_as}"
        try:
            producer = producer_of(event_type) if isinstance(event_type, str) else None
        except KeyError:
            producer = None
        if producer is None:
            return None  # not an event of the catalogue: parse_event refuses it as invalid
        if body.get("producer") != producer:
            return f"{event_type} names producer {str(body.get('producer'))[:60]!r}; it is {producer}'s"
        if not self.enabled:
            return None
        expected = self.expected_user(producer)
        if broker_user is None:
            return f"{event_type} carries no user_id: no proof it was published by {expected!r}"
        if broker_user != expected:
            return f"{event_type} published by broker user {str(broker_user)[:80]!r}, not by {expected!r}"
        return None
