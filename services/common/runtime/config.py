"""Configuration: each service's config.yml with nameko's ${ENV:default} placeholders, and the list of settings.

SETTINGS is the one place that lists every environment variable the system reads; README's configuration
table mirrors it (a test keeps them in step).
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
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
    ("GATEWAY_METRICS_PORT", "8005", "port of the gateway's /metrics"),
    ("GATEWAY_PORT", "8000", "port of the staff HTTP API (the gateway), the only port staff reach"),
    ("GATEWAY_HOST", "0.0.0.0", "address the staff HTTP API listens on"),
    ("GATEWAY_DATABASE_URL", "sqlite:///var/gateway.db", "gateway database (its audit of refused requests)"),
    ("GATEWAY_MAX_BODY_BYTES", "1048576", "largest request body the gateway reads (413 above)"),
    ("GATEWAY_MAX_BULK_BODY_BYTES", "16777216", "largest body of a bulk operation (the exclusion list)"),
    ("GATEWAY_REQUEST_TIMEOUT_SECONDS", "60", "how long the gateway waits for a service's answer (504 after)"),
    ("GATEWAY_LONG_REQUEST_TIMEOUT_SECONDS", "900", "the same for reports, exports and rebuilding projections"),
    ("GATEWAY_HEALTH_TIMEOUT_SECONDS", "4", "how long the gateway's health waits for each service"),
    ("GATEWAY_REFUSALS_PER_MINUTE", "30", "refused requests a client may make in a minute before it gets 429"),
    ("GATEWAY_REFUSAL_AUDITS_PER_MINUTE", "120", "refusals audited one by one per minute (the rest counted)"),
    ("GATEWAY_TRUSTED_PROXIES", "0", "reverse proxies in front of the gateway whose X-Forwarded-For it trusts"),
    ("GATEWAY_IDLE_TIMEOUT_SECONDS", "15", "closes a connection idle this long, or this long sending a request's head"),
    ("GATEWAY_REQUESTS_PER_CONNECTION", "1000", "requests a connection may carry before the gateway closes it"),
    ("GATEWAY_MAX_CONNECTIONS", "500", "connections the gateway serves at once; more wait in the listen backlog"),
    ("METRICS_HOST", "0.0.0.0", "address the /metrics servers listen on (`make run`: 127.0.0.1 unless set)"),
    ("SUPERVISOR_METRICS_PORT", "8006", "`make run`: port of the supervisor's /metrics (restarts of crashed services)"),
    (
        "MESSAGE_MAX_BYTES",
        "33554432",
        "largest message a service consumes; larger ones are dead-lettered unread (the broker's max_message_size)",
    ),
    (
        "REFUSAL_AUDITS_PER_MINUTE",
        "120",
        "refused calls a service audits one by one per minute (the rest counted in one row a minute)",
    ),
    (
        "JMDI_LOCAL_MODE",
        "false",
        "set by `make run` and the tests: accepts development secrets (guest, no "
        "database password, var/keys); outside it weak or default secrets stop a service",
    ),
    ("MAX_WORKERS", "10", "concurrent workers per service process"),
    (
        "JMDI_JWKS",
        "",
        "staff token issuer's public keys: a JWKS file or URL (Keycloak: "
        "<issuer>/protocol/openid-connect/certs); required outside `make run`",
    ),
    ("JMDI_ISSUER", "jmdi-local", "`iss` of staff tokens (Keycloak: https://<host>/realms/<realm>)"),
    ("JMDI_AUDIENCE", "jmdi", "`aud` staff tokens must carry (Keycloak: an audience mapper adds it)"),
    ("JMDI_ROLES_CLAIM", "realm_access.roles", "claim holding the staff roles (or resource_access.<client>.roles)"),
    ("JMDI_USER_CLAIM", "preferred_username", "claim naming the staff member (falls back to sub)"),
    ("JMDI_TOKEN_MAX_LIFETIME_SECONDS", "43200", "longest staff token lifetime (exp - iat) accepted"),
    ("JMDI_SERVICE_JWKS", "", "the services' public keys (JWKS file) for service-to-service calls"),
    ("JMDI_SERVICE_KEY", "", "this service's own private key (PEM), for services that call another service"),
    ("EVENT_PRODUCER_CHECK", "true", "apply an event only if published by its producer's broker user (AMQP user_id)"),
    ("EVENT_PRODUCER_USER_PREFIX", "", "prefix of the services' broker user names (calls -> <prefix>calls)"),
    ("DECLARE_TOPOLOGY", "true", "declare every consumer queue at start-up (false when broker definitions do)"),
    ("EVENT_RETRY_ATTEMPTS", "5", "attempts of a failing event handler before the message is dead-lettered"),
    ("EVENT_RETRY_BACKOFF", "0.2", "first retry delay in seconds, doubled each attempt"),
    ("OUTBOX_SWEEP_SECONDS", "2", "interval of the outbox safety-net sweep"),
    (
        "OUTBOX_DRAIN_GAP_SECONDS",
        "0.03",
        "least time from the end of an outbox drain to the next (a rush goes in batches)",
    ),
    ("LOG_FORMAT", "text", "text or json"),
    ("LOG_LEVEL", "INFO", "log level"),
    ("SMTP_HOST", "", "SMTP server; unset: messages are written as .eml files under var/mail"),
    ("SMTP_PORT", "25", "SMTP port"),
    ("SMTP_USER", "", "SMTP user"),
    ("SMTP_PASSWORD", "", "SMTP password"),
    ("SMTP_STARTTLS", "false", "use STARTTLS"),
    (
        "SMTP_ALLOW_PLAINTEXT_AUTH",
        "false",
        "let SMTP_USER log in without TLS (STARTTLS or port 465); never on a network others share",
    ),
    ("SMTP_FROM", "JMDI Programme <jmdi@undp.org>", "sender address"),
    ("MAIL_FOLDER", "var/mail", "where .eml files go without SMTP_HOST"),
    (
        "MAIL_TRANSPORT",
        "",
        "smtp | folder | sink; empty: smtp with SMTP_HOST, else folder; sink keeps nothing (the bench)",
    ),
    ("EC_REPORT_RECIPIENTS", "", "comma-separated EC contacts who receive generated reports"),
    (
        "STANDARDS_DIR",
        "services/reporting/standards",
        "folder with the IATI schema and codelists (relative to the repository; the default is the shipped copy)",
    ),
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
    ("ANALYSE_CHECK_SECONDS", "10", "reporting: how often it checks whether its fact tables need an ANALYZE"),
    (
        "JMDI_TEST_MODE",
        "false",
        "tests only: enables the crash points below (services/common/messaging/crashpoints.py)",
    ),
    ("JMDI_TEST_CRASH_AT", "", "tests only: crash points to fire, comma-separated (inert without JMDI_TEST_MODE)"),
    ("JMDI_TEST_CRASH_MARKERS", "", "tests only: folder where each fired point leaves a marker (fires once)"),
]

# Secrets, keys and URLs holding passwords are taken from the environment exactly as given, never through YAML:
# `s3cret #tail` would lose its tail (a YAML comment), `null`, `false` and `0` would become None, False and 0.
RAW_SETTINGS = frozenset(
    {
        "AMQP_URI",
        "CALLS_DATABASE_URL",
        "GRANTS_DATABASE_URL",
        "NOTIFICATIONS_DATABASE_URL",
        "REPORTING_DATABASE_URL",
        "GATEWAY_DATABASE_URL",
        "JMDI_JWKS",
        "JMDI_SERVICE_JWKS",
        "JMDI_SERVICE_KEY",
        "SMTP_USER",
        "SMTP_PASSWORD",
    }
)

_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


def _substitute(value: str, env) -> str:
    return _PLACEHOLDER.sub(lambda m: env.get(m.group("name"), m.group("default") or ""), value)


def _expand(node, env):
    if isinstance(node, dict):
        return {key: _expand(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand(value, env) for value in node]
    if isinstance(node, str) and "${" in node:
        whole = _PLACEHOLDER.fullmatch(node)
        if whole and whole.group("name") in RAW_SETTINGS:
            return env.get(whole.group("name"), whole.group("default") or "")
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


def service_class(service: str):
    """The nameko service class of services/<service>/service.py (the class named like the service)."""
    import importlib

    module = importlib.import_module(f"services.{service}.service")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == service and hasattr(value, "db"):
            return value
    raise SystemExit(f"services.{service}.service defines no service named {service!r}")


def absolute_sqlite_url(url: str) -> str:
    """`sqlite:///var/x.db` is relative to the repository, wherever the process was started from."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        path = REPO_ROOT / url[len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


def as_bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def redact(url: str) -> str:
    """The URL without its password; each URL of a kombu failover list (`amqp://a;amqp://b`, several nodes)."""
    if ";" in url:
        return ";".join(redact(part) for part in url.split(";"))
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
