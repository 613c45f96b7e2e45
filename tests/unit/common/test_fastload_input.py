"""The compiled load (services/common/contracts/fastload.py) where a service writes: an operation's input
(entrypoints.load_input with the operation's plan) and an event's wire form when it is emitted (make_event).
Against marshmallow: the same dict for what both accept, and every refusal marshmallow's, with its messages; the
one-pass check of the input's text against `unstorable_text`'s verdict."""

import copy
import time
import json
import random
from datetime import datetime, timezone

import pytest

from services.calls import schemas
from services.common.contracts import events
from services.common.contracts.fastload import compile_schema
from services.common.service.entrypoints import _storable_fast, load_input, unstorable_text
from services.common.values.errors import InvalidInput
from services.gateway.catalogue import operations
from tests.support import flows
from tests.support.archive_events import archive_events, late_events

ODD_VALUES = (None, 12, 1.5, True, "", "x" * 5001, "2010-13-45", [], {}, {"x": 1}, "-1.00", "NaN", "\x00", "a\x07")


def outcome(schema, payload, plan=None):
    """What load_input gives: the loaded dict, or the messages of its refusal."""
    try:
        return load_input(schema, payload, plan)
    except InvalidInput as exc:
        return exc.errors


def payloads():
    """Valid inputs of calls' operations, as the flows (and so the bench and the gateway tests) send them."""
    proposal = flows.proposal(7, call_id="CALL-1", country="MA")
    full = {**flows.proposal(8, call_id="CALL-1", country="TN"), "logframe": flows.logframe(3)}
    return [
        (schemas.SubmitProposal(), proposal),
        (schemas.SubmitProposal(), full),
        (schemas.CreateCall(), json.loads(json.dumps(flows.call("CALL-1", "JMDI"), default=str))),
    ]


def mutations(payload):
    """The payload with one value changed or removed (one level into lists and maps too), or a key added."""
    for key, inner in payload.items():
        for value in ODD_VALUES:
            yield {**copy.deepcopy(payload), key: value}
        yield {k: copy.deepcopy(v) for k, v in payload.items() if k != key}
        if isinstance(inner, dict) and inner:
            for value in ODD_VALUES:
                changed = copy.deepcopy(payload)
                changed[key][next(iter(inner))] = value
                yield changed
        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
            for sub in inner[0]:
                for value in ODD_VALUES:
                    changed = copy.deepcopy(payload)
                    changed[key][0][sub] = value
                    yield changed
            doubled = copy.deepcopy(payload)  # e.g. two lead applicants: the schema's own validator refuses it
            doubled[key].append(copy.deepcopy(inner[0]))
            yield doubled
            emptied = copy.deepcopy(payload)
            emptied[key] = []
            yield emptied
    yield {**copy.deepcopy(payload), "unexpected": "x"}


def test_the_submission_input_compiles_with_its_schema_validator():
    schema = schemas.SubmitProposal()
    assert schema._hooks["validates_schema"]  # _one_lead: the plan must call it
    assert compile_schema(schema) is not None


@pytest.mark.parametrize("index", range(3))
def test_a_valid_input_loads_as_marshmallow_loads_it(index):
    schema, payload = payloads()[index]
    plan = compile_schema(schema)
    assert plan is not None
    assert plan(copy.deepcopy(payload)) is not None  # the plan took it
    assert outcome(schema, copy.deepcopy(payload), plan) == outcome(schema, copy.deepcopy(payload))


def test_an_input_marshmallow_refuses_is_refused_with_marshmallows_messages():
    refused = taken = 0
    for schema, payload in payloads():
        plan = compile_schema(schema)
        for changed in mutations(payload):
            expected = outcome(schema, copy.deepcopy(changed))
            fast = plan(copy.deepcopy(changed))
            assert outcome(schema, copy.deepcopy(changed), plan) == expected, changed
            if fast is not None:  # accepted by the plan: marshmallow's load accepts the same dict
                assert fast == schema.load(copy.deepcopy(changed)), changed
                taken += 1
            elif isinstance(expected, dict) and expected:
                refused += 1
    assert refused > 100 and taken > 10


