"""What went wrong, as one line and an exit code scripts can rely on.

Exit codes (docs/access.md and the walkthrough list them):
  0 ok · 1 differences found (`jmdi report reconcile`) · 2 invalid input (also bad command-line usage)
  3 not found · 4 refused by a programme rule (conflict) · 5 not allowed (identity or role)
  6 system failure: an internal error in a service, no reply, or no broker
"""
from services.common.errors import Conflict, InvalidInput, NotAllowed, NotFound, _flatten

OK, DIFFERENCES, INVALID_INPUT, NOT_FOUND, CONFLICT, NOT_ALLOWED, SYSTEM_FAILURE = 0, 1, 2, 3, 4, 5, 6

EXIT_CODES = {
    OK: "done",
    DIFFERENCES: "reconciliation found differences",
    INVALID_INPUT: "invalid input (or command-line usage)",
    NOT_FOUND: "not found",
    CONFLICT: "refused by a programme rule",
    NOT_ALLOWED: "not allowed (no, bad or expired token; or the role may not)",
    SYSTEM_FAILURE: "system failure (internal error in a service, no reply, broker unreachable)",
}


class UsageProblem(Exception):
    """The command line itself is wrong (missing --out for xlsx, unreadable file...): exit 2."""


def describe(exc: BaseException) -> tuple[int, str, dict]:
    """(exit code, one-line message, machine-readable dict) for any failure of a command."""
    from nameko.exceptions import MethodNotFound, RemoteError, RpcTimeout, UnknownService

    from .session import BrokerUnreachable

    if isinstance(exc, InvalidInput):
        fields = _flatten(exc.errors)
        line = "invalid input: " + "; ".join(f"{f}: {_join(m)}" for f, m in fields.items())
        return INVALID_INPUT, line, exc.to_dict()
    if isinstance(exc, NotFound):
        return NOT_FOUND, f"not found: {exc}", exc.to_dict()
    if isinstance(exc, Conflict):
        line = f"refused by rule {exc.rule}: {exc.reason}"
        extra = [d.get("rule") or d.get("message") for d in exc.details if isinstance(d, dict)]
        extra = [str(x) for x in extra if x and x != exc.rule]
        if extra:
            line += f" ({', '.join(dict.fromkeys(extra))})"
        return CONFLICT, line, exc.to_dict()
    if isinstance(exc, NotAllowed):
        return NOT_ALLOWED, f"not allowed: {exc}", exc.to_dict()
    if isinstance(exc, UsageProblem):
        return INVALID_INPUT, str(exc), {"code": "usage", "message": str(exc)}
    if isinstance(exc, BrokerUnreachable):
        return SYSTEM_FAILURE, str(exc), {"code": "broker_unreachable", "message": str(exc)}
    if isinstance(exc, UnknownService):
        msg = f"service {exc} is not running (no RPC queue on the broker)"
        return SYSTEM_FAILURE, msg, {"code": "service_unavailable", "message": msg}
    if isinstance(exc, RpcTimeout):
        msg = f"no reply within the timeout ({exc}); is the service running? (JMDI_RPC_TIMEOUT sets the wait)"
        return SYSTEM_FAILURE, msg, {"code": "timeout", "message": msg}
    if isinstance(exc, MethodNotFound):
        msg = f"the service has no such operation: {exc}"
        return SYSTEM_FAILURE, msg, {"code": "method_not_found", "message": msg}
    if isinstance(exc, RemoteError):
        if exc.exc_type == "MethodNotFound":
            msg = f"the service has no such operation: {exc.value}"
            return SYSTEM_FAILURE, msg, {"code": "method_not_found", "message": msg}
        msg = f"internal error in the service ({exc.exc_type}): {exc.value}"
        return SYSTEM_FAILURE, msg, {"code": "internal_error", "message": msg}
    if isinstance(exc, (ConnectionError, OSError)):
        msg = f"connection to the broker failed: {exc}"
        return SYSTEM_FAILURE, msg, {"code": "broker_unreachable", "message": msg}
    msg = f"unexpected failure ({type(exc).__name__}): {exc}"
    return SYSTEM_FAILURE, msg, {"code": "internal_error", "message": msg}


def _join(messages) -> str:
    if isinstance(messages, (list, tuple)):
        return ", ".join(_join(m) for m in messages)
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_join(v)}" for k, v in messages.items())
    return str(messages)
