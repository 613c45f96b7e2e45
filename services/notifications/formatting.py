"""Money, numbers and dates written the way a reader of each language expects, through Babel.

Exact output (tests pin these strings, character for character):

- French money: ``format_money(Decimal("1234567.89"), "fr")`` == ``"1\\u202f234\\u202f567,89\\u00a0€"`` — Babel (CLDR)
  groups thousands with U+202F NARROW NO-BREAK SPACE and separates the amount from "€" with U+00A0 NO-BREAK
  SPACE. Both keep the amount on one line in any mail client.
- English money: ``"EUR 1,234,567.89"`` — ISO code, an ordinary ASCII space, comma grouping, dot for decimals
  (the form UNDP and EC finance documents use in English). Negative amounts: ``"-EUR 1,234,567.89"``.
- Long dates: ``"15 janvier 2009"`` / ``"15 January 2009"`` (British day-month order); the first day of a month
  is written ``"1er janvier 2009"`` in French, as French typography requires (Babel writes "1 janvier").
- Date-times: ``"15 janvier 2009 à 14:30 UTC"`` / ``"15 January 2009 at 14:30 UTC"``. Aware date-times are
  converted to UTC first (applicants are in 16 countries: UTC is the one unambiguous clock); naive ones are
  taken as UTC, which is what every event's ``occurred_at`` is.

Language codes are forgiving ("fr", "FR", "fr-BE", "fr_FR" are all French); an unknown or empty code formats
as English, like the message templates fall back to English.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_date
from babel.dates import format_time as _babel_time
from babel.numbers import format_currency, format_decimal

from services.common.values.money import to_money

DEFAULT_LANG = "en"
# Babel locale used for each language we write in; English dates follow British usage (15 January 2009).
_LOCALES = {"fr": "fr", "en": "en_GB"}
_EN_MONEY_PATTERN = "¤¤ #,##0.00"  # ¤¤ = ISO code; the space in the pattern is a plain ASCII space


def normalize_lang(lang) -> str:
    """'fr-BE' -> 'fr', 'EN_gb' -> 'en'; None, '' or garbage -> 'en'."""
    if not lang or not isinstance(lang, str):
        return DEFAULT_LANG
    code = lang.strip().replace("-", "_").split("_")[0].lower()
    return code if code.isalpha() and 2 <= len(code) <= 3 else DEFAULT_LANG


def _locale(lang) -> str:
    code = normalize_lang(lang)
    if code in _LOCALES:
        return _LOCALES[code]
    try:  # a language staff added templates for (e.g. "es") formats with its own CLDR conventions
        Locale.parse(code)
        return code
    except (UnknownLocaleError, ValueError):
        return _LOCALES[DEFAULT_LANG]


def format_money(amount, lang) -> str:
    """EUR amount (Decimal, int or decimal string such as "150000.00"; never a float) in the reader's language."""
    value = to_money(amount)
    locale = _locale(lang)
    if locale == _LOCALES["en"]:
        return format_currency(value, "EUR", format=_EN_MONEY_PATTERN, locale=locale, currency_digits=False)
    return format_currency(value, "EUR", locale=locale)


def format_number(value, lang) -> str:
    """A score or count: "34,5" / "34.5", "1 234" (with U+202F) / "1,234". Floats refused like for money."""
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError("format_number takes int, Decimal or a decimal string, not float/bool")
    return format_decimal(Decimal(str(value)), locale=_locale(lang))


def _as_date_or_datetime(value):
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date or date-time: {value!r}") from None
    if isinstance(value, (dt.date, dt.datetime)):
        return value
    raise TypeError(f"expected a date, datetime or ISO 8601 string, got {type(value).__name__}")


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def format_date(value, lang) -> str:
    """Long date: "15 janvier 2009" / "15 January 2009" ("1er janvier 2009" in French)."""
    value = _as_date_or_datetime(value)
    if isinstance(value, dt.datetime):
        value = _utc(value).date()
    locale = _locale(lang)
    text = _babel_date(value, "long", locale=locale)
    if normalize_lang(lang) == "fr" and value.day == 1 and text.startswith("1 "):
        text = "1er" + text[1:]
    return text


def format_datetime(value, lang) -> str:
    """Long date and 24-hour UTC time: "15 janvier 2009 à 14:30 UTC" / "15 January 2009 at 14:30 UTC"."""
    value = _as_date_or_datetime(value)
    if not isinstance(value, dt.datetime):
        return format_date(value, lang)
    value = _utc(value)
    joiner = {"fr": "à", "en": "at"}.get(normalize_lang(lang), "")
    time = _babel_time(value.time(), "HH:mm", locale=_locale(lang))
    return " ".join(part for part in (format_date(value.date(), lang), joiner, time, "UTC") if part)
