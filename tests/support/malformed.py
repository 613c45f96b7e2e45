"""Malformed messages, as an attacker or a broken client would publish them straight onto the bus, and the
dead-letter queue they must end in (services/common/messaging/guard.py). Raw AMQP (py-amqp), so that every property can be
left out or set to anything."""

from __future__ import annotations

import pickle
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import amqp

from services.common.messaging.guard import DEAD_LETTER_QUEUE

# kind -> the reason the guard gives for it; RPC-only kinds make sense on RPC queues only
KINDS = {
    "no_content_type": "no_content_type",
    "unknown_content_type": "unknown_content_type",
    "pickle": "unknown_content_type",
    "undecodable": "undecodable",
    "too_large": "too_large",
    "no_reply_to": "no_reply_to",
    "no_correlation_id": "no_correlation_id",
}
RPC_ONLY = ("no_reply_to", "no_correlation_id")
EVENT_KINDS = tuple(k for k in KINDS if k not in RPC_ONLY)


def connect(amqp_uri: str) -> amqp.Connection:
    parts = urlsplit(amqp_uri)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    conn = amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost,
        connect_timeout=10,
    )
    conn.connect()
    return conn


@dataclass
class Sent:
    message_id: str
    kind: str
    exchange: str
    routing_key: str


def message(kind: str, rpc: bool, large_bytes: int = 0) -> tuple[bytes, dict]:
    """(body, properties) of one malformed message of `kind`."""
    valid = b'{"args": [], "kwargs": {}}' if rpc else b'{"event_type": "x"}'
    properties = {"content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": 2}
    if rpc:
        properties.update(reply_to=f"rpc.reply-attacker-{uuid.uuid4()}", correlation_id=str(uuid.uuid4()))
    body = valid
    if kind == "no_content_type":
        del properties["content_type"]
    elif kind == "unknown_content_type":
        properties["content_type"] = "application/x-msgpack"
    elif kind == "pickle":  # a harmless pickle: the guard must never hand it to a decoder
        properties["content_type"] = "application/x-python-serialize"
        body = pickle.dumps({"args": [], "kwargs": {}})
    elif kind == "undecodable":
        body = b'\xff\xfe{"args": [}'
    elif kind == "too_large":
        body = b'{"pad": "' + b"x" * large_bytes + b'"}'
    elif kind == "no_reply_to":
        properties.pop("reply_to", None)
    elif kind == "no_correlation_id":
        properties.pop("correlation_id", None)
    else:
        raise ValueError(kind)
    return body, properties


def publish_malformed(channel, kind: str, exchange: str, routing_key: str, rpc: bool, large_bytes: int) -> Sent:
    body, properties = message(kind, rpc, large_bytes)
    message_id = f"malformed-{kind}-{uuid.uuid4()}"
    channel.basic_publish(
        amqp.Message(body, message_id=message_id, **properties), exchange=exchange, routing_key=routing_key
    )
    return Sent(message_id, kind, exchange, routing_key)


def send_all(amqp_uri: str, targets, large_bytes: int, kinds=None) -> list[Sent]:
    """targets: (exchange, routing_key, rpc) — one message of every kind fit for the target (RPC-only kinds only
    to RPC targets)."""
    sent = []
    with connect(amqp_uri) as conn:
        channel = conn.channel()
        channel.confirm_select()
        for exchange, routing_key, rpc in targets:
            for kind in kinds or KINDS:
                if kind in RPC_ONLY and not rpc:
                    continue
                sent.append(publish_malformed(channel, kind, exchange, routing_key, rpc, large_bytes))
    return sent


def _death(msg) -> dict:
    """The broker's record of why and whence a message was dead-lettered (its first `x-death` entry)."""
    return ((msg.properties.get("application_headers") or {}).get("x-death") or [{}])[0]


def dead_letters(amqp_uri: str) -> list[tuple[str | None, str | None]]:
    """Every message in the dead-letter queue, taken (acked): (message_id, the queue it was dead-lettered from)."""
    found = []
    with connect(amqp_uri) as conn:
        channel = conn.channel()
        while True:
            msg = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=True)
            if msg is None:
                return found
            found.append((msg.properties.get("message_id"), _death(msg).get("queue")))


def dead_letters_peeked(amqp_uri: str) -> list[tuple]:
    """(routing key, reason, delivery mode) of every dead letter, each left in the queue (not acknowledged: the
    channel closes with them, and the broker keeps them)."""
    found = []
    with connect(amqp_uri) as conn:
        channel = conn.channel()
        while (msg := channel.basic_get(DEAD_LETTER_QUEUE)) is not None:
            death = _death(msg)
            found.append(
                ((death.get("routing-keys") or [None])[0], death.get("reason"), msg.properties.get("delivery_mode"))
            )
    return found


def dead_letter_count(amqp_uri: str) -> int:
    with connect(amqp_uri) as conn:
        return conn.channel().queue_declare(DEAD_LETTER_QUEUE, passive=True).message_count
