"""Hand a built e-mail to an SMTP relay, or drop it in a folder when no relay is configured.

Configuration (environment names, read with ``SmtpSettings.from_mapping(os.environ)`` or from nameko config):

    SMTP_HOST       relay host; absent/empty -> FolderTransport (the embedded default)
    SMTP_PORT       default 25 (587 is usual with SMTP_STARTTLS)
    SMTP_USER       login, optional; SMTP_PASSWORD its password (never shown in repr/logs)
    SMTP_STARTTLS   1/true/yes/on to upgrade the connection with STARTTLS (certificate verified)
    SMTP_ALLOW_PLAINTEXT_AUTH   true lets SMTP_USER log in on a connection without TLS (refused otherwise: the
                    password would cross the network in clear)
    SMTP_FROM       the From address, default "JMDI Programme <noreply@jmdi.local>"
    SMTP_TIMEOUT    seconds for connect and each command, default 30
    NOTIFICATIONS_MAIL_DIR   folder of FolderTransport, default ./var/mail

Every failure is raised as one of two classes, so the caller knows what to do with it:

- ``TemporaryDeliveryError``: connection refused/reset, DNS failure, timeout, server closed the connection,
  any 4xx reply (451 try later, 421 shutting down, 452 mailbox full...), disk error in the folder. Retry later,
  waiting ``backoff_delays(...)`` between attempts.
- ``PermanentDeliveryError``: any 5xx reply (550 mailbox unavailable, 553 bad address, 535 authentication
  failed, 554 rejected), STARTTLS configured but not offered, certificate rejected. Retrying cannot help: record
  the failure (notification_failed) and tell a person.

Both carry ``code`` (SMTP reply code, None for network errors) and ``recipients`` (the refused addresses).
If the relay accepts the message for some recipients and refuses others, ``send`` does not raise (the message is
already on its way; resending would duplicate it): the refusals are in ``DeliveryResult.refused``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import smtplib
import socket
import ssl
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from services.common.values.retry import backoff_delays as backoff_delays  # the kit's one retry policy

from .messages import envelope_recipients, key_of_message_id

DEFAULT_SENDER = "JMDI Programme <noreply@jmdi.local>"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAIL_DIR = "var/mail"
TRANSPORTS = ("", "smtp", "folder", "sink")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class DeliveryError(Exception):
    """The message was not handed over. `code`: SMTP reply code or None; `recipients`: refused addresses."""

    temporary: bool = False

    def __init__(self, message: str, code: int | None = None, recipients=()):
        super().__init__(message)
        self.code = code
        self.recipients = list(recipients)


class TemporaryDeliveryError(DeliveryError):
    """Try again later (connection refused, timeout, 4xx)."""

    temporary = True


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (5xx, configuration refused by the relay)."""


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    message_id: str
    transport: str  # "smtp", "folder" or "sink"
    refused: dict = dataclasses.field(default_factory=dict)  # address -> (code, text) when partly refused
    path: Path | None = None  # FolderTransport: the .eml written (or found, for a duplicate)
    duplicate: bool = False  # FolderTransport: a message with the same Message-ID key was already there


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be one of 1/0, true/false, yes/no, on/off, not {value!r}")


