"""Logging set-up: plain text for a terminal, JSON lines for collectors, with the nameko call-id stack."""

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation = _correlation_id()
        if correlation:
            entry["correlation_id"] = correlation
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _correlation_id():
    """The call-id stack of the nameko worker running in this greenthread, if any."""
    try:
        import eventlet

        worker_ctx = getattr(eventlet.getcurrent(), "jmdi_worker_ctx", None)
    except Exception:
        return None
    if worker_ctx is None or not worker_ctx.call_id_stack:
        return None
    return "/".join(worker_ctx.call_id_stack)


class ExpectedErrorsWithoutTraceback(logging.Filter):
    """A refused request (bad input, a rule) is the caller's business: one line, not a traceback."""

    def filter(self, record):
        if record.exc_info and str(record.msg).startswith("(expected)"):
            record.exc_info = None
            record.exc_text = None
        return True


class PersonalDataRedaction(logging.Filter):
    """No e-mail address or IBAN reaches the logs in clear, whoever wrote the message or the exception behind a
    traceback (services/common/security/privacy.py masks them as a reader without the role sees them)."""

    def filter(self, record):
        from ..security.privacy import redact_text

        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it itself
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        # a traceback quotes exception messages and local values: formatted once here, masked, and kept in
        # exc_text, which every formatter prints instead of formatting exc_info again
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def configure_logging(service: str, fmt: str = "text", level: str = "INFO"):
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(ExpectedErrorsWithoutTraceback())
    handler.addFilter(PersonalDataRedaction())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service:<13} %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("amqp", "kombu", "nameko.containers", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
