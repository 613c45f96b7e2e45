"""HTTP to the gateway, the staff API's only door: one POST per operation, answers and problems as typed errors.

`Gateway(url).call(service, operation, payload, token)` returns the operation's result or raises what the service
raised (InvalidInput, NotFound, Conflict, NotAllowed; services/common/values/problems.py maps each problem back), or a
SystemFailure: an internal error (500, with its correlation id), a service or the broker away (503), no answer
in time (504), or the gateway itself not answering (GatewayUnreachable). Nothing here speaks AMQP.

HTTP/1.1 with persistent connections: one per thread (a Gateway may be shared by threads), opened on the first
request and reused. A reused connection the gateway has closed meanwhile (it closes one idle for
GATEWAY_IDLE_TIMEOUT_SECONDS, or after GATEWAY_REQUESTS_PER_CONNECTION requests) is found closed before sending
when it can be (the socket reads as closed), and otherwise the request is sent once more on a new connection — only
when the gateway cannot have processed it: the request could not be sent, or the connection closed before a single
byte of the answer (what browsers and urllib3 do on reused connections). A timeout is never retried, nor is a
failure on a new connection.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from urllib.parse import urlsplit

from services.common.values.problems import NoAnswer, SystemFailure, error_from_problem
from services.common.values.wire import to_wire

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
IDLE_MARGIN = 1.0  # a connection idle this close to the gateway's announced timeout is not reused


class GatewayUnreachable(SystemFailure):
    code = "gateway_unreachable"
    status = 502


def redact(url: str) -> str:
    parts = urlsplit(url)
    return (
        parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")).geturl()
        if parts.password or parts.username
        else url
    )


class _Stale(Exception):
    """A reused connection that the gateway closed before this request reached it."""


class _Connection:
    def __init__(self, connection: http.client.HTTPConnection, tls: bool):
        self.http = connection
        self.tls = tls  # a TLS socket may be readable with no end of file (session tickets): not probed
        self.used = False
        self.reusable_until = float("inf")

    def dropped(self) -> bool:
        """Closed by the gateway while idle (readable: its end of file), or kept past the idle time it
        announced."""
        sock = self.http.sock
        if sock is None or time.monotonic() >= self.reusable_until:
            return True
        if self.tls:
            return False
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True


class Gateway:
    def __init__(self, url: str = DEFAULT_URL, timeout: float = 120.0, headers: dict | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})  # sent with every request (e.g. what a proxy in between would add)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {redact(self.url)}")
        self._https = parts.scheme == "https"
        self._host, self._port, self._base = parts.hostname, parts.port, parts.path.rstrip("/")
        self._local = threading.local()
        self._open: set[_Connection] = set()  # every thread's, for close()
        self._lock = threading.Lock()

    def call(self, service: str, operation: str, payload: dict | None = None, token: str | None = None):
        body = json.dumps(to_wire(payload or {}), ensure_ascii=False).encode("utf-8")
        return self.request("POST", f"{API_PREFIX}/{service}/{operation}", body, token)

    def request(self, method: str, path: str, body: bytes | None = None, token: str | None = None):
        # keep-alive said aloud (HTTP/1.1's default) so that the gateway announces its idle timeout (Keep-Alive)
        headers = {**self.headers, "Accept": "application/json, application/problem+json", "Connection": "keep-alive"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            try:
                status, raw, ok = self._exchange(method, self._base + path, body, headers)
            except _Stale:
                status, raw, ok = self._exchange(method, self._base + path, body, headers)
        except (TimeoutError, socket.timeout):
            raise NoAnswer(f"the gateway at {redact(self.url)} did not answer within {self.timeout:g} s") from None
        except (_Stale, http.client.HTTPException, OSError) as exc:
            reason = exc.__cause__ if isinstance(exc, _Stale) else exc
            raise GatewayUnreachable(
                f"the gateway at {redact(self.url)} does not answer ({reason}); is it running? "
                "(`make run` starts it; JMDI_URL points elsewhere)"
            ) from None
        if ok:
            return self._json(status, raw)
        raise error_from_problem(status, self._problem(raw))

    def _exchange(self, method: str, target: str, body: bytes | None, headers: dict) -> tuple[int, bytes, bool]:
        conn = self._connection()
        reused = conn.used
        conn.used = True
        try:
            try:
                conn.http.request(method, target, body=body, headers=headers)
            except (TimeoutError, socket.timeout):
                raise
            except OSError as exc:  # refused, reset or broken pipe while sending: the gateway read no request
                if reused:
                    raise _Stale() from exc
                raise
            try:
                response = conn.http.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                # closed before the first byte of an answer: on a reused connection, the gateway's idle close
                if reused:
                    raise _Stale() from exc
                raise
            raw = response.read()
        except BaseException:
            self._discard(conn)
            raise
        if response.will_close:
            self._discard(conn)
        else:
            conn.reusable_until = _reusable_until(response.getheader("Keep-Alive"))
        return response.status, raw, 200 <= response.status < 300

    def _connection(self) -> _Connection:
        conn = getattr(self._local, "connection", None)
        if conn is not None and conn.dropped():
            self._discard(conn)
            conn = None
        if conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = _Connection(kind(self._host, self._port, timeout=self.timeout), self._https)
            self._local.connection = conn
            with self._lock:
                self._open.add(conn)
        return conn

    def _discard(self, conn: _Connection):
        conn.http.close()
        if getattr(self._local, "connection", None) is conn:
            self._local.connection = None
        with self._lock:
            self._open.discard(conn)

    def close(self):
        """Closes every thread's connection (a later request opens a new one)."""
        with self._lock:
            held, self._open = self._open, set()
        for conn in held:
            conn.http.close()

    def _json(self, status: int, raw: bytes):
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            raise SystemFailure(
                f"the gateway at {redact(self.url)} answered {status} with something not JSON", status=502
            ) from None

    @staticmethod
    def _problem(raw: bytes):
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            return None  # a proxy's HTML page: the status alone tells what happened


def _reusable_until(keep_alive: str | None) -> float:
    """The moment a connection stops being worth reusing, from the gateway's `Keep-Alive: timeout=N`."""
    for part in (keep_alive or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "timeout":
            try:
                return time.monotonic() + max(float(value) - IDLE_MARGIN, 0)
            except ValueError:
                break
    return float("inf")
