"""Turn a message kind, a language and a context into a ready-to-send e-mail.

The texts live in Jinja2 files that programme staff may edit without touching code::

    <template_dir>/<lang>/<kind>.subject.txt   one line (surrounding whitespace is stripped)
    <template_dir>/<lang>/<kind>.body.txt      the plain-text body (always sent)
    <template_dir>/<lang>/<kind>.body.html     optional: sent as an HTML alternative, autoescaped

``template_dir`` is configuration: pass it explicitly, or set NOTIFICATIONS_TEMPLATE_DIR (see
``template_dir_from_mapping``); the default is the folder shipped next to this module. Shared pieces
(greeting, signature) are ordinary includes, e.g. ``{% include "fr/_signature.txt" %}``.

Rules every template obeys:
- StrictUndefined: a variable the caller did not pass fails loudly (``MissingVariable``) instead of printing
  an empty string; optional variables are tested with ``{% if x is defined %}``.
- Filters: ``money`` (EUR, Decimal/int/decimal string), ``date`` (long date), ``datetime`` (long date + UTC
  time), ``number`` (scores) — all in the language of the template being rendered (see formatting.py).
- Sandboxed environment: an edited template cannot reach Python internals.
- ``lang`` is set by the renderer (the language actually used, after fallback) and must not be passed.

A language with no template for the kind falls back to English (``FALLBACK_LANG``).
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import default as default_policy
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from . import formatting

DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_DIR_ENV = "NOTIFICATIONS_TEMPLATE_DIR"
FALLBACK_LANG = "en"
MESSAGE_ID_DOMAIN = "jmdi.local"


class _CachedHeaderRegistry(HeaderRegistry):
    """The email package's registry, but each header class is built once: the stock one calls type() for every
    header set or read, about a tenth of building a message. The classes (and so the headers) are the same."""

    def __init__(self):
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name):
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


# Headers are folded only past RFC 5322's hard limit: CPython's folder, breaking a subject at 78 characters
# before an encoded word ("tranche 1 (96 000,00 €)"), keeps the space at the end of the line and the reader
# sees two ("tranche 1  (96...").
MESSAGE_POLICY = default_policy.clone(max_line_length=998, header_factory=_CachedHeaderRegistry())

KINDS = (
    "submission_receipt",
    "screening_result",
    "evaluation_result",
    "award",
    "rejection",
    "contract_signed",
    "tranche_paid",
    "payment_requested",
    "payment_cancelled",
    "report_due",
    "report_accepted",
    "report_returned",
    "grant_amended",
    "grant_terminated",
    "grant_closed",
    "ec_report",
)

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAX_KEY = 100
_ASCII_SPACE = re.compile(r"[ \t\r\n\f\v]+")


class TemplateError(Exception):
    """A template could not be found or rendered (bad kind, syntax error in an edited file...)."""


class UnknownKind(TemplateError):
    pass


class MissingVariable(TemplateError):
    """The context lacks a variable the template uses; the message names it (Jinja's own text)."""


def template_dir_from_mapping(config) -> Path:
    """NOTIFICATIONS_TEMPLATE_DIR from a mapping such as os.environ or the nameko config; default: shipped."""
    value = (config or {}).get(TEMPLATE_DIR_ENV)
    return Path(value) if value else DEFAULT_TEMPLATE_DIR


def _filter(fn):
    @jinja2.pass_context
    def apply(ctx, value):
        if isinstance(value, jinja2.Undefined):
            str(value)  # StrictUndefined raises UndefinedError naming the missing variable
        return fn(value, ctx.get("lang", FALLBACK_LANG))

    return apply


class TemplateLibrary:
    """The message templates of one directory; cheap to keep for the life of the process."""

    def __init__(self, template_dir=None):
        self.template_dir = Path(template_dir) if template_dir else DEFAULT_TEMPLATE_DIR
        if not self.template_dir.is_dir():
            raise TemplateError(f"template directory not found: {self.template_dir}")
        loader = jinja2.FileSystemLoader(str(self.template_dir), encoding="utf-8")
        self.text_env = self._environment(loader, autoescape=False)
        self.html_env = self._environment(loader, autoescape=True)

    @staticmethod
    def _environment(loader, autoescape: bool) -> SandboxedEnvironment:
        env = SandboxedEnvironment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=autoescape,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=True,  # staff edits are picked up without a restart
        )
        env.filters["money"] = _filter(formatting.format_money)
        env.filters["date"] = _filter(formatting.format_date)
        env.filters["datetime"] = _filter(formatting.format_datetime)
        env.filters["number"] = _filter(formatting.format_number)
        return env

    def has(self, kind: str, lang: str) -> bool:
        return (self.template_dir / lang / f"{kind}.subject.txt").is_file() and (
            self.template_dir / lang / f"{kind}.body.txt"
        ).is_file()

    def resolve_lang(self, kind: str, lang) -> str:
        """The language that will be used for `kind`: the requested one if its templates exist, else English."""
        if kind not in KINDS:
            raise UnknownKind(f"unknown message kind {kind!r}; known kinds: {', '.join(KINDS)}")
        code = formatting.normalize_lang(lang)
        if self.has(kind, code):
            return code
        if self.has(kind, FALLBACK_LANG):
            return FALLBACK_LANG
        raise TemplateError(f"no template for {kind!r} in {self.template_dir} (neither {code!r} nor English)")

    def _render(self, env, name: str, variables: dict) -> str:
        try:
            return env.get_template(name).render(variables)
        except jinja2.UndefinedError as exc:
            raise MissingVariable(f"{name}: {exc}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{name}: {exc}") from exc

    def render(self, kind: str, lang, context: dict) -> tuple[str, str]:
        subject, body, _html = self.render_all(kind, lang, context)
        return subject, body

    def render_all(self, kind: str, lang, context: dict) -> tuple[str, str, str | None]:
        """(subject, text body, html body or None)."""
        code = self.resolve_lang(kind, lang)
        if "lang" in context:
            raise TemplateError("'lang' is reserved: pass the language as the lang argument")
        variables = dict(context, lang=code)
        subject = self._render(self.text_env, f"{code}/{kind}.subject.txt", variables)
        subject = _ASCII_SPACE.sub(" ", subject).strip()  # one line; keep Babel's no-break spaces
        if not subject:
            raise TemplateError(f"{code}/{kind}.subject.txt rendered an empty subject")
        body = self._render(self.text_env, f"{code}/{kind}.body.txt", variables)
        body = body.strip("\n") + "\n"
        html = None
        if (self.template_dir / code / f"{kind}.body.html").is_file():
            html = self._render(self.html_env, f"{code}/{kind}.body.html", variables)
        return subject, body, html


