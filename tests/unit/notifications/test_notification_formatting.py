"""Exact strings: French uses U+202F (narrow no-break space) to group thousands and U+00A0 before '€'."""

import datetime as dt
from decimal import Decimal

import pytest

from services.common.values.money import MoneyError
from services.notifications.formatting import (
    format_date,
    format_datetime,
    format_money,
    format_number,
    normalize_lang,
)

NNBSP, NBSP = "\u202f", "\u00a0"


@pytest.mark.parametrize(
    "amount, fr, en",
    [
        (Decimal("1234567.89"), f"1{NNBSP}234{NNBSP}567,89{NBSP}€", "EUR 1,234,567.89"),
        (Decimal("150000"), f"150{NNBSP}000,00{NBSP}€", "EUR 150,000.00"),
        ("200000.00", f"200{NNBSP}000,00{NBSP}€", "EUR 200,000.00"),
        (50000, f"50{NNBSP}000,00{NBSP}€", "EUR 50,000.00"),
        (Decimal("0.5"), f"0,50{NBSP}€", "EUR 0.50"),
        (Decimal("999.99"), f"999,99{NBSP}€", "EUR 999.99"),
        (Decimal("-4210.55"), f"-4{NNBSP}210,55{NBSP}€", "-EUR 4,210.55"),
    ],
)
def test_money_exact_strings(amount, fr, en):
    assert format_money(amount, "fr") == fr
    assert format_money(amount, "en") == en


def test_english_money_uses_a_plain_ascii_space():
    assert format_money(Decimal("1234567.89"), "en").encode("ascii") == b"EUR 1,234,567.89"


@pytest.mark.parametrize("lang", ["fr", "FR", "fr-BE", "fr_FR", " fr "])
def test_french_variants(lang):
    assert format_money(Decimal("1234.50"), lang) == f"1{NNBSP}234,50{NBSP}€"
    assert format_date(dt.date(2009, 1, 15), lang) == "15 janvier 2009"


@pytest.mark.parametrize("lang", [None, "", "en", "en-US", "EN_gb", "zz", "123"])
def test_english_and_unknown_languages_format_as_english(lang):
    assert format_money(Decimal("1234567.89"), lang) == "EUR 1,234,567.89"
    assert format_date(dt.date(2009, 1, 15), lang) == "15 January 2009"


def test_money_refuses_floats_and_sub_cent_amounts():
    with pytest.raises(MoneyError):
        format_money(1234.5, "en")
    with pytest.raises(MoneyError):
        format_money("10.001", "fr")


@pytest.mark.parametrize(
    "value, fr, en",
    [
        (dt.date(2009, 1, 15), "15 janvier 2009", "15 January 2009"),
        (dt.date(2009, 12, 1), "1er décembre 2009", "1 December 2009"),
        (dt.date(2010, 2, 28), "28 février 2010", "28 February 2010"),
        (dt.date(2011, 8, 3), "3 août 2011", "3 August 2011"),
        ("2009-01-15", "15 janvier 2009", "15 January 2009"),
        (dt.datetime(2009, 1, 15, 23, 59), "15 janvier 2009", "15 January 2009"),
    ],
)
def test_long_dates(value, fr, en):
    assert format_date(value, "fr") == fr
    assert format_date(value, "en") == en


def test_aware_datetimes_are_dated_in_utc():
    brussels_evening = dt.datetime(2009, 1, 16, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert format_date(brussels_evening, "en") == "15 January 2009"
    assert format_date("2009-01-16T00:30:00+01:00", "fr") == "15 janvier 2009"


def test_datetimes():
    moment = dt.datetime(2009, 1, 15, 14, 30, tzinfo=dt.timezone.utc)
    assert format_datetime(moment, "fr") == "15 janvier 2009 à 14:30 UTC"
    assert format_datetime(moment, "en") == "15 January 2009 at 14:30 UTC"
    assert format_datetime("2009-01-15T14:30:00Z", "en") == "15 January 2009 at 14:30 UTC"
    assert format_datetime(dt.date(2009, 1, 1), "fr") == "1er janvier 2009"


def test_bad_dates_fail_loudly():
    with pytest.raises(ValueError):
        format_date("15/01/2009", "en")
    with pytest.raises(TypeError):
        format_date(20090115, "en")


def test_numbers():
    assert format_number(Decimal("38.5"), "fr") == "38,5"
    assert format_number(Decimal("38.5"), "en") == "38.5"
    assert format_number(1234, "fr") == f"1{NNBSP}234"
    assert format_number(1234, "en") == "1,234"
    with pytest.raises(TypeError):
        format_number(38.5, "en")


def test_normalize_lang():
    assert normalize_lang("fr-BE") == "fr"
    assert normalize_lang("EN_gb") == "en"
    assert normalize_lang(None) == "en"
    assert normalize_lang("x") == "en"
