"""Publishing events straight onto the bus, as a producer (or a misbehaving duplicate publisher) would."""

import json

from kombu import Connection, Exchange, Producer

from services.common.contracts.events import make_event
from services.common.contracts.topology import exchange_name, producer_of


def publish(amqp_uri: str, body: dict, times: int = 1):
    """Publish an event body `times` times to its producer's exchange, persistent, with confirms."""
    producer_name = body["producer"]
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=Exchange(exchange_name(producer_name), type="topic", durable=True))
        for _ in range(times):
            producer.publish(
                json.dumps(body),
                routing_key=body["event_type"],
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                declare=[producer.exchange],
            )


def ready_messages(amqp_uri: str, queues) -> dict[str, int]:
    """Messages ready in each queue, asked of the queue itself (a passive declare): exact at once, where the
    management API's counts are statistics refreshed every few seconds."""
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        return {name: channel.queue_declare(queue=name, passive=True).message_count for name in queues}


def event_body(event_type: str, data: dict, **kwargs) -> dict:
    return make_event(event_type, data, producer=producer_of(event_type), **kwargs).body
