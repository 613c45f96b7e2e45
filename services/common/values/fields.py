"""Marshmallow fields shared by RPC schemas and event contracts."""

from decimal import Decimal

from marshmallow import ValidationError, fields

from .money import MoneyError, money_str, to_money

MAX_TEXT = 2000


class Money(fields.Field):
    """EUR amount: accepts a decimal string or an integer, never a float; dumps "150000.00"."""

    def __init__(self, *, allow_negative: bool = False, **kwargs):
        self.allow_negative = allow_negative
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        try:
            amount = to_money(value)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None
        if amount < 0 and not self.allow_negative:
            raise ValidationError("must not be negative")
        if abs(amount) >= Decimal("1e12"):
            raise ValidationError("is out of range")
        return amount

    def _serialize(self, value, attr, obj, **kwargs):
        # to_money refuses a float here too: a producer cannot smuggle one onto the wire
        return None if value is None else money_str(to_money(value))


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with its offset, loaded as UTC: any offset a client may write (Python allows up to
    ±23:59, PostgreSQL stores at most ±15:59) becomes the same instant, and one out of range is invalid input."""

    def _deserialize(self, value, attr, data, **kwargs):
        from datetime import timezone

        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(timezone.utc)
        except OverflowError:
            raise ValidationError("is out of range") from None


def Text(max_length: int = MAX_TEXT, min_length: int = 1, **kwargs):
    from marshmallow import validate

    return fields.String(validate=validate.Length(min=min_length, max=max_length), **kwargs)


class CountryCode(fields.String):
    """ISO 3166-1 alpha-2, upper case."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if len(value) != 2 or not value.isascii() or not value.isalpha():
            raise ValidationError("must be an ISO 3166-1 alpha-2 country code")
        return value.upper()


class MoneyMap(fields.Dict):
    """A mapping of fixed keys (e.g. Annex III headings) to EUR amounts."""

    def __init__(self, keys=None, **kwargs):
        from marshmallow import validate

        key_field = fields.String(validate=validate.OneOf(keys)) if keys else fields.String()
        super().__init__(keys=key_field, values=Money(), **kwargs)


class Logframe(fields.Field):
    """A logframe (services/common/values/logframe.py): outcomes and outputs with their indicators, checked and
    normalised; every refusal names its path inside the field."""

    def _deserialize(self, value, attr, data, **kwargs):
        from .errors import InvalidInput
        from .logframe import parse_logframe

        try:
            return parse_logframe(value, "_")
        except InvalidInput as exc:
            raise ValidationError(
                {key[2:] if key.startswith("_.") else key: messages for key, messages in exc.errors.items()}
            ) from None
