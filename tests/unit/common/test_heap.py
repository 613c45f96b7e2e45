"""The collector in a running service: start-up objects frozen, each later pause timed by generation."""

import gc

from prometheus_client import REGISTRY

from services.common.runtime import heap


def pauses(generation: int) -> tuple[float, float]:
    labels = {"service": "unit-heap", "generation": str(generation)}
    count = REGISTRY.get_sample_value("jmdi_gc_pause_seconds_count", labels) or 0.0
    total = REGISTRY.get_sample_value("jmdi_gc_pause_seconds_sum", labels) or 0.0
    return count, total


def walked(obj) -> bool:
    """Whether a collection of any generation visits `obj`."""
    return any(o is obj for generation in range(3) for o in gc.get_objects(generation))


def test_settle_freezes_what_exists_and_times_every_later_collection():
    start_up_object: list = []
    start_up_object.append(start_up_object)  # a container the collector tracks
    assert walked(start_up_object)
    timer = heap.settle("unit-heap")
    try:
        assert not walked(start_up_object)
        made_later: list = []
        made_later.append(made_later)
        assert walked(made_later)
        gc.disable()  # only the collections below: none triggered by the test's own allocations
        before = {generation: pauses(generation) for generation in range(3)}
        gc.collect(0)
        gc.collect(2)
        for generation in (0, 2):
            count, total = pauses(generation)
            assert count == before[generation][0] + 1
            assert total > before[generation][1]
        assert pauses(1) == before[1]
    finally:
        gc.enable()
        gc.callbacks.remove(timer)
        gc.unfreeze()
