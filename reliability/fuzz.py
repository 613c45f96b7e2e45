"""Hypothesis strategies for RPC inputs, derived from each operation's marshmallow schema: mostly well-formed
values (so calls get past validation and into the use cases, with ids that exist in the system), mixed with
junk of every JSON type and hand-picked nasties (huge strings, NUL, lone surrogates, NaN/Infinity, negative and
3-decimal money, unicode, nested junk)."""

from __future__ import annotations

from datetime import timezone

from hypothesis import strategies as st
from marshmallow import Schema, fields, validate

from services.common.values.fields import CountryCode, Money

NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\ufeff",
    "é" * 300,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🇲🇦 مرحبا بالعالم",
    "\u202egnp.exe",
    "'; DROP TABLE grants; --",
    "%s%s%n{0}",
    "../../etc/passwd",
    "x" * 70_000,
]
HUGE = "y" * 1_000_000
NASTY_NUMBERS = [
    float("nan"),
    float("inf"),
    float("-inf"),
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-0.01",
    "-1",
    "0.001",
    "100.005",
    "-150000.005",
    "12345678901234567890.12",
    2**64,
    -(2**63),
    1.5,
    True,
    "",
    " 12.00 ",
    "1_000.00",
    "١٢٣",
]
NASTY_NESTED = [
    None,
    [],
    {},
    [[[[[]]]]],
    {"a": {"b": {"c": [None, {"d": float("nan")}]}}},
    ["x"] * 500,
    {str(i): i for i in range(300)},
]
NASTIES = NASTY_TEXT + NASTY_NUMBERS + NASTY_NESTED

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)
NASTY = st.sampled_from(NASTIES)
COUNTRIES = ["MA", "SN", "GE", "ML", "TN", "PH", "BE", "NL", "FR", "XX", "ma", "EL"]


def _validators(field) -> list:
    found = field.validators if isinstance(field.validators, (list, tuple)) else [field.validators]
    return [v for v in found if v is not None]


def _length(field) -> tuple[int, int]:
    for v in _validators(field):
        if isinstance(v, validate.Length):
            return v.min or 0, v.max if v.max is not None else 100
    return 0, 100


def valid_value(name: str, field, ids: dict, depth: int):
    """A strategy of values this field should accept (the use case may still refuse them)."""
    for v in _validators(field):
        if isinstance(v, validate.OneOf):
            return st.sampled_from(list(v.choices))
        if isinstance(v, validate.Regexp):
            return st.from_regex(v.regex, fullmatch=True)
    if name in ids and ids[name]:
        return st.sampled_from(sorted(ids[name])) | st.text(min_size=1, max_size=12)
    if isinstance(field, Money):
        return st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False).map(str)
    if isinstance(field, CountryCode):
        return st.sampled_from(COUNTRIES)
    if isinstance(field, fields.Email):
        return st.emails()
    if isinstance(field, fields.Integer):
        low, high = -10, 10**6
        for v in _validators(field):
            if isinstance(v, validate.Range):
                low = v.min if v.min is not None else low
                high = v.max if v.max is not None else high
        return st.integers(min_value=low, max_value=high)
    if isinstance(field, fields.Decimal):
        return st.decimals(min_value=0, max_value=1, places=4, allow_nan=False).map(str)
    if isinstance(field, fields.Boolean):
        return st.booleans()
    if isinstance(field, fields.AwareDateTime):
        return st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.isoformat())
    if isinstance(field, fields.DateTime):
        return st.datetimes().map(lambda d: d.isoformat())
    if isinstance(field, fields.Date):
        return st.dates().map(lambda d: d.isoformat())
    if isinstance(field, fields.Nested) and depth < 3:
        return payloads(field.schema, ids, depth + 1, junk=False)
    if isinstance(field, fields.List) and depth < 3:
        low, high = _length(field)
        return st.lists(valid_value(name, field.inner, ids, depth + 1), min_size=low, max_size=min(high, 4))
    if isinstance(field, fields.Dict) and depth < 3:
        keys = field.key_field
        key_strategy = valid_value(name, keys, ids, depth + 1) if keys is not None else st.text(min_size=1, max_size=10)
        value_strategy = valid_value(name, field.value_field, ids, depth + 1) if field.value_field is not None else JUNK
        return st.dictionaries(key_strategy, value_strategy, max_size=8)
    if isinstance(field, fields.String):
        low, high = _length(field)
        return st.text(min_size=max(low, 1), max_size=min(high, 40))
    return JUNK


def field_value(name: str, field, ids: dict, depth: int):
    valid = valid_value(name, field, ids, depth)
    return st.one_of(valid, valid, valid, valid, JUNK, NASTY)


def payloads(schema: Schema, ids: dict, depth: int = 0, junk: bool = True):
    """Dicts for the schema: required fields always (optional ones sometimes), and at the top level also
    payloads missing a required field or carrying an unknown one."""
    required = {
        name: field_value(name, f, ids, depth) for name, f in schema.fields.items() if f.required and not f.dump_only
    }
    optional = {
        name: field_value(name, f, ids, depth)
        for name, f in schema.fields.items()
        if not f.required and not f.dump_only
    }
    base = st.fixed_dictionaries(required, optional=optional)
    if not junk:
        return base
    return st.one_of(
        base,
        base,
        base,
        base,
        base.flatmap(
            lambda d: (
                st.sampled_from(sorted(d)).map(lambda k: {x: y for x, y in d.items() if x != k}) if d else st.just(d)
            )
        ),
        base.map(lambda d: {**d, "unexpected_field": "x"}),
        st.dictionaries(st.text(max_size=12), JUNK, max_size=5),
    )
