"""Configuration: each service's config.yml with nameko's ${ENV:default} placeholders, and the list of settings.

SETTINGS is the one place that lists every environment variable the system reads; README's configuration
table mirrors it (a test keeps them in step).
"""
import os
import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO_ROOT / "services"

# (name, default, meaning)
SETTINGS = [
    ("AMQP_URI", "amqp://guest:guest@localhost:5672/", "RabbitMQ broker (vhost in the path)"),
    ("CALLS_DATABASE_URL", "sqlite:///var/calls.db", "calls service database (SQLAlchemy URL)"),
    ("GRANTS_DATABASE_URL", "sqlite:///var/grants.db", "grants service database"),
    ("NOTIFICATIONS_DATABASE_URL", "sqlite:///var/notifications.db", "notifications service database"),
    ("REPORTING_DATABASE_URL", "sqlite:///var/reporting.db", "reporting service database"),
    ("CALLS_METRICS_PORT", "8001", "port of the calls service's /metrics"),
    ("GRANTS_METRICS_PORT", "8002", "port of the grants service's /metrics"),
    ("NOTIFICATIONS_METRICS_PORT", "8003", "port of the notifications service's /metrics"),
    ("REPORTING_METRICS_PORT", "8004", "port of the reporting service's /metrics"),
    ("METRICS_HOST", "0.0.0.0", "address the /metrics servers listen on"),
    ("MAX_WORKERS", "10", "concurrent workers per service process"),
    ("JMDI_SECRET", "", "secret that signs staff tokens (JWT HS256); unset: development secret under var/"),
    ("DECLARE_TOPOLOGY", "true", "declare every consumer queue at start-up (false when broker definitions do)"),
    ("EVENT_RETRY_ATTEMPTS", "5", "attempts of a failing event handler before the message is dead-lettered"),
    ("EVENT_RETRY_BACKOFF", "0.2", "first retry delay in seconds, doubled each attempt"),
    ("OUTBOX_SWEEP_SECONDS", "2", "interval of the outbox safety-net sweep"),
    ("LOG_FORMAT", "text", "text or json"),
    ("LOG_LEVEL", "INFO", "log level"),
    ("SMTP_HOST", "", "SMTP server; unset: messages are written as .eml files under var/mail"),
    ("SMTP_PORT", "25", "SMTP port"),
    ("SMTP_USER", "", "SMTP user"),
    ("SMTP_PASSWORD", "", "SMTP password"),
    ("SMTP_STARTTLS", "false", "use STARTTLS"),
    ("SMTP_FROM", "JMDI Programme <jmdi@undp.org>", "sender address"),
    ("MAIL_FOLDER", "var/mail", "where .eml files go without SMTP_HOST"),
    ("EC_REPORT_RECIPIENTS", "", "comma-separated EC contacts who receive generated reports"),
    ("STANDARDS_DIR", "../shared/standards", "folder with the IATI schema and codelists"),
    ("EVENT_QUEUE_TYPE", "classic", "classic, or quorum on a RabbitMQ cluster (must match the broker definitions)"),
    ("SMTP_TIMEOUT", "30", "seconds before an SMTP conversation is given up (and retried)"),
    ("NOTIFICATIONS_TEMPLATE_DIR", "", "folder of e-mail templates staff edit; unset: the shipped templates"),
    ("FINANCE_APPROVER_EMAILS", "", "comma-separated finance approvers told of payment requests"),
    ("NOTIFICATIONS_STAFF_LANGUAGE", "en", "language of messages to staff"),
    ("REPORT_REMINDER_DAYS", "30,7", "days before a report's due date when reminders go (and on the day)"),
    ("REPORT_RESUBMIT_DAYS", "30", "days a returned report may be resubmitted in"),
    ("NOTIFICATION_MAX_ATTEMPTS", "8", "delivery attempts before a message is marked failed"),
    ("NOTIFICATION_RETRY_SECONDS", "60", "first delivery retry delay, doubled each attempt"),
    ("NOTIFICATION_RETRY_MAX_SECONDS", "3600", "longest delay between delivery attempts"),
    ("REPORTING_RPC_TIMEOUT_SECONDS", "30", "how long notifications waits for a report file from reporting"),
    ("NOTIFICATIONS_DELIVERY_SECONDS", "2", "interval of the delivery loop"),
    ("REPORT_REMINDER_INTERVAL_SECONDS", "3600", "interval of the report-due reminder timer"),
    ("CALLS_DEADLINE_SWEEP_SECONDS", "30", "interval of the timer that closes calls at their deadline"),
    ("REPORT_SCHEDULE_SECONDS", "3600", "interval of the timer producing the monthly and quarterly EC reports"),
    ("RECONCILE_SCHEDULE_SECONDS", "3600", "interval of the automatic reconciliation with the grants ledger"),
]

_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


def _substitute(value: str, env) -> str:
    return _PLACEHOLDER.sub(lambda m: env.get(m.group("name"), m.group("default") or ""), value)


def _expand(node, env):
    if isinstance(node, dict):
        return {key: _expand(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand(value, env) for value in node]
    if isinstance(node, str) and "${" in node:
        expanded = _substitute(node, env)
        # a whole-value placeholder takes the YAML type of what it expands to ("10" -> 10, "true" -> True)
        return yaml.safe_load(expanded) if _PLACEHOLDER.fullmatch(node) and expanded != "" else expanded
    return node


def load_config(service: str, env=None, path: Path | None = None) -> dict:
    """The nameko config of a service, placeholders resolved from the environment (relative paths from the repo)."""
    env = os.environ if env is None else env
    path = path or SERVICES_DIR / service / "config.yml"
    with open(path) as fh:
        config = _expand(yaml.safe_load(fh), env)
    config["SERVICE_NAME"] = service
    config["DATABASE_URL"] = absolute_sqlite_url(config["DATABASE_URL"])
    return config


def absolute_sqlite_url(url: str) -> str:
    """`sqlite:///var/x.db` is relative to the repository, wherever the process was started from."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        path = REPO_ROOT / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


def as_bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
