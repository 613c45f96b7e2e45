"""The staff API's HTTP server and entrypoint, beside the /metrics server every service has.

nameko runs one web server per container (WEB_SERVER_ADDRESS, here the metrics port like the other services);
`ApiServer` is a second one, on GATEWAY_ADDRESS, for the `@api` entrypoints only — the same nameko extension
with its own sharing key, so staff never reach /metrics and Prometheus never reaches the API.

Every answer is JSON: the result (200) or a problem (application/problem+json, services/common/values/problems.py),
including unknown paths and methods; each carries X-Correlation-Id. Connections are HTTP/1.1 persistent, within
bounds (`ApiProtocol`): one idle longer than IDLE_TIMEOUT_SECONDS between requests is closed, one serves at most
REQUESTS_PER_CONNECTION requests, and a response whose request body was not read to its end (413 refused unread,
401/403/404/429 before the body) says `Connection: close` and closes, so such a body is never drained. The idle
timeout bounds the wait for a request's whole head (request line and headers), not only its first byte: a client
that trickles its head a byte at a time (slowloris) is closed like an idle one. The whole body, too, has a deadline
(limits.Limits.body_deadline: the idle timeout, longer for a large body at 10 kB/s), missed: 408 and the connection
closed (door.py). A client that stalls within a request (a read of the body, reading the answer) is cut after
CLIENT_SOCKET_TIMEOUT seconds.

At most MAX_CONNECTIONS connections are served at once (`ApiServer.run`): the server accepts the next only when
one has closed, so those beyond wait in the listen backlog (and past it, the kernel refuses or delays them) instead
of each holding a green thread and memory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import eventlet
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp, parse_address
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Request, Response

from services.common.values.errors import JmdiError
from services.common.values.problems import PROBLEM_JSON, BadRequest, SystemFailure, problem_of
from services.common.values.wire import to_wire

from . import metrics
from .door import Door, correlation_id

log = logging.getLogger(__name__)
CLIENT_SOCKET_TIMEOUT = 30
IDLE_TIMEOUT_SECONDS = 15  # defaults of the gateway's IDLE_TIMEOUT_SECONDS and REQUESTS_PER_CONNECTION
REQUESTS_PER_CONNECTION = 1000
MAX_CONNECTIONS = 500  # default of the gateway's MAX_CONNECTIONS


def json_response(status: int, body, headers: dict | None = None, content_type: str = "application/json"):
    return Response(
        json.dumps(to_wire(body), ensure_ascii=False), status=status, headers=headers or {}, content_type=content_type
    )


def problem_response(exc: BaseException, correlation: str, instance: str) -> Response:
    status, problem, headers = problem_of(exc, correlation)
    problem.setdefault("instance", instance)
    if status == 500:
        log.error("internal failure %s on %s: %r", correlation, instance, exc)
    return json_response(status, problem, {**headers, "X-Correlation-Id": correlation}, PROBLEM_JSON)


def body_read(stream) -> bool:
    """Whether the request's body (eventlet's wsgi Input) was read to its end: its Content-Length, or a chunked
    body's last chunk."""
    if stream.chunked_input:
        return stream.chunk_length == 0
    return stream.position >= (stream.content_length or 0)


class _HeadNotInTime(BaseException):
    """A request's line and headers did not arrive within the idle timeout (a BaseException, like eventlet's
    Timeout, so that no handler of Exception on the way swallows it)."""


class ApiProtocol(HttpOnlyProtocol):
    """eventlet's HTTP/1.1 handler with persistent connections kept within bounds: the server's `keepalive` (the
    idle timeout) and `requests_per_connection`; and never a body drained to reuse a connection — a response
    whose request's body was not read to its end closes it (eventlet would read and discard the rest)."""

    served = 0
    application: Callable[..., Any]  # the WSGI app, set by eventlet for each request (handle_one_request)

    def handle_one_request(self):
        # eventlet applies the idle timeout to each read of the request line and CLIENT_SOCKET_TIMEOUT to each read
        # of the headers, so a byte every few seconds would hold the connection for ever: the whole head must
        # arrive within the idle timeout. handle_one_response (the head is complete) cancels the deadline.
        self.head_deadline = eventlet.Timeout(self.server.keepalive, _HeadNotInTime())
        try:
            super().handle_one_request()
        except _HeadNotInTime:
            self.close_connection = 1
        finally:
            self.head_deadline.cancel()

    def handle_one_response(self):
        self.head_deadline.cancel()
        self.served += 1
        if self.served >= self.server.requests_per_connection:
            self.close_connection = 1
        self.application = partial(self._respond, self.application)
        super().handle_one_response()

    def _respond(self, app, environ, start_response):
        result = app(environ, start_response)
        # decided before the first byte of the answer is written, so that it says `Connection: close`
        if not body_read(environ["eventlet.input"]):
            self.close_connection = 1
        return result


