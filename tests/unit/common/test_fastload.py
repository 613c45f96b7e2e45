"""The compiled load of events (services/common/contracts/fastload.py) against marshmallow's: the same result for
every valid event, and never an accepted body marshmallow refuses (parse_event then raises marshmallow's error)."""

import copy
import json

import pytest

from services.common.contracts import events
from services.common.values.errors import InvalidInput
from tests.support.archive_events import archive_events, late_events

SAMPLES = [json.loads(json.dumps(e.body)) for e in archive_events() + late_events()]
ODD_VALUES = (None, 12, 1.5, True, "", "x" * 5001, "2010-13-45", [], {}, {"x": 1}, "-1.00", "NaN")


def as_tuple(event):
    return (event.event_id, event.event_type, event.version, event.occurred_at, event.producer, event.actor,
            event.data, event.body)  # fmt: skip


def outcome(body):
    """marshmallow's verdict: the event or the messages of its refusal."""
    try:
        return as_tuple(events._parse_checked(body))
    except InvalidInput as exc:
        return exc.errors


def test_the_samples_cover_many_event_types():
    assert len({b["event_type"] for b in SAMPLES}) >= 15


@pytest.mark.parametrize("body", SAMPLES, ids=[f"{i}-{b['event_type']}" for i, b in enumerate(SAMPLES)])
def test_a_valid_event_loads_as_marshmallow_loads_it(body):
    fast = events._fast_parse(copy.deepcopy(body))
    assert fast is not None  # the compiled plan took it
    assert as_tuple(fast) == outcome(copy.deepcopy(body))


def mutations(body):
    """The body with one value of the envelope or of its data (one level into lists and maps) changed, removed,
    or with a key added."""
    for scope in ("envelope", "data"):
        target_of = (lambda b: b) if scope == "envelope" else (lambda b: b["data"])
        for key in target_of(body):
            for value in ODD_VALUES:
                changed = copy.deepcopy(body)
                target_of(changed)[key] = value
                yield changed
            removed = copy.deepcopy(body)
            del target_of(removed)[key]
            yield removed
            inner = target_of(body)[key]
            if isinstance(inner, dict) and inner:
                for value in ODD_VALUES:
                    changed = copy.deepcopy(body)
                    target_of(changed)[key][next(iter(inner))] = value
                    yield changed
                renamed = copy.deepcopy(body)
                target_of(renamed)[key]["not a heading"] = "1.00"
                yield renamed
            if isinstance(inner, list) and inner and isinstance(inner[0], dict):
                for sub in inner[0]:
                    for value in ODD_VALUES:
                        changed = copy.deepcopy(body)
                        target_of(changed)[key][0][sub] = value
                        yield changed
        added = copy.deepcopy(body)
        target_of(added)["unexpected"] = "x"
        yield added


def test_a_body_marshmallow_refuses_is_refused_with_marshmallows_messages():
    refused = taken = 0
    for body in SAMPLES:
        for changed in mutations(body):
            expected = outcome(copy.deepcopy(changed))
            fast = events._fast_parse(copy.deepcopy(changed))
            if isinstance(expected, dict):  # refused by marshmallow: never accepted by the plan
                assert fast is None, (changed, expected)
                with pytest.raises(InvalidInput) as refusal:
                    events.parse_event(copy.deepcopy(changed))
                assert refusal.value.errors == expected
                refused += 1
            elif fast is not None:  # accepted by both: the same event
                assert as_tuple(fast) == expected
                taken += 1
    assert refused > 1000 and taken > 100
