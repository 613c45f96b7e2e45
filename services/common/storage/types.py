"""Column types shared by the services' models."""

from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.types import TypeDecorator

from ..values.money import CENT, to_money


class Money(TypeDecorator):
    """EUR stored as integer cents: exact on SQLite and PostgreSQL alike, and SUM() stays exact."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return int(to_money(value) / CENT)

    def process_result_value(self, value, dialect):
        return None if value is None else cents_to_money(value)


def cents_to_money(cents) -> Decimal:
    """For raw SQL over Money columns (plain text queries return the stored integer cents)."""
    return (Decimal(int(cents or 0)) * CENT).quantize(CENT)


def money_or_zero(value) -> Decimal:
    """SUM() over a Money column keeps the Money type (so arrives as Decimal), but is NULL over no rows."""
    return value if value is not None else Decimal("0.00")


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out — also on SQLite, which forgets the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC datetimes only")
        return value

    def process_result_value(self, value, dialect):
        from datetime import timezone

        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


IntId = BigInteger().with_variant(Integer(), "sqlite")
