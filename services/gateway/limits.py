"""What the gateway allows a request before it costs anything: body size, time, refused requests per client.

All limits come from the gateway's config.yml (GATEWAY_* settings). The refusal budget is kept in memory, per
gateway process: enough to stop one client from hammering the door (guessing tokens, probing roles) and from
filling the audit trail; each replica counts on its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from .catalogue import Operation

MIN_BODY_BYTES_PER_SECOND = 10_000  # a client sending its body slower than this (on average) is cut (408)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_bulk_body_bytes: int
    request_timeout: float
    long_request_timeout: float
    health_timeout: float
    refusals_per_minute: int
    refusal_audits_per_minute: int
    trusted_proxies: int
    idle_timeout: float = 15.0

    @classmethod
    def from_config(cls, config: dict) -> "Limits":
        def number(key, default, kind=int):
            value = kind(config.get(key, default))
            if value < 0:
                raise ValueError(f"{key} must not be negative")
            return value

        return cls(
            max_body_bytes=number("MAX_BODY_BYTES", 1 << 20),
            max_bulk_body_bytes=number("MAX_BULK_BODY_BYTES", 16 << 20),
            request_timeout=number("REQUEST_TIMEOUT_SECONDS", 60, float),
            long_request_timeout=number("LONG_REQUEST_TIMEOUT_SECONDS", 900, float),
            health_timeout=number("HEALTH_TIMEOUT_SECONDS", 4, float),
            refusals_per_minute=number("REFUSALS_PER_MINUTE", 30),
            refusal_audits_per_minute=number("REFUSAL_AUDITS_PER_MINUTE", 120),
            trusted_proxies=number("TRUSTED_PROXIES", 0),
            idle_timeout=number("IDLE_TIMEOUT_SECONDS", 15, float),
        )

    def body_limit(self, op: Operation | None) -> int:
        return self.max_bulk_body_bytes if op is not None and op.bulk else self.max_body_bytes

    def body_deadline(self, declared: int | None, limit: int) -> float:
        """Seconds a request's whole body may take to arrive: the idle timeout, or longer for a large body at the
        least rate of MIN_BODY_BYTES_PER_SECOND (a chunked body, of no declared size, may be as large as its limit)."""
        size = limit if declared is None else min(declared, limit)
        return max(self.idle_timeout, size / MIN_BODY_BYTES_PER_SECOND)

    def timeout(self, op: Operation | None) -> float:
        return self.long_request_timeout if op is not None and op.long else self.request_timeout


class Budget:
    """At most `limit` uses per key in each fixed window of `window` seconds; at most `max_keys` keys remembered
    (the least recently seen are forgotten first), so memory stays bounded whatever the clients do."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 10_000, clock=time.monotonic):
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._used: OrderedDict[str, list] = OrderedDict()  # key -> [window start, uses]
        self._lock = threading.Lock()

    def _entry(self, key: str) -> list:
        now = self.clock()
        entry = self._used.get(key)
        if entry is None or now - entry[0] >= self.window:
            entry = [now, 0]
        self._used[key] = entry
        self._used.move_to_end(key)
        while len(self._used) > self.max_keys:
            self._used.popitem(last=False)
        return entry

    def spend(self, key: str) -> int:
        """Use one; returns how many were used in this window, this one included (> limit: over budget)."""
        with self._lock:
            entry = self._entry(key)
            entry[1] += 1
            return entry[1]

    def exhausted(self, key: str) -> int | None:
        """Whole seconds until the key may be served again, or None if it is within budget."""
        with self._lock:
            entry = self._used.get(key)
            if entry is None or entry[1] <= self.limit:
                return None
            left = self.window - (self.clock() - entry[0])
            return max(1, math.ceil(left)) if left > 0 else None


def client_of(request, trusted_proxies: int) -> str:
    """Who is asking, as the gateway can tell: the peer address, or — behind `trusted_proxies` reverse proxies
    (an Ingress) — the address those proxies saw, read from the right of X-Forwarded-For (what the client wrote
    on the left is not trusted)."""
    peer = request.remote_addr or "unknown"
    if trusted_proxies <= 0:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    if len(hops) < trusted_proxies:
        return peer
    return hops[-trusted_proxies][:64]
