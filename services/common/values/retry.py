"""One retry policy for the whole system: exponential backoff (base, base*factor, ... each capped), and the named
policies the services retry with — so how long anything waits before trying again is read in one place.

| policy | used by | waits |
|---|---|---|
| `EVENT_HANDLER` | inbox: a failing event handler, before dead-lettering (EVENT_RETRY_ATTEMPTS, EVENT_RETRY_BACKOFF) | 0.2 s doubling, at most 10 s |
| `OUTBOX_RELAY` | the outbox relay when the broker or the database is away | 0.4 s doubling, at most 5 s |
| `BROKER_RECONNECT` | a batch consumer reconnecting to the broker | 1 s doubling, at most 10 s |
| `RECORD_SENT` | notifications recording an e-mail the SMTP server took, through a database outage | 0.5 s doubling, at most 8 s |
| `DELIVERY` | notifications re-sending a failed e-mail (NOTIFICATION_RETRY_SECONDS, ..._MAX_SECONDS) | 60 s doubling, at most 1 h |
| `STALE_CONNECTION_RETRIES` | an RPC whose database connection was dropped before its commit (services/common/storage/db.py `retrying_stale`; no pre-ping) | once, at once: the pool has discarded the stale connections |
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """The wait before retry number `attempt` (1 for the first retry): base * factor ** (attempt - 1), capped."""

    base: float
    cap: float
    factor: float = 2.0

    def __post_init__(self):
        if self.base < 0 or self.factor < 1 or self.cap < 0:
            raise ValueError("need base >= 0, factor >= 1, cap >= 0")

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * self.factor ** max(0, attempt - 1))


def backoff_delays(
    base: float, factor: float, max_attempts: int, cap: float, jitter: float = 0.0, rng: random.Random | None = None
) -> list[float]:
    """Seconds to wait before each retry: max_attempts attempts -> max_attempts - 1 delays.

    backoff_delays(30, 2, 6, 600) == [30, 60, 120, 240, 480]; each delay is capped at `cap`.
    jitter (0..1) spreads each delay uniformly within +/- that fraction (then re-capped), so replicas that
    failed together do not retry together; rng makes it reproducible in tests.
    """
    if base < 0 or factor < 1 or max_attempts < 1 or cap < 0 or not 0 <= jitter <= 1:
        raise ValueError("need base >= 0, factor >= 1, max_attempts >= 1, cap >= 0, 0 <= jitter <= 1")
    rng = rng or random.Random()
    policy = Backoff(base, cap, factor)
    delays = []
    for attempt in range(1, max_attempts):
        delay = policy.delay(attempt)
        if jitter:
            delay = min(cap, delay * (1 + rng.uniform(-jitter, jitter)))
        delays.append(delay)
    return delays


EVENT_HANDLER = Backoff(0.2, 10.0)
OUTBOX_RELAY = Backoff(0.4, 5.0)
BROKER_RECONNECT = Backoff(1.0, 10.0)
RECORD_SENT = Backoff(0.5, 8.0)
DELIVERY = Backoff(60.0, 3600.0)
STALE_CONNECTION_RETRIES = 1