def test_two_lead_applicants_are_refused_by_the_schemas_validator():
    payload = flows.proposal(9, call_id="CALL-1", country="MA")
    payload["applicants"] = [payload["applicants"][0], payload["applicants"][0]]
    schema = schemas.SubmitProposal()
    plan = compile_schema(schema)
    assert plan(copy.deepcopy(payload)) is None
    with pytest.raises(InvalidInput) as refusal:
        load_input(schema, payload, plan)
    assert refusal.value.errors == {"applicants": ["exactly one lead applicant is required"]}


def test_every_operations_input_plan_agrees_with_marshmallow_on_an_empty_and_an_odd_input():
    compiled = 0
    for op in operations():
        if op.schema is None:
            continue
        plan = compile_schema(op.schema)
        compiled += plan is not None
        for payload in ({}, {"unexpected": 1}, {name: None for name in op.schema.load_fields}):
            assert outcome(op.schema, copy.deepcopy(payload), plan) == outcome(op.schema, payload), op.key
    assert compiled > 20


SAMPLES = [json.loads(json.dumps(e.body)) for e in archive_events() + late_events()]


@pytest.mark.parametrize("body", SAMPLES, ids=[f"{i}-{b['event_type']}" for i, b in enumerate(SAMPLES)])
def test_an_emitted_event_carries_what_marshmallow_loads_from_its_wire_form(body):
    parsed = events.parse_event(copy.deepcopy(body))
    made = events.make_event(
        parsed.event_type, parsed.data, producer=parsed.producer, occurred_at=datetime.now(timezone.utc)
    )
    schema = events.contract_schema(parsed.event_type)
    assert made.data == schema.load(schema.dump(parsed.data))
    assert made.body["data"] == schema.dump(parsed.data)


def test_an_event_whose_data_breaks_its_contract_is_refused_with_marshmallows_messages():
    body = next(b for b in SAMPLES if b["event_type"] == "proposal_submitted")
    data = dict(events.parse_event(copy.deepcopy(body)).data)
    data["applicants"] = []
    schema = events.contract_schema("proposal_submitted")
    with pytest.raises(Exception) as marshmallow_says:
        schema.load(schema.dump(data))
    with pytest.raises(InvalidInput) as refusal:
        events.make_event("proposal_submitted", data, producer="calls")
    assert refusal.value.errors == {"data": marshmallow_says.value.messages}


TEXTS = (
    "plain",
    "",
    "tab\tLF\nCR\r",
    "é ü 中",
    "\x00",
    "a\x07b",
    "\x7f",
    "\x85",
    "\x9f",
    "\ud800",
    "x\udfff",
    "\u2028",
)


def test_the_one_pass_text_check_agrees_with_unstorable_text():
    rng = random.Random(16)
    for _ in range(3000):

        def value(depth):
            kind = rng.random()
            if depth > 3 or kind < 0.5:
                return rng.choice(TEXTS + (1, 2.5, None, True))
            if kind < 0.75:
                return [value(depth + 1) for _ in range(rng.randint(0, 3))]
            if kind < 0.85:
                return tuple(value(depth + 1) for _ in range(rng.randint(0, 3)))
            return {rng.choice(TEXTS + (3,)): value(depth + 1) for _ in range(rng.randint(0, 3))}

        payload = {rng.choice(TEXTS): value(0) for _ in range(rng.randint(1, 4))}
        assert _storable_fast(payload) == (unstorable_text(payload) == {}), payload


def test_more_unknown_fields_than_an_answer_reports_are_refused_on_them_alone():
    schema = schemas.CreateCall()
    payload = {f"unknown_{n}": n for n in range(60_000)}
    payload["call_id"] = ""  # invalid too, yet not what is reported: the unknown fields suffice
    started = time.perf_counter()
    with pytest.raises(InvalidInput) as refusal:
        load_input(schema, payload, compile_schema(schema))
    assert time.perf_counter() - started < 1
    assert list(refusal.value.errors) == [f"unknown_{n}" for n in range(50)]
    assert refusal.value.errors["unknown_0"] == ["Unknown field."]
    assert refusal.value.omitted == 60_000 - 50
    # 50 unknown fields or fewer: validated as ever, every error reported
    few = {f"unknown_{n}": n for n in range(3)} | {"call_id": ""}
    with pytest.raises(InvalidInput) as refusal:
        load_input(schema, few, None)
    assert {"unknown_0", "call_id", "title"} <= set(refusal.value.errors) and refusal.value.omitted == 0
