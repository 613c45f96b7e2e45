"""Staff RPC callers for flows that must survive faults: one standalone nameko proxy per thread, rebuilt when its
connection is lost; every answer is classified (ok, typed refusal, internal error, no answer)."""

from __future__ import annotations

import threading
from collections import Counter

import eventlet
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.service.rpc import ClusterClient
from services.common.values.errors import JmdiError
from services.common.values.problems import SystemFailure

OK, REFUSED, INTERNAL, NO_ANSWER = "ok", "refused", "internal", "no_answer"


def _internal(exc: BaseException) -> bool:
    """An internal failure: nameko's RemoteError over RPC, a 500 problem through the gateway."""
    return isinstance(exc, RemoteError) or (isinstance(exc, SystemFailure) and exc.status == 500)


def classify(exc: BaseException | None) -> str:
    if exc is None:
        return OK
    if isinstance(exc, JmdiError):
        return REFUSED
    if _internal(exc):
        return INTERNAL
    return NO_ANSWER  # timeout, service or connection lost: the caller cannot know whether the change was made


def error_name(exc: BaseException) -> str:
    """kind:name, e.g. refused:award.not_ranked, internal:OperationalError, no_answer:RpcTimeout."""
    if isinstance(exc, JmdiError):
        return f"{REFUSED}:{getattr(exc, 'rule', None) or exc.code}"
    if _internal(exc):
        return f"{INTERNAL}:{getattr(exc, 'exc_type', None) or exc.correlation_id}"
    return f"{NO_ANSWER}:{getattr(exc, 'code', None) or type(exc).__name__}"


HUNG_MARGIN_S = 30


class CallHung(Exception):
    """A call (or the connection it needed) that never finished."""


class Caller:
    def __init__(self, amqp_uri: str, token: str | None, timeout: float = 60, principal: str | None = None):
        """principal: the broker principal whose reply queues the calls use (`gateway` on least-privilege users)."""
        self._config = {"AMQP_URI": amqp_uri, "DECLARE_TOPOLOGY": principal is None}
        self._principal = principal
        self._context = {"authorization": token} if token else {}
        self.timeout = timeout
        self._local = threading.local()
        self._runners = []
        self._lock = threading.Lock()
        self.seen: Counter = Counter()  # error name -> times seen by this caller

    def _proxy(self):
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            runner = (
                ClusterClient(self._config, self._principal, context_data=self._context, timeout=self.timeout)
                if self._principal
                else ClusterRpcProxy(self._config, context_data=self._context, timeout=self.timeout)
            )
            proxy = runner.start()
            self._local.proxy, self._local.runner = proxy, runner
            with self._lock:
                self._runners.append(runner)
        return proxy

    def _drop(self):
        runner = getattr(self._local, "runner", None)
        self._local.proxy = self._local.runner = None
        if runner is not None:
            try:
                runner.stop()
            except Exception:  # its connection is already gone
                pass

    def call(self, service: str, operation: str, payload: dict | None = None):
        # a bound on the whole call, connecting included: a proxy whose start or reply never comes (a declare lost
        # on a busy broker) must fail and be replaced, not hold the scenario until the suite's timeout
        hung = CallHung(f"{service}.{operation}: no answer within {self.timeout + HUNG_MARGIN_S:g} s")
        try:
            with eventlet.Timeout(self.timeout + HUNG_MARGIN_S, hung):
                return getattr(getattr(self._proxy(), service), operation)(**(payload or {}))
        except (JmdiError, RemoteError) as exc:
            self.seen[error_name(exc)] += 1
            raise
        except Exception as exc:
            self.seen[error_name(exc)] += 1
            self._drop()  # a proxy that lost its connection or timed out is not reused
            raise

    def close(self):
        with self._lock:
            runners, self._runners = self._runners, []
        for runner in runners:
            try:
                runner.stop()
            except Exception:  # already disconnected
                pass
