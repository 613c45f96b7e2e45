"""EUR amounts: Decimal with two places end to end; a float never becomes money."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


class MoneyError(ValueError):
    pass


def to_money(value) -> Decimal:
    """Parse a decimal string, int or Decimal into EUR with exactly two places.

    Refuses floats (they cannot carry cents exactly), NaN/Infinity and more than two decimal places.
    """
    if value.__class__ is Decimal and value.is_finite() and value.as_tuple()[2] == -2 and value.adjusted() <= 14:
        return value  # already EUR with two places (what quantize would give back): amounts passed along as loaded
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError("must be a decimal string such as '150000.00', not a float")
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError("not a decimal amount") from None
    elif not isinstance(value, Decimal):
        raise MoneyError("must be a decimal string")
    if not value.is_finite():
        raise MoneyError("must be a finite amount")
    if value.adjusted() > 14:  # beyond any programme (and beyond what quantize to the cent can hold)
        raise MoneyError("is out of range")
    if value.as_tuple().exponent < -2 and value != value.quantize(CENT):
        raise MoneyError("has more than two decimal places")
    return value.quantize(CENT)


def round_money(value: Decimal) -> Decimal:
    """Round a computed amount (e.g. 80% of a budget) to the cent, half up as finance expects."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT))
