"""One typed error family for every RPC.

Callers tell "your input is wrong" (InvalidInput), "no such thing" (NotFound), "a rule refused it" (Conflict)
and "you may not" (NotAllowed) apart from "the installation is incomplete" (SetupProblem: a file or setting the
operators must provide) and an internal failure, which nameko delivers as RemoteError.
Each class is registered with nameko so the client re-raises the same type with the same arguments;
arguments are therefore plain JSON values passed positionally.
"""

from nameko.exceptions import deserialize_to_instance


class JmdiError(Exception):
    """Base of every error a caller is expected to handle; `code` is stable for scripts and exit codes."""

    code = "error"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": str(self)}


@deserialize_to_instance
class InvalidInput(JmdiError):
    """The request does not validate; `errors` maps each field (nested for nested fields) to its messages: the
    first MAX_REPORTED_ERRORS fields only, `omitted` counts the rest (a body of 60,000 unknown keys is one small
    answer, not megabytes)."""

    code = "invalid_input"

    def __init__(self, errors: dict, message: str | None = None, omitted: int = 0):
        errors, more = cap_errors(errors)
        self.errors = errors
        self.omitted = int(omitted) + more
        self.message = message or "invalid input: " + "; ".join(
            f"{field}: {', '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for field, msgs in _flatten(errors).items()
        ) + (f"; and {self.omitted} more fields" if self.omitted else "")
        super().__init__(errors, self.message, self.omitted)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": self.errors, "omitted": self.omitted}


MAX_REPORTED_ERRORS = 50


def cap_errors(errors, limit: int = MAX_REPORTED_ERRORS) -> tuple:
    """(the first `limit` fields' errors, nested as given; how many more fields had errors)."""
    if not isinstance(errors, dict):
        return errors, 0
    kept, omitted = 0, 0

    def walk(found: dict) -> dict:
        nonlocal kept, omitted
        out = {}
        for key, value in found.items():
            if isinstance(value, dict):
                inner = walk(value)
                if inner:
                    out[key] = inner
            elif kept < limit:
                out[key] = value
                kept += 1
            else:
                omitted += 1
        return out

    return walk(errors), omitted


@deserialize_to_instance
class NotFound(JmdiError):
    code = "not_found"

    def __init__(self, entity: str, key):
        self.entity, self.key = entity, key
        super().__init__(entity, key)

    def __str__(self) -> str:
        return f"{self.entity} {self.key!r} not found"


@deserialize_to_instance
class Conflict(JmdiError):
    """A rule of the programme refused the operation; `rule` names it, `details` lists every violation."""

    code = "conflict"

    def __init__(self, rule: str, reason: str, details: list | None = None):
        self.rule, self.reason, self.details = rule, reason, details or []
        super().__init__(rule, reason, self.details)

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason}"

    def to_dict(self) -> dict:
        return {"code": self.code, "rule": self.rule, "message": self.reason, "details": self.details}


@deserialize_to_instance
class NotAllowed(JmdiError):
    code = "not_allowed"

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)

    def __str__(self) -> str:
        return self.reason


@deserialize_to_instance
class SetupProblem(JmdiError):
    """The service is not set up to do this (a standards file or a setting is missing): nothing the caller did
    wrong and no programme rule, but something operators fix. Not in EXPECTED_ERRORS: it is logged and counted
    as a failure of the service."""

    code = "setup_problem"

    def __init__(self, what: str, remedy: str = ""):
        self.what, self.remedy = what, remedy
        super().__init__(what, remedy)

    def __str__(self) -> str:
        return f"{self.what}; {self.remedy}" if self.remedy else self.what

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.what, "remedy": self.remedy}


EXPECTED_ERRORS = (InvalidInput, NotFound, Conflict, NotAllowed)


def _flatten(errors, prefix: str = "") -> dict:
    """Marshmallow nests errors by field; flatten to dotted paths for one-line messages."""
    flat = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(_flatten(value, path))
            else:
                flat[path] = value
    else:
        flat[prefix or "_schema"] = errors
    return flat
