"""Shortcuts of the value helpers give exactly what the long way gives: a Decimal already at the cent is its own
money, and the submission's fingerprint text is that of its wire copy."""

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from uuid import uuid4

import pytest

from services.common.values.money import CENT, MoneyError, to_money
from services.common.values.wire import to_wire, wire_default

AMOUNTS = [
    "0.00",
    "-0.00",
    "0",
    "1.5",
    "1.50",
    "1.500",
    "1.505",
    "150000.00",
    "-3.20",
    "99999999999999.99",
    "999999999999999.99",
    "1E+2",
    "1.00E+2",
    "1E-2",
    "NaN",
    "Infinity",
    "-Infinity",
    "12.3400",
    "0E-7",
]


def long_way(value):
    """to_money without its shortcut, as it was written before."""
    if not value.is_finite():
        raise MoneyError("must be a finite amount")
    if value.adjusted() > 14:
        raise MoneyError("is out of range")
    if value.as_tuple().exponent < -2 and value != value.quantize(CENT):
        raise MoneyError("has more than two decimal places")
    return value.quantize(CENT)


@pytest.mark.parametrize("text", AMOUNTS)
def test_a_decimal_gives_the_money_the_long_way_gives(text):
    value = Decimal(text)
    try:
        expected = long_way(value)
    except (MoneyError, InvalidOperation) as exc:
        with pytest.raises(type(exc)):
            to_money(value)
        return
    got = to_money(value)
    assert (str(got), got.as_tuple()) == (str(expected), expected.as_tuple())


def test_the_fingerprint_text_is_that_of_the_wire_copy():
    value = {
        "b": [Decimal("1.50"), date(2010, 1, 2), (1, "x")],
        "a": {"when": datetime(2010, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2))), "id": uuid4()},
        "c": {"k": {Decimal("3")}, "n": None, "t": True, "f": 1.5},
    }
    assert json.dumps(value, sort_keys=True, default=wire_default) == json.dumps(to_wire(value), sort_keys=True)
    with pytest.raises(TypeError):
        json.dumps({"x": object()}, default=wire_default)
