"""The kit's frame handling on the real broker (services/common/messaging/frames.py): messages a read brought are
handled from the buffer, in order, none lost or doubled, a frame cut by the end of a read left for the next."""

import json

import pytest
from kombu import Connection, Consumer, Exchange, Producer

from services.common.messaging.frames import READ_CHUNK, buffer_reads, drain_buffered

from .conftest import bound_queue

pytestmark = pytest.mark.integration


def publish(uri: str, bodies: list[dict]):
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=Exchange("grants.events", type="topic", durable=True))
        for body in bodies:
            producer.publish(json.dumps(body), routing_key="tranche_paid", content_type="application/json")


def test_the_messages_a_read_brought_are_handled_from_the_buffer_in_order(vhost, queue):
    # bodies of uneven sizes, so that reads of READ_CHUNK bytes end inside frames
    sent = [{"n": n, "pad": "x" * (37 * n % 900)} for n in range(400)]
    assert sum(len(json.dumps(b)) for b in sent) > 10 * READ_CHUNK
    publish(vhost, sent)
    received, reads, from_buffer = [], 0, 0
    with Connection(vhost) as conn:
        channel = conn.channel()
        buffer_reads(conn.connection)
        channel.basic_qos(0, 1000, False)
        consumer = Consumer(channel, queues=[bound_queue(vhost, queue)], accept=["json"])
        consumer.register_callback(lambda body, message: received.append(json.loads(message.body)))
        consumer.consume()
        while len(received) < len(sent) and reads < 10 * len(sent):
            conn.drain_events(timeout=5)
            reads += 1
            from_buffer += drain_buffered(conn.connection)
        channel.basic_ack(0, multiple=True)
    assert received == sent
    # most frames came from what earlier reads brought (a message is three frames: method, header, body)
    assert from_buffer > len(sent) and reads < len(sent) / 2