@dataclasses.dataclass(frozen=True)
class SmtpSettings:
    host: str | None = None
    port: int = 25
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    starttls: bool = False
    sender: str = DEFAULT_SENDER
    timeout: float = DEFAULT_TIMEOUT
    mail_dir: str = DEFAULT_MAIL_DIR
    allow_plaintext_auth: bool = False
    transport: str = ""  # MAIL_TRANSPORT: "" (smtp with a host, else folder), "smtp", "folder" or "sink"

    @property
    def plaintext_login(self) -> bool:
        """A login would send the password without TLS."""
        return bool(self.user) and not self.starttls

    @classmethod
    def from_mapping(cls, env) -> "SmtpSettings":
        """From SMTP_* names in a mapping (os.environ, nameko config); invalid values raise ValueError."""
        env = env or {}
        port_text = str(env.get("SMTP_PORT") or "25").strip()
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"SMTP_PORT must be a TCP port number, not {port_text!r}")
        timeout = float(env.get("SMTP_TIMEOUT") or DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise ValueError("SMTP_TIMEOUT must be positive")
        transport = str(env.get("MAIL_TRANSPORT") or "").strip().lower()
        if transport not in TRANSPORTS:
            raise ValueError(
                f"MAIL_TRANSPORT must be one of {', '.join(t for t in TRANSPORTS if t)} (or empty), not {transport!r}"
            )
        settings = cls(
            host=(env.get("SMTP_HOST") or "").strip() or None,
            port=int(port_text),
            user=(env.get("SMTP_USER") or "").strip() or None,
            password=env.get("SMTP_PASSWORD") or None,
            starttls=_bool("SMTP_STARTTLS", env.get("SMTP_STARTTLS")),
            sender=(env.get("SMTP_FROM") or "").strip() or DEFAULT_SENDER,
            timeout=timeout,
            mail_dir=(env.get("NOTIFICATIONS_MAIL_DIR") or "").strip() or DEFAULT_MAIL_DIR,
            allow_plaintext_auth=_bool("SMTP_ALLOW_PLAINTEXT_AUTH", env.get("SMTP_ALLOW_PLAINTEXT_AUTH")),
            transport=transport,
        )
        if settings.host and settings.plaintext_login and not settings.allow_plaintext_auth:
            raise ValueError(
                "SMTP_USER is set but the connection to SMTP_HOST is not encrypted: set "
                "SMTP_STARTTLS=true, or SMTP_ALLOW_PLAINTEXT_AUTH=true if the relay is on a network "
                "nobody else can read"
            )
        return settings


def _by_code(text: str, code: int | None, recipients=()) -> DeliveryError:
    if code is not None and 500 <= code < 600:
        return PermanentDeliveryError(text, code, recipients)
    return TemporaryDeliveryError(text, code, recipients)


def _decode(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def classify_smtp_error(exc: BaseException) -> DeliveryError:
    """Map an smtplib/socket exception to TemporaryDeliveryError or PermanentDeliveryError."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients  # every recipient refused: {address: (code, reply)}
        codes = [code for code, _reply in refused.values()]
        text = "; ".join(f"{addr}: {code} {_decode(reply)}" for addr, (code, reply) in refused.items())
        # permanent only if no recipient got a temporary refusal (a retry could reach that one)
        code = max(codes) if codes and all(c >= 500 for c in codes) else min(codes, default=None)
        return _by_code(f"recipients refused: {text}", code, refused)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _by_code(f"sender {exc.sender} refused: {exc.smtp_code} {_decode(exc.smtp_error)}", exc.smtp_code)
    if isinstance(exc, smtplib.SMTPResponseException):  # data, helo, auth, connect errors with a reply code
        return _by_code(f"{type(exc).__name__}: {exc.smtp_code} {_decode(exc.smtp_error)}", exc.smtp_code)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"relay does not support a required extension: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"relay certificate rejected: {exc}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TemporaryDeliveryError(f"relay closed the connection: {exc}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TemporaryDeliveryError(f"timed out talking to the relay: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return TemporaryDeliveryError(f"connection refused: {exc}")
    if isinstance(exc, (OSError, smtplib.SMTPException)):
        return TemporaryDeliveryError(f"{type(exc).__name__}: {exc}")
    raise TypeError(f"not a delivery failure: {exc!r}")


class SmtpTransport:
    name = "smtp"

    def __init__(self, settings: SmtpSettings, ssl_context: ssl.SSLContext | None = None):
        if not settings.host:
            raise ValueError("SmtpTransport needs SMTP_HOST")
        self.settings = settings
        self.ssl_context = ssl_context  # None: ssl.create_default_context() (certificate and host checked)

    def send(self, msg: EmailMessage) -> DeliveryResult:
        """One SMTP session per message: connect, [STARTTLS], [login], MAIL/RCPT/DATA, QUIT."""
        s = self.settings
        recipients = envelope_recipients(msg)
        if not recipients:
            raise PermanentDeliveryError("message has no recipient")
        if msg["From"] is None:
            msg["From"] = s.sender
        if s.plaintext_login and not s.allow_plaintext_auth:
            raise PermanentDeliveryError(
                "SMTP login without TLS refused (SMTP_STARTTLS is off): the password would "
                "cross the network in clear; set SMTP_STARTTLS=true or "
                "SMTP_ALLOW_PLAINTEXT_AUTH=true"
            )
        smtp = None
        try:
            assert s.host is not None  # __init__ refused settings without a host
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            smtp.ehlo()
            if s.starttls:
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
            refused = smtp.send_message(msg, to_addrs=recipients)
        except Exception as exc:  # noqa: BLE001 - every failure is classified, nothing is swallowed
            raise classify_smtp_error(exc) from exc
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except Exception:  # the message is handed over (or not) already; QUIT is a courtesy
                    smtp.close()
        return DeliveryResult(
            message_id=str(msg["Message-ID"] or ""),
            transport=self.name,
            refused={addr: (code, _decode(reply)) for addr, (code, reply) in (refused or {}).items()},
        )


class FolderTransport:
    """Writes each message to `<folder>/<UTC timestamp>-<key>.eml`, atomically (temp file, fsync, rename).

    <key> comes from the Message-ID (the idempotency key when build_message got one). A message whose key is
    already in the folder is not written twice: the result says duplicate=True and points at the first file.
    Each key has a marker `<folder>/.keys/<key>` naming its file, claimed with O_EXCL before the message is
    written, so telling a duplicate costs one file lookup however many messages the folder holds, and two
    processes sharing the folder never both write a key. Messages written before the markers existed are
    indexed once, when the marker folder is created. Readers should ignore dot-files (temporary files in
    flight, the markers).
    """

    name = "folder"
    INDEX = ".keys"
    LOST_CLAIM_SECONDS = 30

    def __init__(self, path):
        self.path = Path(path)
        self.index = self.path / self.INDEX
        self._ready = False

    def _prepare(self):
        if self._ready and self.index.is_dir():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.index.is_dir():
            building = Path(tempfile.mkdtemp(prefix=".keys-building.", dir=self.path))
            for existing in sorted(self.path.glob("*.eml")):  # once: messages from before the markers
                stem = existing.name[: -len(".eml")]
                key = stem.split("-", 1)[1] if "-" in stem else stem
                marker = building / key
                if not marker.exists():
                    marker.write_text(existing.name)
            try:
                os.rename(building, self.index)
            except OSError:  # another process indexed the folder meanwhile
                shutil.rmtree(building, ignore_errors=True)
        self._ready = True

    def _claim(self, key: str, filename: str) -> Path | None:
        """Claim the key for `filename`: None when the claim is ours, else the file holding the key. A claim
        whose file is missing is another writer's in flight (it is written before the claim, renamed right
        after) unless it is older than LOST_CLAIM_SECONDS: then that writer died in between, and it is ours."""
        marker = self.index / key
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = self.path / (marker.read_text().strip() or filename)
            if holder.is_file() or time.time() - marker.stat().st_mtime < self.LOST_CLAIM_SECONDS:
                return holder
            marker.write_text(filename)
            return None
        with os.fdopen(fd, "w") as handle:
            handle.write(filename)
        return None

    def send(self, msg: EmailMessage) -> DeliveryResult:
        message_id = str(msg["Message-ID"] or "")
        if not message_id:
            raise PermanentDeliveryError("message has no Message-ID")
        key = key_of_message_id(message_id)
        try:
            self._prepare()
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            final = self.path / f"{stamp}-{key}.eml"
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.path)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(msg.as_bytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                existing = self._claim(key, final.name)
                if existing is None:
                    os.replace(tmp, final)
                else:
                    os.unlink(tmp)
                    return DeliveryResult(message_id, self.name, path=existing, duplicate=True)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
        except OSError as exc:
            raise TemporaryDeliveryError(f"cannot write {self.path}: {exc}") from exc
        return DeliveryResult(message_id, self.name, path=final)


class SinkTransport:
    """Accepts every message and keeps none: for measuring the services without a mail relay or a disk's fsyncs
    in the way (the bench). Never a production setting: nothing is delivered."""

    name = "sink"

    def send(self, msg: EmailMessage) -> DeliveryResult:
        return DeliveryResult(str(msg["Message-ID"] or ""), self.name)


def transport_from_settings(settings: SmtpSettings | None = None, env=None):
    """The transport MAIL_TRANSPORT names; when it is empty, SmtpTransport when SMTP_HOST is set and
    FolderTransport(mail_dir) otherwise.

    Pass settings, or env (a mapping; default os.environ) to read them from.
    """
    if settings is None:
        settings = SmtpSettings.from_mapping(os.environ if env is None else env)
    if settings.transport == "sink":
        return SinkTransport()
    if settings.transport == "smtp" or (settings.host and settings.transport != "folder"):
        return SmtpTransport(settings)
    return FolderTransport(settings.mail_dir)


def send_with_retries(transport, msg: EmailMessage, delays, sleep=time.sleep) -> DeliveryResult:
    """Send, retrying TemporaryDeliveryError after each delay in turn; PermanentDeliveryError is not retried.

    For scripts and tests: a long-running service should rather record the attempt and reschedule, so a
    worker is not held asleep (and the retry survives a restart). Safe to retry because the Message-ID is kept.
    """
    delays = list(delays)
    for attempt in range(len(delays) + 1):
        try:
            return transport.send(msg)
        except TemporaryDeliveryError:
            if attempt == len(delays):
                raise
            sleep(delays[attempt])
    raise AssertionError("unreachable")
