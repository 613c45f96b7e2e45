"""No message can crash a service: every consumer checks a message before anything decodes or answers it.

nameko decodes a message in the consumer thread and answers an RPC with the request's own `content_type` and
`reply_to`: a request without a content type, with one nameko does not know, with a body that does not decode or
without a `reply_to` raised in that thread and killed the container; requeued, the same message killed it again
on every restart. Here every consumer of a service — RPC (`GuardedRpc`), events (`KitEventHandler`, the batch
consumer) and RPC replies (`services.common.service.rpc`) — runs `inspect()` first. A malformed message

- over MESSAGE_MAX_BYTES (the broker refuses larger ones first: `max_message_size`, deploy/rabbitmq; replies are
  left to the broker's limit),
- without a content type, or with one other than JSON (pickle and friends never reach a decoder),
- whose body does not decode,
- (RPC requests) without `reply_to` or `correlation_id`, which no answer could reach,

is logged once (one WARNING line: service, queue, reason, size, message id; never the body), counted in
`jmdi_malformed_messages_total{service,queue,reason}` and rejected without requeue. The broker dead-letters it:
every consumer queue is declared with `x-dead-letter-exchange: jmdi.dead-letter`, a fanout exchange bound to the
durable, bounded queue `jmdi.dead-letters` (its `x-death` header names the queue it came from), where operators
can read it (the reason in `x-death` is `rejected`; a gateway request that expired unanswered in the queue of a
service that was down lands there too, as `expired`). The service keeps serving: the message never reaches a
worker. Replies (reply queues have no
dead-letter exchange) are dropped, logged and counted the same way.
"""

from __future__ import annotations

import json
import logging
import sys
from functools import partial

from amqp.exceptions import ConnectionError as AMQPConnectionError
from kombu import Exchange, Queue
from kombu.serialization import dumps
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_RETRY_POLICY
from nameko.exceptions import UnserializableValueError, serialize
from nameko.messaging import QueueConsumer
from nameko.rpc import ReplyListener, Rpc, RpcConsumer, get_rpc_exchange

from ..runtime import metrics
from ..runtime.config import redact
from .producers import Producers

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "jmdi.dead-letter"
DEAD_LETTER_QUEUE = "jmdi.dead-letters"
# the dead-letter queue is bounded: the oldest letters go first when a flood would fill the broker
DEAD_LETTER_MAX_MESSAGES = 100_000
DEAD_LETTER_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # the broker's max_message_size (deploy/rabbitmq/rabbitmq.conf)
ACCEPTED_CONTENT_TYPES = frozenset({"application/json"})
REASONS = ("too_large", "no_content_type", "unknown_content_type", "undecodable", "no_reply_to", "no_correlation_id")


def max_message_bytes(config) -> int:
    try:
        value = int(config.get("MESSAGE_MAX_BYTES") or DEFAULT_MAX_MESSAGE_BYTES)
    except (TypeError, ValueError):
        value = DEFAULT_MAX_MESSAGE_BYTES
    return value if value > 0 else DEFAULT_MAX_MESSAGE_BYTES


def queue_arguments(config: dict) -> dict:
    """The arguments every consumer queue is declared with, by every declarer (services, broker definitions):
    malformed messages are dead-lettered; quorum queues (replicated, for a RabbitMQ cluster) when configured."""
    arguments: dict[str, str | int] = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}
    if config.get("EVENT_QUEUE_TYPE") == "quorum":
        arguments["x-queue-type"] = "quorum"
    return arguments


def dead_letter_queue_arguments(config: dict) -> dict:
    arguments: dict[str, str | int] = {
        "x-max-length": DEAD_LETTER_MAX_MESSAGES,
        "x-max-length-bytes": DEAD_LETTER_MAX_BYTES,
    }
    if config.get("EVENT_QUEUE_TYPE") == "quorum":
        arguments["x-queue-type"] = "quorum"
    return arguments


