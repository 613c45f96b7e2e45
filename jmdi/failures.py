"""What went wrong, as one line and an exit code scripts can rely on.

Exit codes (docs/access.md and the walkthrough list them):
  0 ok · 1 differences found (`jmdi report reconcile`) · 2 invalid input (also bad command-line usage)
  3 not found · 4 refused by a programme rule (conflict) · 5 not allowed (identity or role)
  6 system failure: an internal error, a service not answering, or the gateway not answering
  7 set-up problem: the service lacks a file or setting operators provide (e.g. the IATI schema under
    STANDARDS_DIR); nothing is wrong with the request, and no programme rule refused it

The gateway answers failures as problem+json; jmdi/transport.py turns each back into the typed error
(services/common/values/problems.py), so the exit codes are those of the errors, whatever the transport.
"""

from services.common.values.errors import Conflict, InvalidInput, NotAllowed, NotFound, SetupProblem, _flatten
from services.common.values.problems import (
    NoAnswer,
    ServiceUnavailable,
    SystemFailure,
    TooManyRefusals,
    UnknownOperation,
)

OK, DIFFERENCES, INVALID_INPUT, NOT_FOUND, CONFLICT, NOT_ALLOWED, SYSTEM_FAILURE = 0, 1, 2, 3, 4, 5, 6
SETUP_PROBLEM = 7

EXIT_CODES = {
    OK: "done",
    DIFFERENCES: "reconciliation found differences",
    INVALID_INPUT: "invalid input (or command-line usage)",
    NOT_FOUND: "not found",
    CONFLICT: "refused by a programme rule",
    NOT_ALLOWED: "not allowed (no, bad or expired token; or the role may not)",
    SYSTEM_FAILURE: "system failure (internal error, a service or the gateway not answering)",
    SETUP_PROBLEM: "set-up problem (a file or setting of the installation is missing: tell the operators)",
}


class UsageProblem(Exception):
    """The command line itself is wrong (missing --out for xlsx, unreadable file...): exit 2."""


def describe(exc: BaseException) -> tuple[int, str, dict]:
    """(exit code, one-line message, machine-readable dict) for any failure of a command."""
    from .transport import GatewayUnreachable

    if isinstance(exc, InvalidInput):
        fields = _flatten(exc.errors)
        line = "invalid input: " + "; ".join(f"{f}: {_join(m)}" for f, m in fields.items())
        if exc.omitted:
            line += f"; and {exc.omitted} more fields"
        return INVALID_INPUT, line, exc.to_dict()
    if isinstance(exc, NotFound):
        return NOT_FOUND, f"not found: {exc}", exc.to_dict()
    if isinstance(exc, Conflict):
        line = f"refused by rule {exc.rule}: {exc.reason}"
        # each rule the refusal lists, with its reason ("proposal.amount_above_maximum: 250000.00 is above...")
        extra = [
            ": ".join(str(p) for p in (d.get("rule"), d.get("message")) if p)
            for d in exc.details
            if isinstance(d, dict) and d.get("rule") not in (None, exc.rule)
        ]
        if extra:
            line += f" ({'; '.join(dict.fromkeys(x for x in extra if x))})"
        return CONFLICT, line, exc.to_dict()
    if isinstance(exc, TooManyRefusals):
        return NOT_ALLOWED, f"not allowed: {exc}", {**exc.to_dict(), "retry_after": exc.retry_after}
    if isinstance(exc, NotAllowed):
        return NOT_ALLOWED, f"not allowed: {exc}", exc.to_dict()
    if isinstance(exc, SetupProblem):
        return SETUP_PROBLEM, f"set-up problem: {exc}", exc.to_dict()
    if isinstance(exc, UsageProblem):
        return INVALID_INPUT, str(exc), {"code": "usage", "message": str(exc)}
    if isinstance(exc, UnknownOperation):
        msg = f"the gateway offers no such operation: {exc.path} (is this jmdi older or newer than the system?)"
        return SYSTEM_FAILURE, msg, {"code": exc.code, "message": msg}
    if isinstance(exc, GatewayUnreachable):
        return SYSTEM_FAILURE, str(exc), exc.to_dict()
    if isinstance(exc, (ServiceUnavailable, NoAnswer)):
        msg = str(exc) + (" (JMDI_TIMEOUT sets how long jmdi waits)" if isinstance(exc, NoAnswer) else "")
        return SYSTEM_FAILURE, msg, {**exc.to_dict(), "message": msg}
    if isinstance(exc, SystemFailure):
        msg = f"internal error in the system (HTTP {exc.status}" + (
            f"; correlation id {exc.correlation_id}: the operators find it in the logs)" if exc.correlation_id else ")"
        )
        return SYSTEM_FAILURE, msg, {**exc.to_dict(), "message": msg}
    msg = f"unexpected failure ({type(exc).__name__}): {exc}"
    return SYSTEM_FAILURE, msg, {"code": "internal_error", "message": msg}


def _join(messages) -> str:
    if isinstance(messages, (list, tuple)):
        return ", ".join(_join(m) for m in messages)
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_join(v)}" for k, v in messages.items())
    return str(messages)
