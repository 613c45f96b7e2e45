"""Loading a valid event without marshmallow's per-field machinery, for the consumers' hot path.

A contract schema is compiled once into a plan of its fields: each value is turned by the field's own
`_deserialize` and checked by its own validators (strings with Length/OneOf checked inline, the same
comparisons), so a loaded value is the one marshmallow gives. The plan only accepts: anything it is not sure of
(a missing required key, a None where none is allowed, an unknown key, a value a field or validator refuses, a
schema or field with hooks other than a schema's own validators, renamed keys or options the plan does not
model) makes `load` return None, and the caller loads with marshmallow, which then accepts the same result or raises
its own typed error. Malformed input is therefore refused exactly as before, with the same messages. A list's items
and a nested schema are loaded by their own plans (their own validators checked after them, as marshmallow does);
a schema's `@validates_schema` methods are called on the loaded dict as marshmallow calls them, any refusal making
the plan unsure. Used for events (parse_event, and the load of an event's wire form when it is emitted) and for
the operations' input (entrypoints.load_input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, fields, missing, validate
from marshmallow.decorators import VALIDATES_SCHEMA

FieldLoader = Callable[[Any, str | None, Any], Any]  # (value, key, the data holding it)


class _Unsure(Exception):
    """The plan cannot vouch for this value: marshmallow decides."""


def _string_loader(field: fields.String) -> FieldLoader | None:
    """A plain string with Length and OneOf validators only, checked inline; None for other validators."""
    low, high, choices = 0, None, None
    for validator in field.validators:
        if type(validator) is validate.Length and validator.equal is None:
            low = max(low, validator.min or 0)
            high = validator.max if high is None or validator.max is None else min(high, validator.max)
        elif type(validator) is validate.OneOf and choices is None:
            choices = frozenset(c for c in validator.choices if isinstance(c, str))
        else:
            return None

    def load(value, _name, _data):
        if type(value) is not str or len(value) < low or (high is not None and len(value) > high):
            raise _Unsure
        if choices is not None and value not in choices:
            raise _Unsure
        return value

    return load


def _mapping_loader(field: fields.Mapping) -> FieldLoader | None:
    """A dict whose keys and values each have a field (MoneyMap), as `Mapping._deserialize` loads it."""
    keys, values = _present_loader(field.key_field), _present_loader(field.value_field)
    if keys is None or values is None:
        return None
    check = field._validate if field.validators else None

    def load(value, _name, _data):
        if type(value) is not dict:
            raise _Unsure
        out = {keys(k, None, None): values(v, None, None) for k, v in value.items()}
        if check is not None:
            check(out)
        return out

    return load


def _present_loader(field: fields.Field | None) -> FieldLoader | None:
    """What `field.deserialize` does with a value that is there (None included)."""
    loader = _field_loader(field) if field is not None else None
    if loader is None or field is None:
        return None
    allow_none = field.allow_none

    def load(value, name, data):
        if value is None:
            if not allow_none:
                raise _Unsure
            return None
        return loader(value, name, data)

    return load


def _list_loader(field: fields.List) -> FieldLoader | None:
    """A JSON list whose items each load by the inner field's plan, as `List._deserialize` loads it."""
    items = _present_loader(field.inner)
    if items is None:
        return None
    check = field._validate if field.validators else None

    def load(value, _name, _data):
        if type(value) is not list:
            raise _Unsure
        out = [items(each, None, None) for each in value]
        if check is not None:
            check(out)
        return out

    return load


def _nested_loader(field: fields.Nested) -> FieldLoader | None:
    """One nested object (not many) loaded by its schema's plan, as `Nested._deserialize` loads it."""
    if field.many or field.unknown not in (None, RAISE):
        return None
    schema = field.schema
    plan = compile_schema(schema) if isinstance(schema, Schema) and schema.unknown == RAISE else None
    if plan is None:
        return None
    check = field._validate if field.validators else None

    def load(value, _name, _data):
        out = plan(value)
        if out is None:
            raise _Unsure
        if check is not None:
            check(out)
        return out

    return load


def _field_loader(field: fields.Field) -> FieldLoader | None:
    if getattr(field, "pre_load", None) or getattr(field, "post_load", None):
        return None
    if type(field) is fields.List:
        return _list_loader(field)
    if type(field) is fields.Nested:
        return _nested_loader(field)
    inline = _string_loader(field) if type(field) is fields.String else None
    if inline is not None:
        return inline
    if (
        isinstance(field, fields.Mapping)
        and type(field)._deserialize is fields.Mapping._deserialize
        and field.mapping_type is dict
        and field.key_field is not None
        and field.value_field is not None
    ):
        return _mapping_loader(field)
    deserialize, check = field._deserialize, field._validate if field.validators else None

    def load(value, name, data):
        out = deserialize(value, name, data)
        if check is not None:
            check(out)
        return out

    return load


def compile_schema(schema: Schema) -> Callable[[Any], dict | None] | None:
    """`load(data)` -> the dict marshmallow's `schema.load(data)` gives, or None (unsure: ask marshmallow);
    None instead of a function when the schema uses what the plan does not model."""
    if schema.many or schema.partial or schema.unknown != RAISE:
        return None
    if any(hooks for tag, hooks in schema._hooks.items() if tag != VALIDATES_SCHEMA):
        return None
    validators = []
    for attr_name, hook_many, options in schema._hooks[VALIDATES_SCHEMA]:
        if hook_many:
            return None
        validators.append((getattr(schema, attr_name), bool(options.get("pass_original", False))))
    unknown, partial = schema.unknown, schema.partial
    plan = []
    for name, field in schema.load_fields.items():
        loader = _field_loader(field)
        if loader is None or field.data_key is not None or field.attribute is not None:
            return None
        plan.append((name, field.required, field.load_default, field.allow_none, loader))
    names = frozenset(name for name, *_ in plan)
    dict_class = schema.dict_class

    def load(data):
        if type(data) is not dict or not names.issuperset(data):
            return None
        out = dict_class()
        try:
            for name, required, default, allow_none, loader in plan:
                value = data.get(name, missing)
                if value is missing:
                    if required:
                        return None
                    if default is not missing:
                        out[name] = default() if callable(default) else default
                elif value is None:
                    if not allow_none:
                        return None
                    out[name] = None
                else:
                    out[name] = loader(value, name, data)
            for validator, pass_original in validators:  # as Schema._run_validator calls them
                if pass_original:
                    validator(out, data, partial=partial, many=False, unknown=unknown)
                else:
                    validator(out, partial=partial, many=False, unknown=unknown)
        except Exception:  # a field refused the value (or failed on it): marshmallow says how
            return None
        return out

    return load