def declare_dead_letters(channel, config: dict):
    """The dead-letter exchange and queue (idempotent; broker definitions declare the same)."""
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)
    exchange(channel).declare()
    Queue(
        DEAD_LETTER_QUEUE,
        exchange=exchange,
        routing_key="",
        durable=True,
        auto_delete=False,
        queue_arguments=dead_letter_queue_arguments(config),
    )(channel).declare()


def inspect(message, kind: str, limit: int) -> str | None:
    """Why a message cannot be handled (one of REASONS), or None. kind: rpc | event | reply."""
    body = message.body
    # a reply is the answer of a service the caller called (topic permissions let nobody else publish it): its
    # size is the broker's to cap (max_message_size); dropping it would leave the caller waiting to its timeout
    if kind != "reply" and body is not None and len(body) > limit:
        return "too_large"
    properties = message.properties or {}
    content_type = properties.get("content_type") or message.content_type
    if not content_type:
        return "no_content_type"
    if content_type not in ACCEPTED_CONTENT_TYPES:
        return "unknown_content_type"
    if kind == "rpc":
        if not properties.get("reply_to"):
            return "no_reply_to"
        if not properties.get("correlation_id"):
            return "no_correlation_id"
    return None


def decode(message, kind: str, limit: int):
    """(body, None) for a message fit to handle, or (None, reason)."""
    if kind == "event":
        body, _text, reason = decode_event(message, limit)
        return body, reason
    reason = inspect(message, kind, limit)
    if reason:
        return None, reason
    return _kombu_decoded(message)


def _kombu_decoded(message):
    """(body, None) as kombu decodes the message, or (None, "undecodable")."""
    try:
        return message.decode(), None
    except Exception:  # kombu's DecodeError, ContentDisallowed, a UnicodeDecodeError...: all the sender's fault
        return None, "undecodable"


_UTF8 = frozenset({"utf-8", "utf8"})


def decode_event(message, limit: int):
    """(body, text, None) for an event fit to handle, or (None, None, reason). `text` is the JSON text the body
    was parsed from (None where the message's encoding is not UTF-8: kombu decodes those).

    Events are plain JSON objects (the relay publishes their wire text): parsed with json.loads, not with kombu's
    decoder, whose object hook is a Python call per JSON object and turns `{"__type__": ..., "__value__": ...}`
    into a date or a Decimal the sender chose."""
    reason = inspect(message, "event", limit)
    if reason:
        return None, None, reason
    if (message.content_encoding or "utf-8").lower() not in _UTF8:
        body, reason = _kombu_decoded(message)
        return body, None, reason
    raw = message.body
    try:
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8")
        return json.loads(text), text, None
    except (ValueError, RecursionError):  # not UTF-8, not JSON (both ValueErrors), or nested too deep to parse
        return None, None, "undecodable"


def refuse(message, service: str, queue: str, reason: str, delivered_without_ack: bool = False):
    """Log once, count, reject without requeue (the broker dead-letters it; one delivered without ack is gone
    already: rejecting it would close the channel). Never raises."""
    properties = message.properties or {}
    size = len(message.body) if message.body is not None else 0
    metrics.MALFORMED_MESSAGES.labels(service, queue, reason).inc()
    log.warning(
        "%s: malformed message on %s dead-lettered (%s): %d bytes, content type %r, message id %r, routing key %r",
        service,
        queue,
        reason,
        size,
        str(properties.get("content_type"))[:60],
        str(properties.get("message_id"))[:80],
        str((message.delivery_info or {}).get("routing_key"))[:200],
    )
    if delivered_without_ack:
        return
    try:
        message.reject(requeue=False)
    except Exception as exc:  # the connection is gone: the broker gives it back, and it is refused again then
        log.warning("%s: could not reject the malformed message on %s: %s", service, queue, exc)


def kind_of(provider) -> str:
    if isinstance(provider, RpcConsumer):
        return "rpc"
    if isinstance(provider, ReplyListener):
        return "reply"
    return "event"


