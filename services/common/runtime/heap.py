"""The interpreter's cyclic garbage collector in a long-running service.

A service holds some 160,000 container objects once its libraries and extensions are set up (SQLAlchemy,
marshmallow, nameko, kombu), none of which will ever be garbage. Every full collection walked all of them (tens of
milliseconds on a busy core, inside whatever batch or call happened to allocate at that moment). `settle` moves them
out of the collector's reach once the service has started (`gc.freeze`), so a collection walks only what the
traffic made; and `jmdi_gc_pause_seconds` times every collection, so the pauses that are left are seen in Grafana.
"""

import gc
import time

from prometheus_client import Histogram

GC_PAUSE = Histogram(
    "jmdi_gc_pause_seconds",
    "Pauses of the cyclic garbage collector, by the oldest generation collected",
    ["service", "generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


class PauseTimer:
    """A gc callback observing each collection's duration (one at a time: the collector does not nest)."""

    def __init__(self, service: str):
        self.by_generation = [GC_PAUSE.labels(service, str(generation)) for generation in range(3)]
        self.started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.by_generation[info["generation"]].observe(time.perf_counter() - self.started)


def settle(service: str) -> PauseTimer:
    """Once the service has started: collect what start-up left, freeze the survivors, time every later pause."""
    gc.collect()
    gc.freeze()
    timer = PauseTimer(service)
    gc.callbacks.append(timer)
    return timer
