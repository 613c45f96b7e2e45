"""Schemas of what operations return: the wire form `to_wire` gives a result (money and other decimals as strings,
dates and date-times ISO 8601, UUIDs as text). They are never used to dump: the gateway's OpenAPI document
publishes them as each operation's 200 answer, and the tests validate real answers against that document.

`Result` declares every key an answer carries (no other may appear); `Open` is for the parts a service passes
through as stored (a programme's definition, a proposal's form), whose own keys are documented elsewhere."""

from marshmallow import INCLUDE, Schema, fields

DECIMAL_TEXT = r"^-?[0-9]+(\.[0-9]+)?$"


class Result(Schema):
    """An answer object: exactly these keys."""


class Open(Schema):
    """An answer object with at least these keys; others pass through as the service stores them."""

    class Meta:
        unknown = INCLUDE


def MoneyText(description: str = "EUR amount, a decimal string", **kwargs) -> fields.String:
    """An EUR amount as to_wire writes a Decimal: "150000.00" (never a JSON number)."""
    return fields.String(metadata={"pattern": DECIMAL_TEXT, "description": description}, **kwargs)


def DecimalText(description: str, **kwargs) -> fields.String:
    """A Decimal that is not money (a share, a rate): its exact decimal text."""
    return fields.String(metadata={"pattern": DECIMAL_TEXT, "description": description}, **kwargs)


def MoneyByKey(description: str, **kwargs) -> fields.Dict:
    """key (a budget heading, a window, a currency) -> EUR amount."""
    return fields.Dict(keys=fields.String(), values=MoneyText(), metadata={"description": description}, **kwargs)


def Many(schema: type[Schema]) -> fields.List:
    return fields.List(fields.Nested(schema))


class Health(Result):
    service = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "ok, or what stopped the service answering"})
    outbox_pending = fields.Integer(metadata={"description": "events written but not yet published"})
    dead_letters_held = fields.Integer(metadata={"description": "events its handlers could not apply (up to 1000)"})
    detail = fields.String(metadata={"description": "gateway.health: why the service did not answer"})


class DeadLetter(Result):
    id = fields.Integer(required=True)
    consumer = fields.String(required=True)
    event_id = fields.String(allow_none=True)
    event_type = fields.String(allow_none=True)
    body = fields.Raw(metadata={"description": "the event as received: an object, or its text when not JSON"})
    headers = fields.Dict()
    error = fields.String()
    attempts = fields.Integer()
    status = fields.String(required=True)
    first_failed_at = fields.DateTime()
    last_failed_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)


class Replayed(Result):
    id = fields.Integer(required=True)
    outcome = fields.String(required=True)


class Discarded(Result):
    id = fields.Integer(required=True)
    status = fields.String(required=True)


class AuditRow(Result):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    user = fields.String(allow_none=True)
    roles = fields.List(fields.String())
    operation = fields.String(required=True)
    outcome = fields.String(required=True, metadata={"description": "done | refused"})
    entity = fields.String(allow_none=True)
    detail = fields.Dict()
    correlation_id = fields.String(allow_none=True)


HEALTH = Health()
DEAD_LETTERS = DeadLetter(many=True)
REPLAYED = Replayed()
DISCARDED = Discarded()
AUDIT_ROWS = AuditRow(many=True)


def Figure(description: str, nullable: bool = False) -> fields.Raw:
    """A score or a share computed as a Decimal (its decimal text) or held as a plain number."""
    kinds = ["string", "number", *(["null"] if nullable else [])]
    return fields.Raw(metadata={"type": kinds, "pattern": DECIMAL_TEXT, "description": description})