@lru_cache(maxsize=8)
def _library(template_dir: str) -> TemplateLibrary:
    return TemplateLibrary(template_dir)


def library(template_dir=None) -> TemplateLibrary:
    return _library(str(Path(template_dir).resolve() if template_dir else DEFAULT_TEMPLATE_DIR))


def render(kind: str, lang, context: dict, template_dir=None) -> tuple[str, str]:
    """(subject, plain-text body) of `kind` in `lang` (English if unknown) — raises MissingVariable, UnknownKind."""
    return library(template_dir).render(kind, lang, context)


def message_key(key: str) -> str:
    """An idempotency key made safe for a Message-ID left part and a file name, deterministically.

    Keys of letters, digits, '.', '_' and '-' (up to 100 characters) are kept as they are; anything else
    (':' from "event_id:kind", '@', spaces...) is replaced by '-' and a short hash of the original key is
    appended, so two different keys never collapse into the same id.
    """
    key = str(key)
    if not key:
        raise ValueError("empty idempotency key")
    if _SAFE_KEY.match(key) and len(key) <= _MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip(".-")[: _MAX_KEY - 13]
    return f"{cleaned}.{digest}" if cleaned else digest


def message_id_for(key: str, domain: str = MESSAGE_ID_DOMAIN) -> str:
    """Stable Message-ID for an idempotency key: the same key always gives the same id, '<key@jmdi.local>'."""
    return f"<{message_key(key)}@{domain}>"


def key_of_message_id(message_id: str) -> str:
    """'<abc.123@jmdi.local>' -> 'abc.123' (made file-name safe)."""
    left = message_id.strip().strip("<>").rsplit("@", 1)[0]
    return message_key(left)


def _recipients(to) -> str:
    if isinstance(to, str):
        addresses = [a.strip() for a in to.split(",")]
    else:
        addresses = [str(a).strip() for a in to]
    addresses = [a for a in addresses if a]
    if not addresses:
        raise ValueError("no recipient")
    for address in addresses:
        if "\n" in address or "\r" in address or "@" not in email.utils.parseaddr(address)[1]:
            raise ValueError(f"not an e-mail address: {address!r}")
    return ", ".join(addresses)


def build_message(
    kind: str,
    lang,
    context: dict,
    to,
    sender: str,
    attachments=(),
    message_id: str | None = None,
    template_dir=None,
) -> EmailMessage:
    """A complete e-mail: From, To, Subject, Date, Message-ID, plain text (+ HTML if a template exists), files.

    to: one address, a comma-separated string or a list ("Name <a@b.org>" forms allowed).
    attachments: iterable of (filename, bytes, mimetype) e.g. ("jmdi-2009Q4.xlsx", data,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet").
    message_id: an idempotency key (e.g. "<event_id>.<kind>.<recipient id>") -> "<key@jmdi.local>", or a
        complete "<...@...>" id used verbatim. The same key always yields the same Message-ID, so a duplicate
        sent after a retry is recognisable by the receiving side and by FolderTransport. None: a fresh id.
    """
    lib = library(template_dir)
    used_lang = lib.resolve_lang(kind, lang)
    subject, body, html = lib.render_all(kind, used_lang, context)

    msg = EmailMessage(policy=MESSAGE_POLICY)
    msg["From"] = sender
    msg["To"] = _recipients(to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    if message_id:
        message_id = message_id.strip()
        if message_id.startswith("<") and message_id.endswith(">") and "@" in message_id:
            msg["Message-ID"] = message_id
        else:
            msg["Message-ID"] = message_id_for(message_id)
    else:
        msg["Message-ID"] = email.utils.make_msgid(domain=MESSAGE_ID_DOMAIN)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer
    msg["X-JMDI-Kind"] = kind

    msg.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for attachment in attachments or ():
        filename, data, mimetype = attachment
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"attachment {filename!r}: content must be bytes")
        maintype, _, subtype = (mimetype or "application/octet-stream").partition("/")
        msg.add_attachment(bytes(data), maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    msg["Content-Language"] = used_lang  # after the body: set_content() resets Content-* headers
    return msg


def envelope_recipients(msg: EmailMessage) -> list[str]:
    """Bare addresses of To/Cc/Bcc, for the SMTP envelope."""
    fields = [v for name in ("To", "Cc", "Bcc") for v in msg.get_all(name, [])]
    return [addr for _name, addr in email.utils.getaddresses(fields) if addr]
