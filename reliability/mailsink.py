"""The SMTP server the notifications service delivers to during a run: a real aiosmtpd server that keeps every
Message-ID it accepts, so a duplicate e-mail (the same Message-ID twice) is visible, and which messages each
recipient received of each kind (X-JMDI-Kind), counted independently of the notifications database."""

from __future__ import annotations

import socket
import threading
from collections import Counter, defaultdict
from email.parser import BytesHeaderParser

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Recorder:
    def __init__(self, sink: "MailSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        self.sink.record(
            str(headers.get("Message-ID", "")).strip(), list(envelope.rcpt_tos), str(headers.get("X-JMDI-Kind", ""))
        )
        return "250 2.0.0 Message accepted for delivery"


class MailSink:
    def __init__(self):
        self.port = free_port()
        self._lock = threading.Lock()
        self.message_ids: Counter = Counter()
        self.by_kind: dict[tuple[str, str], set[str]] = defaultdict(set)  # (recipient, kind) -> Message-IDs
        self.messages = 0
        self._controller = Controller(_Recorder(self), hostname="127.0.0.1", port=self.port)

    def record(self, message_id: str, recipients: list[str], kind: str = ""):
        with self._lock:
            self.messages += 1
            message_id = message_id or f"<no Message-ID #{self.messages}>"
            self.message_ids[message_id] += 1
            for recipient in recipients:
                self.by_kind[(recipient.lower(), kind)].add(message_id)

    def start(self) -> "MailSink":
        self._controller.start()
        return self

    def stop(self):
        self._controller.stop()

    def duplicates(self) -> dict[str, int]:
        with self._lock:
            return {mid: n for mid, n in self.message_ids.items() if n > 1}

    def received_by_kind(self) -> dict[tuple[str, str], set[str]]:
        with self._lock:
            return {key: set(ids) for key, ids in self.by_kind.items()}

    def received(self) -> set[str]:
        with self._lock:
            return set(self.message_ids)

    def env(self) -> dict:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_STARTTLS": "false"}
