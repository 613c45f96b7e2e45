"""The notifications service's settings, read once at start-up from its nameko config (bad values fail there)."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from pathlib import Path

from services.common.contracts.events import LANGUAGES
from services.common.runtime.config import REPO_ROOT

from .delivery import SmtpSettings, transport_from_settings
from .formatting import normalize_lang
from .messages import TemplateLibrary, template_dir_from_mapping
from .domain.schedule import RetryPolicy, parse_reminder_days


@dataclass(frozen=True)
class StaffRecipient:
    name: str
    email: str


def parse_recipients(text, setting: str) -> tuple[StaffRecipient, ...]:
    """ "a@x.org, Jean Dupont <b@y.org>" -> recipients (the name defaults to the address)."""
    recipients, seen = [], set()
    for name, address in email.utils.getaddresses([str(text or "")]):
        if not address:
            continue
        if "@" not in address or any(c.isspace() for c in address):
            raise ValueError(f"{setting}: not an e-mail address: {address!r}")
        if address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(StaffRecipient(name or address, address))
    return tuple(recipients)


def _number(config, name: str, default, kind=float):
    value = config.get(name)
    try:
        return kind(default if value in (None, "") else value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def _language(value) -> str:
    language = normalize_lang(value)
    if language not in LANGUAGES:
        raise ValueError(f"NOTIFICATIONS_STAFF_LANGUAGE must be one of {', '.join(LANGUAGES)}, not {value!r}")
    return language


@dataclass(frozen=True)
class NotificationSettings:
    smtp: SmtpSettings
    template_dir: Path
    finance_approvers: tuple[StaffRecipient, ...]
    ec_report_recipients: tuple[StaffRecipient, ...]
    staff_language: str
    reminder_days: tuple[int, ...]
    retry: RetryPolicy
    rpc_timeout: float
    resubmit_days: int

    @classmethod
    def from_config(cls, config) -> "NotificationSettings":
        mail_folder = Path(str(config.get("MAIL_FOLDER") or "var/mail"))
        smtp = SmtpSettings.from_mapping(
            {
                "SMTP_HOST": config.get("SMTP_HOST"),
                "SMTP_PORT": config.get("SMTP_PORT"),
                "SMTP_USER": config.get("SMTP_USER"),
                "SMTP_PASSWORD": None if config.get("SMTP_PASSWORD") in (None, "") else str(config["SMTP_PASSWORD"]),
                "SMTP_STARTTLS": config.get("SMTP_STARTTLS"),
                "SMTP_FROM": config.get("SMTP_FROM"),
                "SMTP_ALLOW_PLAINTEXT_AUTH": config.get("SMTP_ALLOW_PLAINTEXT_AUTH"),
                "SMTP_TIMEOUT": config.get("SMTP_TIMEOUT"),
                "MAIL_TRANSPORT": config.get("MAIL_TRANSPORT"),
                # relative folders are relative to the repository, like the SQLite default
                "NOTIFICATIONS_MAIL_DIR": str(mail_folder if mail_folder.is_absolute() else REPO_ROOT / mail_folder),
            }
        )
        template_dir = template_dir_from_mapping(config)
        TemplateLibrary(template_dir)  # a missing template folder is a start-up error
        return cls(
            smtp=smtp,
            template_dir=template_dir,
            finance_approvers=parse_recipients(config.get("FINANCE_APPROVER_EMAILS"), "FINANCE_APPROVER_EMAILS"),
            ec_report_recipients=parse_recipients(config.get("EC_REPORT_RECIPIENTS"), "EC_REPORT_RECIPIENTS"),
            staff_language=_language(config.get("NOTIFICATIONS_STAFF_LANGUAGE") or "en"),
            reminder_days=parse_reminder_days(config.get("REPORT_REMINDER_DAYS", "30,7")),
            retry=RetryPolicy(
                max_attempts=_number(config, "NOTIFICATION_MAX_ATTEMPTS", 8, int),
                base_seconds=_number(config, "NOTIFICATION_RETRY_SECONDS", 60),
                cap_seconds=_number(config, "NOTIFICATION_RETRY_MAX_SECONDS", 3600),
            ),
            rpc_timeout=_number(config, "REPORTING_RPC_TIMEOUT_SECONDS", 30),
            resubmit_days=_number(config, "REPORT_RESUBMIT_DAYS", 30, int),
        )

    @property
    def delivery_seconds(self) -> float:
        """The longest one delivery can take (SMTP + RPC), with a margin."""
        return self.smtp.timeout + self.rpc_timeout + 5

    @property
    def claim_seconds(self) -> float:
        """How long a claimed notification stays reserved: twice what one delivery can take."""
        return 2 * self.delivery_seconds

    def transport(self):
        return transport_from_settings(self.smtp)
