"""Metrics of the notifications service (served on the kit's /metrics; the alert NotificationFailures reads them)."""

from prometheus_client import Counter

# outcome: sent | retried (a temporary failure, tried again later) | failed (given up: notification_failed)
EMAILS = Counter("jmdi_emails", "E-mails by template and outcome", ["template", "outcome"])
