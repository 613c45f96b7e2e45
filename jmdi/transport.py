"""HTTP to the gateway, the staff API's only door: one POST per operation, answers and problems as typed errors.

`Gateway(url).call(service, operation, payload, token)` returns the operation's result or raises what the service
raised (InvalidInput, NotFound, Conflict, NotAllowed; services/common/values/problems.py maps each problem back), or a
SystemFailure: an internal error (500, with its correlation id), a service or the broker away (503), no answer
in time (504), or the gateway itself not answering (GatewayUnreachable). Nothing here speaks AMQP.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from services.common.values.problems import NoAnswer, SystemFailure, error_from_problem
from services.common.values.wire import to_wire

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"


class GatewayUnreachable(SystemFailure):
    code = "gateway_unreachable"
    status = 502


def redact(url: str) -> str:
    parts = urlsplit(url)
    return (
        parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
        if parts.password or parts.username
        else url
    )


class Gateway:
    def __init__(self, url: str = DEFAULT_URL, timeout: float = 120.0, headers: dict | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})  # sent with every request (e.g. what a proxy in between would add)

    def call(self, service: str, operation: str, payload: dict | None = None, token: str | None = None):
        body = json.dumps(to_wire(payload or {}), ensure_ascii=False).encode("utf-8")
        return self.request("POST", f"{API_PREFIX}/{service}/{operation}", body, token)

    def request(self, method: str, path: str, body: bytes | None = None, token: str | None = None):
        headers = {**self.headers, "Accept": "application/json, application/problem+json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return self._json(response.status, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                raise error_from_problem(exc.code, self._problem(exc.read())) from None
        except (TimeoutError, socket.timeout):
            raise NoAnswer(f"the gateway at {redact(self.url)} did not answer within {self.timeout:g} s") from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise NoAnswer(f"the gateway at {redact(self.url)} did not answer within {self.timeout:g} s") from None
            raise GatewayUnreachable(
                f"the gateway at {redact(self.url)} does not answer ({reason}); is it running? "
                "(`make run` starts it; JMDI_URL points elsewhere)"
            ) from None

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