class GuardedQueueConsumer(QueueConsumer):
    """nameko's queue consumer, handing a provider only messages `inspect` found fit (decoded here)."""

    def setup(self):
        super().setup()
        self.max_message_bytes = max_message_bytes(self.container.config)

    def get_consumers(self, consumer_cls, channel):
        """Called on every (re)connection. After a lost connection a reply listener moves to a fresh reply queue
        (services/common/service/rpc.py `_renew_reply_queue`): its old one went with the connection, or with a dead
        node."""
        if getattr(self, "_connected_once", False):
            for provider in self._providers:
                renew = getattr(provider, "renew_reply_queue", None)
                if renew is not None:
                    name = renew()
                    log.warning("%s: broker connection lost; replies now come to %s", self.container.service_name, name)
        self._connected_once = True
        for provider in self._providers:
            consumer = consumer_cls(
                queues=[provider.queue],
                on_message=partial(self._on_message, provider),
                accept=self.accept,
                no_ack=getattr(provider, "no_ack", False),
            )
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def ack_message(self, message):
        """nameko catches amqp's ConnectionError only: a socket reset by a broker node that died (OSError) would
        escape into the worker's result handling and kill the container. The connection is gone: the broker
        gives the unacknowledged message to another consumer, the inbox makes that harmless."""
        try:
            super().ack_message(message)
        except (OSError, AMQPConnectionError) as exc:
            log.warning(
                "%s: ack lost with the broker connection (%s): the message will be redelivered",
                self.container.service_name,
                exc,
            )

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except (OSError, AMQPConnectionError) as exc:
            log.warning(
                "%s: requeue lost with the broker connection (%s): the broker requeues it itself",
                self.container.service_name,
                exc,
            )

    def on_connection_error(self, exc, interval):
        """nameko's line hides only the first URL's password of a failover list (several nodes): hide them all."""
        log.warning(
            "Error connecting to broker at %s (%s). Retrying in %s seconds.", redact(str(self.amqp_uri)), exc, interval
        )

    def _on_message(self, provider, message):
        body, reason = decode(message, kind_of(provider), self.max_message_bytes)
        if reason:
            refuse(
                message, self.container.service_name, provider.queue.name, reason, getattr(provider, "no_ack", False)
            )
            return
        self.handle_message(provider, body, message)


class GuardedRpcConsumer(RpcConsumer):
    queue_consumer = GuardedQueueConsumer()
    queue: Queue

    def setup(self):
        super().setup()
        config = self.container.config
        queue = self.queue
        self.queue = Queue(
            queue.name,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            durable=True,
            queue_arguments=queue_arguments(config),
        )
        self.reply_exchange = get_rpc_exchange(config)
        self.replies = Producers(config[AMQP_URI_CONFIG_KEY], config.get(AMQP_SSL_CONFIG_KEY), confirms=False)

    def stop(self):
        super().stop()
        self.replies.close()

    def kill(self):
        super().kill()
        self.replies.close()

    def handle_result(self, message, result, exc_info):
        """nameko's reply, for less: on a producer kept from one reply to the next (nameko's Responder makes a
        Publisher, and looks up a connection, for each), encoded once (it encodes twice: once to check), without a
        publisher confirm. A reply the broker loses is a timeout for its caller with or without the confirm, which
        only held the request's ack back by a round trip. Then the request is acknowledged, as nameko does."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        try:
            content_type, encoding, body = dumps({"result": result, "error": error}, "json")
        except Exception:  # as nameko: the caller is told, and the worker's result records the failure
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            content_type, encoding, body = dumps({"result": None, "error": error}, "json")
        with self.replies.acquire() as producer:
            producer.publish(
                body,
                content_type=content_type,
                content_encoding=encoding,
                exchange=self.reply_exchange,
                routing_key=message.properties["reply_to"],
                correlation_id=message.properties.get("correlation_id"),
                retry=True,
                retry_policy=DEFAULT_RETRY_POLICY,
            )
        self.queue_consumer.ack_message(message)
        return result, exc_info


class GuardedRpc(Rpc):
    rpc_consumer = GuardedRpcConsumer()


guarded_rpc = GuardedRpc.decorator
