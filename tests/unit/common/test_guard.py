"""The message guard's decisions (services/common/messaging/guard.py), message by message; the real consumers are proven in
tests/integration/test_malformed_messages.py and R11-R13."""

import pickle
from types import SimpleNamespace

import pytest
from kombu.message import Message

from services.common.messaging.guard import (
    GuardedQueueConsumer,
    decode,
    decode_event,
    max_message_bytes,
    queue_arguments,
)


def message(body: bytes, **properties) -> Message:
    msg = Message(
        body=body,
        content_type=properties.get("content_type"),
        properties=properties,
        delivery_info={"routing_key": "grants.health"},
    )
    msg.accept = {"application/json"}
    return msg


RPC = {"content_type": "application/json", "reply_to": "rpc.reply-x-1", "correlation_id": "c1"}


@pytest.mark.parametrize(
    "body, properties, kind, reason",
    [
        (
            b'{"args": [], "kwargs": {}}',
            {k: v for k, v in RPC.items() if k != "content_type"},
            "rpc",
            "no_content_type",
        ),
        (b"{}", {**RPC, "content_type": "application/x-msgpack"}, "rpc", "unknown_content_type"),
        (
            pickle.dumps({"args": []}),
            {**RPC, "content_type": "application/x-python-serialize"},
            "rpc",
            "unknown_content_type",
        ),
        (b'\xff{"args"', RPC, "rpc", "undecodable"),
        (b'{"pad": "' + b"x" * 2000 + b'"}', RPC, "rpc", "too_large"),
        (b"{}", {k: v for k, v in RPC.items() if k != "reply_to"}, "rpc", "no_reply_to"),
        (b"{}", {k: v for k, v in RPC.items() if k != "correlation_id"}, "rpc", "no_correlation_id"),
        (b"{}", {"content_type": "application/data"}, "event", "unknown_content_type"),  # kombu would trust it
    ],
)
def test_each_malformed_message_is_named(body, properties, kind, reason):
    assert decode(message(body, **properties), kind, limit=1024) == (None, reason)


@pytest.mark.parametrize(
    "body",
    [
        b'\xff{"event_id"',
        b'{"event_id": "e1"',
        b'{"event_id": "e1"} trailing',
        '{"event_id": "caf\u00e9"}'.encode("latin-1"),
        b"[" * 100_000 + b"]" * 100_000,  # nested deeper than the parser goes
    ],
)
def test_an_event_that_is_not_utf8_json_is_undecodable(body):
    assert decode_event(message(body, content_type="application/json"), 1_000_000) == (None, None, "undecodable")


def test_an_event_keeps_its_text_and_no_sender_chooses_a_type_by_a_marker():
    """kombu's decoder would turn the marker object into a Decimal; an event's JSON stays what it says."""
    text = '{"event_id": "e1", "data": {"amount_eur": {"__type__": "decimal", "__value__": "1.5"}}, "name": "é"}'
    body, kept, reason = decode_event(message(text.encode(), content_type="application/json"), 1024)
    assert reason is None and kept == text
    assert body["data"]["amount_eur"] == {"__type__": "decimal", "__value__": "1.5"} and body["name"] == "é"
    assert decode(message(text.encode(), content_type="application/json"), "event", 1024) == (body, None)


def test_a_sound_message_is_decoded_and_events_need_no_reply_fields():
    assert decode(message(b'{"args": [], "kwargs": {}}', **RPC), "rpc", 1024) == ({"args": [], "kwargs": {}}, None)
    assert decode(message(b'{"event_id": "e1"}', content_type="application/json"), "event", 1024) == (
        {"event_id": "e1"},
        None,
    )


def test_replies_are_left_to_the_brokers_size_limit():
    big = message(b'{"result": "' + b"x" * 4000 + b'", "error": null}', content_type="application/json")
    assert decode(big, "reply", limit=1024)[1] is None
    assert decode(big, "event", limit=1024) == (None, "too_large")


def test_settings():
    assert max_message_bytes({}) == 32 * 1024 * 1024 and max_message_bytes({"MESSAGE_MAX_BYTES": "4096"}) == 4096
    assert max_message_bytes({"MESSAGE_MAX_BYTES": "junk"}) == 32 * 1024 * 1024
    assert queue_arguments({}) == {"x-dead-letter-exchange": "jmdi.dead-letter"}
    assert queue_arguments({"EVENT_QUEUE_TYPE": "quorum"})["x-queue-type"] == "quorum"


def test_an_ack_lost_with_a_dead_broker_connection_does_not_kill_the_service():
    consumer = GuardedQueueConsumer()
    consumer.container = SimpleNamespace(service_name="grants")

    class Lost:
        channel = SimpleNamespace(connection=object())

        def ack(self):
            raise ConnectionResetError(104, "Connection reset by peer")

        def requeue(self):
            raise BrokenPipeError(32, "Broken pipe")

    consumer.ack_message(Lost())  # neither raises: the broker redelivers what was not acknowledged
    consumer.requeue_message(Lost())


def test_a_reply_listener_moves_to_a_fresh_reply_queue_after_a_lost_connection():
    # on a cluster the old reply queue's record outlives its dead node for a while: its name is not declared again
    from kombu import Exchange, Queue

    from services.common.service.rpc import _listen_on_named_queue

    consumer = GuardedQueueConsumer()
    consumer.container = SimpleNamespace(
        service_name="gateway", config={"DECLARE_TOPOLOGY": False}, max_workers=10, accept=["application/json"]
    )

    class Provider:  # hashable, as nameko's extensions
        def __init__(self, **attributes):
            self.__dict__.update(attributes)

    listener = Provider(container=consumer.container, queue_consumer=consumer)
    consumer.register_provider = lambda provider: consumer._providers.add(provider)
    _listen_on_named_queue(listener)
    rpc = Provider(queue=Queue("rpc-gateway", Exchange("nameko-rpc"), routing_key="gateway.*"))
    consumer._providers.add(rpc)
    first = listener.routing_key
    declared = []

    def consumer_cls(queues, **_):
        declared.extend(q.name for q in queues)
        return SimpleNamespace(qos=lambda **_: None)

    consumer.get_consumers(consumer_cls, channel=None)  # the first connection
    assert listener.routing_key == first == listener.queue.name == listener.queue.routing_key
    consumer.get_consumers(consumer_cls, channel=None)  # a reconnection
    second = listener.routing_key
    assert second != first and second.startswith("rpc.reply-gateway-")
    assert listener.queue.name == listener.queue.routing_key == second
    assert not listener.queue.durable and listener.queue.auto_delete
    assert listener.queue.queue_arguments == {"x-expires": 300000}
    assert sorted(declared) == sorted([first, "rpc-gateway", second, "rpc-gateway"])  # other queues keep their names
