"""The typed errors over HTTP: RFC 9457 problem details (`application/problem+json`), and back.

The gateway answers every failure with a problem; HTTP clients (the `jmdi` CLI, staff tools, the tests) turn a
problem back into the same typed error the services raise, so "your input is wrong" (InvalidInput, 400/413/415/422),
"no such thing" (NotFound, 404), "a rule refused it" (Conflict, 409) and "you may not" (NotAllowed, 401/403/429)
stay apart from "the installation is incomplete" (SetupProblem, 500 with code `setup_problem`: what is missing
and how to fix it) and "the system failed" (SystemFailure, 500/502/503/504), whatever the transport.

Every problem carries `type`, `title`, `status`, `detail` and a stable `code`; the typed errors add their fields
(`errors`; `entity`, `key`; `rule`, `details`). An internal failure carries the correlation id and nothing else.
"""

from http import HTTPStatus

from .errors import Conflict, InvalidInput, JmdiError, NotAllowed, NotFound, SetupProblem

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "tag:jmdi,2026:problem:"  # RFC 9457 §3.1.1: a tag URI names a type without promising a page


class Unauthenticated(NotAllowed):
    """No token, or one that does not verify (401): who the caller is is unknown."""

    code = "unauthenticated"


class TooManyRefusals(NotAllowed):
    """This client had too many requests refused recently (429); `retry_after` seconds until it may try again."""

    code = "too_many_refusals"

    def __init__(self, reason: str, retry_after: int = 60):
        self.retry_after = int(retry_after)
        super().__init__(reason)


class BadRequest(InvalidInput):
    """The HTTP request itself is unusable: not JSON, not an object, too large, wrong media type."""

    def __init__(self, errors: dict, message: str | None = None, status: int = 400):
        self.status = status
        super().__init__(errors, message)


class RequestTimeout(BadRequest):
    """The request's body did not arrive in time (408): the client sends too slowly, or stalled."""

    code = "request_timeout"

    def __init__(self, message: str):
        super().__init__({"_body": [message]}, message, 408)


class UnknownOperation(JmdiError):
    """No such service or operation behind the gateway (404): a client newer or older than the system."""

    code = "unknown_operation"

    def __init__(self, path: str):
        self.path = path
        super().__init__(path)

    def __str__(self) -> str:
        return f"no such operation: {self.path}"


class SystemFailure(Exception):
    """The system failed, not the caller: an internal error (500), a service or the broker away (503), no answer in
    time (504). `correlation_id` finds the request in the logs."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str = "internal error", correlation_id: str | None = None, status: int | None = None):
        self.message = message
        self.correlation_id = correlation_id
        if status is not None:
            self.status = status
        super().__init__(message)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "correlation_id": self.correlation_id}


class ServiceUnavailable(SystemFailure):
    code = "service_unavailable"
    status = 503


class NoAnswer(SystemFailure):
    """No reply within the request timeout: the operation may still complete (a request not yet started expires)."""

    code = "timeout"
    status = 504


def _problem(status: int, code: str, detail: str | None = None, **extra) -> dict:
    body = {
        "type": TYPE_PREFIX + code.replace("_", "-"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_of(exc: BaseException, correlation_id: str | None = None) -> tuple[int, dict, dict]:
    """(status, problem body, extra headers) for any exception; unknown ones are internal failures that reveal
    nothing but the correlation id."""
    if isinstance(exc, RequestTimeout):
        return 408, _problem(408, exc.code, exc.message, errors=exc.errors), {}
    if isinstance(exc, BadRequest):
        return exc.status, _problem(exc.status, "invalid_input", exc.message, errors=exc.errors), {}
    if isinstance(exc, InvalidInput):
        omitted = {"errors_omitted": exc.omitted} if exc.omitted else {}
        return 422, _problem(422, "invalid_input", exc.message, errors=exc.errors, **omitted), {}
    if isinstance(exc, NotFound):
        return 404, _problem(404, "not_found", str(exc), entity=exc.entity, key=exc.key), {}
    if isinstance(exc, Conflict):
        return 409, _problem(409, "conflict", exc.reason, rule=exc.rule, details=exc.details), {}
    if isinstance(exc, TooManyRefusals):
        return (
            429,
            _problem(429, exc.code, exc.reason, retry_after=exc.retry_after),
            {"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, Unauthenticated):
        return 401, _problem(401, exc.code, exc.reason), {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if isinstance(exc, NotAllowed):
        return 403, _problem(403, "not_allowed", exc.reason), {}
    if isinstance(exc, UnknownOperation):
        return 404, _problem(404, exc.code, str(exc)), {}
    if isinstance(exc, SetupProblem):
        return 500, _problem(500, exc.code, exc.what, remedy=exc.remedy, correlation_id=correlation_id), {}
    if isinstance(exc, SystemFailure) and exc.status != 500:
        return exc.status, _problem(exc.status, exc.code, exc.message, correlation_id=correlation_id), {}
    return 500, _problem(500, "internal_error", correlation_id=correlation_id), {}


def error_from_problem(status: int, body) -> Exception:
    """The typed error a problem stands for (what the service raised, or the system failure)."""
    problem = body if isinstance(body, dict) else {}
    code = problem.get("code")
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    if status == 429:
        return TooManyRefusals(detail, int(problem.get("retry_after") or 60))
    if status == 401:
        return Unauthenticated(detail)
    if status == 403:
        return NotAllowed(detail)
    if status == 404 and code == "not_found":
        return NotFound(str(problem.get("entity")), problem.get("key"))
    if status == 404:
        return UnknownOperation(str(problem.get("instance") or detail.removeprefix("no such operation: ")))
    if status == 409 and code == "conflict":
        return Conflict(str(problem.get("rule")), detail, problem.get("details") or [])
    if status == 408 and code == RequestTimeout.code:
        return RequestTimeout(detail)
    if status == 422 and isinstance(problem.get("errors"), dict):
        return InvalidInput(problem["errors"], detail, int(problem.get("errors_omitted") or 0))
    if 400 <= status < 500 and isinstance(problem.get("errors"), dict):
        return BadRequest(problem["errors"], detail, status)
    if 400 <= status < 500:
        return BadRequest({"_body": [detail]}, detail, status)
    if code == SetupProblem.code:
        return SetupProblem(detail, str(problem.get("remedy") or ""))
    correlation = problem.get("correlation_id")
    kind = {503: ServiceUnavailable, 504: NoAnswer}.get(status, SystemFailure)
    message = detail if kind is not SystemFailure else f"internal error (HTTP {status})"
    return kind(message, correlation, status)
