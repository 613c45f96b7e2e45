"""kombu producers kept from one message to the next, each on a broker connection of its own.

nameko's Publisher makes a kombu Connection and looks up its pool for every message: about half the CPU of a
publish. `Producers` keeps them instead, at most `limit`, one per publishing green thread (a confirming channel
waits for its own confirms). One whose publish failed otherwise than by finding no queue is closed, not kept: the
next is made afresh. The gateway's requests use it with publisher confirms, services' RPC replies without
(guard.py `GuardedRpcConsumer`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from eventlet.semaphore import Semaphore
from kombu import Connection, Producer
from kombu.exceptions import ChannelError
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS

log = logging.getLogger(__name__)

LIMIT = 10  # at most this many publishing at once (each its connection), as nameko's pool


class Producers:
    def __init__(self, uri: str, ssl=None, *, confirms: bool = True, limit: int = LIMIT):
        self.uri, self.ssl, self.confirms = uri, ssl, confirms
        self._idle: list[Producer] = []
        self._slots = Semaphore(limit)

    @contextmanager
    def acquire(self) -> Iterator[Producer]:
        with self._slots:
            producer = self._idle.pop() if self._idle else self._new()
            try:
                yield producer
            except ChannelError as exc:
                if "NO_ROUTE" not in str(exc):  # a mandatory message that no queue took: the channel stays
                    self._close(producer)
                    raise
                self._idle.append(producer)
                raise
            except BaseException:
                self._close(producer)
                raise
            self._idle.append(producer)

    def _new(self) -> Producer:
        options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": self.confirms}
        return Producer(Connection(self.uri, transport_options=options, ssl=self.ssl))

    @staticmethod
    def _close(producer: Producer):
        try:
            producer.connection.close()
        except Exception:  # already broken: nothing to hand back
            log.debug("closing a broken publisher connection", exc_info=True)

    def close(self):
        idle, self._idle = self._idle, []
        for producer in idle:
            self._close(producer)
