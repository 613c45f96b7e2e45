"""Events are applied only from their producer: the checks a consumer makes before anything else."""

from services.common.messaging.provenance import ProducerCheck
from tests.support.principals import call_opened


def test_an_event_from_its_producers_broker_user_is_accepted():
    body = call_opened("C-1").body
    assert ProducerCheck(True).refusal(body, "calls", "call_opened") is None
    assert ProducerCheck(True, "jmdi-").refusal(body, "jmdi-calls", "call_opened") is None
    assert ProducerCheck(True).refusal(body, "calls", None) is None  # the batch consumer's own routing


def test_any_other_publisher_is_refused():
    body = call_opened("C-1").body
    check = ProducerCheck(True, "jmdi-")
    assert "published by broker user 'jmdi-grants', not by 'jmdi-calls'" in check.refusal(
        body, "jmdi-grants", "call_opened"
    )
    assert "carries no user_id" in check.refusal(body, None, "call_opened")
    assert "not by 'jmdi-calls'" in check.refusal(body, "calls", "call_opened"), "the prefix is part of the name"


def test_an_event_must_be_what_its_queue_was_bound_for_and_name_its_producer_even_with_the_check_off():
    body = call_opened("C-1").body
    off = ProducerCheck(False)
    assert off.refusal(body, None, "call_opened") is None
    assert off.refusal(body, "anyone", "call_opened") is None
    assert off.refusal(body, "calls", "tranche_paid") == "a call_opened event on the queue of tranche_paid"
    assert "it is calls's" in off.refusal({**body, "producer": "grants"}, "calls", "call_opened")


def test_a_body_that_is_no_event_is_left_to_the_contract_check():
    assert ProducerCheck(True).refusal({"event_type": "no_such_event"}, "x", None) is None
    assert ProducerCheck(True).refusal("not an object", "x", None) is None
