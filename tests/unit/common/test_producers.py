"""The kit's producers (services/common/messaging/producers.py `Producers`): kept from one publish to the next, one
per publishing green thread, and a broken one never handed out again."""

import warnings

import eventlet
import pytest
from kombu.exceptions import ChannelError, OperationalError

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

from services.common.messaging.producers import Producers  # noqa: E402


class FakeConnection:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


class FakeProducer:
    def __init__(self):
        self.connection = FakeConnection()


@pytest.fixture
def producers(monkeypatch):
    made: list[FakeProducer] = []

    def new(self):
        made.append(FakeProducer())
        return made[-1]

    monkeypatch.setattr(Producers, "_new", new)
    pool = Producers("amqp://nowhere//", limit=2)
    pool.made = made
    return pool


def test_a_producer_is_kept_from_one_publish_to_the_next(producers):
    for _ in range(5):
        with producers.acquire() as producer:
            assert producer is producers.made[0]
    assert len(producers.made) == 1


def test_a_producer_whose_publish_failed_is_closed_and_replaced(producers):
    with pytest.raises(OperationalError), producers.acquire() as broken:
        raise OperationalError("connection lost")
    assert broken.connection.closed
    with producers.acquire() as producer:
        assert producer is not broken and not producer.connection.closed


def test_a_message_no_queue_took_keeps_the_producer(producers):
    with pytest.raises(ChannelError), producers.acquire() as first:
        raise ChannelError("Basic.return: (312) NO_ROUTE")
    with producers.acquire() as producer:
        assert producer is first and not first.connection.closed


def test_concurrent_publishes_have_producers_of_their_own_up_to_the_limit(producers):
    held, release = [], eventlet.event.Event()

    def publish():
        with producers.acquire() as producer:
            held.append(producer)
            release.wait()

    threads = [eventlet.spawn(publish) for _ in range(3)]
    eventlet.sleep(0.01)
    assert len(held) == 2 and held[0] is not held[1]  # the third waits for a free one
    release.send()
    for thread in threads:
        thread.wait()
    assert len(held) == 3 and len(producers.made) == 2
    producers.close()
    assert all(p.connection.closed for p in producers.made)