class ApiServer(WebServer):
    door = Door()

    @property
    def bind_addr(self):
        return parse_address(str(self.container.config.get("GATEWAY_ADDRESS", "0.0.0.0:8000")))

    def get_wsgi_server(self, sock, wsgi_app, protocol=ApiProtocol, debug=False):
        config = self.container.config
        server = super().get_wsgi_server(sock, wsgi_app, protocol, debug)
        # eventlet waits for each request line this long (the first included), then closes the connection
        server.keepalive = _positive(config, "IDLE_TIMEOUT_SECONDS", IDLE_TIMEOUT_SECONDS, float)
        server.requests_per_connection = _positive(config, "REQUESTS_PER_CONNECTION", REQUESTS_PER_CONNECTION, int)
        server.socket_timeout = CLIENT_SOCKET_TIMEOUT
        self.slots = Semaphore(_positive(config, "MAX_CONNECTIONS", MAX_CONNECTIONS, int))
        return server

    def run(self):
        # nameko's loop, but a connection is accepted only with a free slot, given back when it closes
        while self._is_accepting:
            self.slots.acquire()
            try:
                sock, addr = self._sock.accept()
                sock.settimeout(self._serv.socket_timeout)
                self.container.spawn_managed_thread(partial(self._serve, sock, addr))
            except BaseException:
                self.slots.release()
                raise

    def _serve(self, sock, addr):
        try:
            self.process_request(sock, addr)
        finally:
            sock.close()  # eventlet has closed it, unless the connection failed before
            self.slots.release()

    def get_wsgi_app(self):
        return ApiApp(self)


def _positive(config: dict, key: str, default, kind):
    value = kind(config.get(key, default))
    if value <= 0:
        raise ValueError(f"{key} must be positive")
    return value


class ApiRequest(Request):
    """A staff request and what the gateway learns of it on its way: its correlation id, the service it names (the
    metrics label; "none" until known), the client asking (limits.client_of) and the route's values."""

    jmdi_correlation_id: str
    jmdi_service: str
    jmdi_client: str
    path_values: dict[str, str]


class ApiApp(WsgiApp):
    """Routes a request to its `@api` entrypoint after the budget check; answers everything else with a problem."""

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        door = self.server.door
        request = ApiRequest(environ, shallow=True)
        request.jmdi_correlation_id = correlation_id()
        request.jmdi_service = "none"
        allow = None
        try:
            request.jmdi_client = door.client(request)
            door.check_budget(request.jmdi_client)
            adapter = self.url_map.bind_to_environ(environ)
            try:
                provider, values = adapter.match()
            except MethodNotAllowed as exc:
                allowed = allow = ", ".join(sorted(exc.valid_methods or ()))
                raise BadRequest(
                    {"_method": [f"use {allowed}"]}, f"method not allowed here: use {allowed}", 405
                ) from None
            except HTTPException:
                raise door.unknown(request.jmdi_client, request.path) from None
            request.path_values = values
            response = provider.handle_request(request)
        except Exception as exc:  # every failure is a problem document, never an HTML page or a traceback
            response = problem_response(exc, request.jmdi_correlation_id, request.path)
            if allow is not None:
                response.headers["Allow"] = allow  # RFC 9110 §15.5.6
        metrics.REQUESTS.labels(request.jmdi_service, str(response.status_code)).inc()
        metrics.DURATION.labels(request.jmdi_service).observe(time.perf_counter() - started)
        return response(environ, start_response)


class ApiEntrypoint(HttpRequestHandler):
    """`@api(method, url, operation="service.name", public=False)`: a staff operation behind the door.

    Without `operation` the route's <service> and <operation> name it. The method receives the Admitted request
    and returns a JSON value; typed errors become problems.
    """

    server = ApiServer()

    def __init__(self, method, url, operation: str | None = None, public: bool = False, **kwargs):
        self.operation = operation
        self.public = public
        # refusals and failures the gateway reports as problems: one log line each, not a traceback
        kwargs.setdefault("expected_exceptions", (JmdiError, SystemFailure))
        super().__init__(method, url, **kwargs)

    def handle_request(self, request: ApiRequest) -> Response:
        request.shallow = False
        if self.operation:
            service, operation = self.operation.split(".", 1)
        else:
            service, operation = request.path_values["service"], request.path_values["operation"]
        if service in metrics.KNOWN_SERVICES:
            request.jmdi_service = service
        correlation = request.jmdi_correlation_id
        try:
            admitted = self.server.door.admit(request, service, operation, own=bool(self.operation), public=self.public)
            event = Event()
            self.container.spawn_worker(
                self, (admitted,), {}, context_data={}, handle_result=partial(self.handle_result, event)
            )
            result, exc_info, correlation = event.wait()
            if exc_info is not None:
                raise exc_info[1]
            return json_response(200, result, {"X-Correlation-Id": correlation})
        except Exception as exc:  # turned into a problem here, where the worker's correlation id is known
            return problem_response(exc, correlation, request.path)

    def handle_result(self, event, worker_ctx, result, exc_info):
        event.send((result, exc_info, worker_ctx.call_id))
        return result, exc_info


api = ApiEntrypoint.decorator
