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
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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


def configure_logging(service: str, fmt: str = "text", level: str = "INFO"):
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(ExpectedErrorsWithoutTraceback())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service:<13} %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("amqp", "kombu", "nameko.containers", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
