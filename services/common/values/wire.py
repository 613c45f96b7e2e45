"""Plain JSON values for RPC replies and JSON columns: money as decimal strings, dates ISO, never floats."""

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID


def _plain(value) -> str | None:
    """A Decimal, UUID, date-time or date as its JSON text; None for any other value."""
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return None


def to_wire(value):
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_wire(v) for v in value]
    plain = _plain(value)
    return value if plain is None else plain


def wire_default(value):
    """`json.dumps(value, default=wire_default)`: the text of `json.dumps(to_wire(value))` for a value whose keys
    are strings (any loaded input), without building the wire copy first."""
    if isinstance(value, set):
        return list(value)
    plain = _plain(value)
    if plain is None:
        raise TypeError(f"{type(value).__name__} is not a wire value")
    return plain
