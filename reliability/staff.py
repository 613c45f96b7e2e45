"""Staff RPC callers for flows that must survive faults: one standalone nameko proxy per thread, rebuilt when its
connection is lost; every answer is classified (ok, typed refusal, internal error, no answer)."""
from __future__ import annotations

import threading
from collections import Counter

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.errors import JmdiError

OK, REFUSED, INTERNAL, NO_ANSWER = "ok", "refused", "internal", "no_answer"


def classify(exc: BaseException | None) -> str:
    if exc is None:
        return OK
    if isinstance(exc, JmdiError):
        return REFUSED
    if isinstance(exc, RemoteError):
        return INTERNAL
    return NO_ANSWER  # timeout, connection lost: the caller cannot know whether the change was made


def error_name(exc: BaseException) -> str:
    """kind:name, e.g. refused:award.not_ranked, internal:OperationalError, no_answer:RpcTimeout."""
    if isinstance(exc, JmdiError):
        return f"{REFUSED}:{getattr(exc, 'rule', None) or exc.code}"
    if isinstance(exc, RemoteError):
        return f"{INTERNAL}:{exc.exc_type}"
    return f"{NO_ANSWER}:{type(exc).__name__}"


class Caller:
    def __init__(self, amqp_uri: str, token: str | None, timeout: float = 60):
        self._config = {"AMQP_URI": amqp_uri}
        self._context = {"authorization": token} if token else {}
        self.timeout = timeout
        self._local = threading.local()
        self._runners = []
        self._lock = threading.Lock()
        self.seen: Counter = Counter()  # error name -> times seen by this caller

    def _proxy(self):
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            runner = ClusterRpcProxy(self._config, context_data=self._context, timeout=self.timeout)
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
        try:
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
