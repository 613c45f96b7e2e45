"""Every event contract of the catalogue (design.md §4), in one module so producers and consumers cannot drift.

An event is an envelope (event_id, event_type, version, occurred_at, producer, actor, data) whose `data`
validates against the schema registered for its type. Money travels as a decimal string with two places.
`make_event` refuses to build an invalid event; `parse_event` refuses to accept one.
"""

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..values.annex import HEADINGS as ANNEX_III_HEADINGS  # the Annex III headings: one list for every service
from ..values.errors import InvalidInput
from ..values.fields import CountryCode, Logframe, Money, MoneyMap, Text
from .fastload import compile_schema
from .topology import PRODUCED, producer_of

LANGUAGES = ("fr", "en")
CONVERSION_RULES = ("ec_monthly", "ec_prefinancing", "undp_monthly")
RATE_TYPES = ("inforeuro", "un_operational")


class Rate(fields.Decimal):
    """An exchange rate (units of a currency per EUR): a decimal string, up to 6 places, never a float."""

    def __init__(self, **kwargs):
        super().__init__(as_string=True, allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float):
            raise ValidationError("must be a decimal string, not a float")
        number = super()._deserialize(value, attr, data, **kwargs)
        exponent = number.as_tuple().exponent  # an int: allow_nan=False refused NaN and infinities
        if number <= 0 or isinstance(exponent, int) and exponent < -6 and number != round(number, 6):
            raise ValidationError("must be above zero with at most 6 decimal places")
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(value, "f")


class CurrencyCode(fields.String):
    """Three upper-case letters (the producer checks it against ISO 4217)."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Regexp(r"^[A-Z]{3}$"), **kwargs)


class Contract(Schema):
    class Meta:
        unknown = RAISE


class Applicant(Contract):
    """An applicant of a proposal as events carry it (calls' input schema adds the programme's applicant types)."""

    name = Text(300, required=True)
    type = Text(60, required=True)
    country = CountryCode(required=True)
    registration_number = Text(100, required=True)
    email = fields.Email(required=True)
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    role = fields.String(required=True, validate=validate.OneOf(("lead", "co_applicant")))


class _CallWindow(Contract):
    window = Text(60, required=True)
    name = Text(200, load_default=None)
    allocation_eur = Money(required=True)


class CallOpened(Contract):
    call_id = Text(60, required=True)
    programme_id = Text(60, required=True)
    programme_name = Text(300, required=True)
    envelope_eur = Money(required=True)
    rule_profile = Text(60, required=True)
    title = Text(300, required=True)
    windows = fields.List(fields.Nested(_CallWindow), required=True, validate=validate.Length(min=1))
    deadline = fields.AwareDateTime(required=True)
    min_grant_eur = Money(required=True)
    max_grant_eur = Money(required=True)
    max_ec_share = fields.Decimal(required=True, as_string=True, places=4)
    # the rule profile's budget caps and longest duration, so grants holds amended budgets and durations to the
    # rules the proposal met. Optional like the dates below: None (an event from before they were carried) means
    # EC PRAG's caps and no duration bound
    contingency_cap = fields.Decimal(
        load_default=None, allow_none=True, as_string=True, places=4, validate=validate.Range(min=0, max=1)
    )
    indirect_cap = fields.Decimal(
        load_default=None, allow_none=True, as_string=True, places=4, validate=validate.Range(min=0, max=1)
    )
    max_duration_months = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=120))
    # the programme period the call belongs to: grants dates awards and contracts within it, reporting shows it.
    # Optional, so events emitted before it was carried still load (version 1 stays compatible)
    programme_start = fields.Date(load_default=None, allow_none=True)
    programme_end = fields.Date(load_default=None, allow_none=True)
    # how expenditure in other currencies is converted (the rule profile's choice; optional like the dates:
    # None means the profile's default, ec_monthly for EC PRAG, undp_monthly for UNDP)
    currency_conversion = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CONVERSION_RULES))


class CallClosed(Contract):
    call_id = Text(60, required=True)
    closed_at = fields.AwareDateTime(required=True)
    proposals = fields.Integer(required=True)


class ProposalSubmitted(Contract):
    proposal_id = Text(60, required=True)
    reference = Text(60, required=True)
    call_id = Text(60, required=True)
    programme_id = Text(60, required=True)
    window = Text(60, required=True)
    target_country = CountryCode(required=True)
    title = Text(300, required=True)
    summary = Text(5000, min_length=0, load_default="")
    duration_months = fields.Integer(required=True, validate=validate.Range(min=1, max=120))
    applicant_type = Text(60, required=True)
    lead_organisation = Text(300, required=True)
    applicants = fields.List(fields.Nested(Applicant), required=True, validate=validate.Length(min=1))
    budget = MoneyMap(ANNEX_III_HEADINGS, required=True)
    total_eligible_cost_eur = Money(required=True)
    ec_amount_requested_eur = Money(required=True)
    co_financing_eur = Money(required=True)
    submitted_at = fields.AwareDateTime(required=True)
    # the proposal's logframe (services/common/values/logframe.py); absent from proposals submitted without one
    logframe = Logframe(load_default=None, allow_none=True)


class ProposalWithdrawn(Contract):
    proposal_id = Text(60, required=True)
    reference = Text(60, required=True)
    call_id = Text(60, required=True)
    reason = Text(2000, min_length=0, load_default="")
    withdrawn_at = fields.AwareDateTime(required=True)


class _ScreeningHit(Contract):
    applicant = Text(300, required=True)
    matched = Text(300, required=True)
    by = fields.String(required=True, validate=validate.OneOf(("name", "registration_number")))
    reason = Text(2000, min_length=0, load_default="")


class ProposalScreened(Contract):
    proposal_id = Text(60, required=True)
    reference = Text(60, required=True)
    call_id = Text(60, required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(("clear", "flagged", "excluded", "cleared")))
    hits = fields.List(fields.Nested(_ScreeningHit), load_default=list)
    reason = Text(2000, min_length=0, load_default="")  # staff's reason when they clear or exclude


class ProposalEvaluated(Contract):
    proposal_id = Text(60, required=True)
    reference = Text(60, required=True)
    call_id = Text(60, required=True)
    stage = fields.String(required=True, validate=validate.OneOf(("concept_note", "full_application")))
    score = fields.Decimal(required=True, as_string=True, places=2)
    max_score = fields.Integer(required=True)
    threshold = fields.Decimal(required=True, as_string=True, places=2)
    passed = fields.Boolean(required=True)


class _RankedProposal(Contract):
    proposal_id = Text(60, required=True)
    reference = Text(60, required=True)
    rank = fields.Integer(required=True)
    score = fields.Decimal(required=True, as_string=True, places=2)
    country = CountryCode(required=True)
    ec_amount_requested_eur = Money(required=True)


class RankingPublished(Contract):
    call_id = Text(60, required=True)
    window = Text(60, required=True)
    threshold = fields.Decimal(required=True, as_string=True, places=2)
    main = fields.List(fields.Nested(_RankedProposal), required=True)
    reserve = fields.List(fields.Nested(_RankedProposal), required=True)
    excluded = fields.List(Text(60), load_default=list)
    published_at = fields.AwareDateTime(required=True)


class GrantAwarded(Contract):
    grant_id = Text(60, required=True)
    proposal_id = Text(60, required=True)
    reference = Text(60, required=True)
    call_id = Text(60, required=True)
    programme_id = Text(60, required=True)
    window = Text(60, required=True)
    country = CountryCode(required=True)
    applicant_type = Text(60, required=True)
    lead_organisation = Text(300, required=True)
    title = Text(300, required=True)
    amount_eur = Money(required=True)
    budget = MoneyMap(ANNEX_III_HEADINGS, load_default=dict)
    decision_reference = Text(100, required=True)
    decision_date = fields.Date(required=True)
    awarded_at = fields.AwareDateTime(required=True)


class ProposalRejected(Contract):
    proposal_id = Text(60, required=True)
    reference = Text(60, required=True)
    call_id = Text(60, required=True)
    reasons = fields.List(Text(2000), required=True)
    decision_reference = Text(100, min_length=0, load_default="")


class _Tranche(Contract):
    number = fields.Integer(required=True)
    kind = Text(40, required=True)
    planned_amount_eur = Money(required=True)
    condition = fields.String(allow_none=True, load_default=None)
    due_date = fields.Date(allow_none=True, load_default=None)


class ContractSigned(Contract):
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    duration_months = fields.Integer(required=True)
    amount_eur = Money(required=True)
    schedule = fields.List(fields.Nested(_Tranche), required=True)
    signed_at = fields.AwareDateTime(required=True)


class _Payment(Contract):
    """What every payment event says about the payment (payment_id: from the client's idempotency key)."""

    payment_id = Text(60, required=True)
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    tranche_number = fields.Integer(required=True)
    amount_eur = Money(required=True)


class PaymentRequested(_Payment):
    requested_by = Text(200, required=True)
    requested_at = fields.AwareDateTime(required=True)


class TranchePaid(_Payment):
    value_date = fields.Date(required=True)
    bank_reference = Text(100, required=True)
    approved_by = Text(200, min_length=0, load_default="")


class PaymentCancelled(_Payment):
    """A request withdrawn before approval by its requester or a finance approver: its tranche is free again."""

    requested_by = Text(200, required=True)
    cancelled_by = Text(200, required=True)
    reason = Text(2000, required=True)
    cancelled_at = fields.AwareDateTime(required=True)


class _ExpenditureLine(Contract):
    heading = fields.String(required=True, validate=validate.OneOf(ANNEX_III_HEADINGS))
    amount = Money(required=True)  # in `currency`
    currency = CurrencyCode(required=True)
    incurred_on = fields.Date(required=True)
    description = Text(300, min_length=0, load_default="")
    rate = Rate(required=True)  # units of `currency` per EUR (1 for EUR)
    rate_type = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(RATE_TYPES))
    rate_month = fields.String(allow_none=True, load_default=None, validate=validate.Regexp(r"^\d{4}-\d{2}$"))
    amount_eur = Money(required=True)


class ReportSubmitted(Contract):
    report_id = Text(60, required=True)
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("interim", "final")))
    number = fields.Integer(load_default=1)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    expenditure = MoneyMap(ANNEX_III_HEADINGS, required=True)
    total_eur = Money(required=True)
    submitted_at = fields.AwareDateTime(required=True)
    # expenditure reported line by line, in any currency: each line with the rate used and its EUR value (the
    # expenditure above is the sum per heading of those EUR values). Optional: EUR-only reports have no lines
    conversion = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CONVERSION_RULES))
    lines = fields.List(fields.Nested(_ExpenditureLine), load_default=list, validate=validate.Length(max=2000))
    # actual values of the logframe's indicators over the period (optional)
    actuals = fields.List(fields.Nested(lambda: _Actual()), load_default=list, validate=validate.Length(max=500))


class _Actual(Contract):
    code = Text(20, required=True)
    value = Text(500, required=True)  # a decimal string for unit/percentage indicators, a text for qualitative
    comment = Text(500, min_length=0, load_default="")


class ReportAccepted(Contract):
    """A report decided by staff: `outcome` accepted (it counts, and gates the next tranche) or returned."""

    report_id = Text(60, required=True)
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("interim", "final")))
    number = fields.Integer(load_default=1)  # interim report n (as in report_submitted); 1 for the final report
    outcome = fields.String(required=True, validate=validate.OneOf(("accepted", "returned")))
    reason = Text(2000, min_length=0, load_default="")
    expenditure = MoneyMap(ANNEX_III_HEADINGS, required=True)
    total_eur = Money(required=True)
    decided_at = fields.AwareDateTime(required=True)


class GrantAmended(Contract):
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    amendment_id = Text(60, required=True)
    kind = Text(40, required=True)
    amount_eur = Money(required=True)
    duration_months = fields.Integer(required=True)
    budget = MoneyMap(ANNEX_III_HEADINGS, load_default=dict)
    reason = Text(2000, min_length=0, load_default="")


class GrantClosed(Contract):
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("final_payment", "recovery", "declined")))
    paid_eur = Money(required=True)
    accepted_expenditure_eur = Money(required=True)
    recovery_eur = Money(required=True)
    closed_at = fields.AwareDateTime(required=True)


class GrantDecommitted(Contract):
    """Money a grant gives back to its window and programme: at closure, award - final amount. The grant then
    commits `committed_after_eur`."""

    decommitment_id = Text(60, required=True)
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    amount_eur = Money(required=True)
    committed_before_eur = Money(required=True)
    committed_after_eur = Money(required=True)
    reason = Text(2000, required=True)
    decommitted_at = fields.AwareDateTime(required=True)


class GrantTerminated(Contract):
    """A grant ended early: its final report covers `final_report_period_start` to `effective_date` and is due by
    `final_report_due`; no money moves until closure (grant_closed, grant_decommitted)."""

    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    effective_date = fields.Date(required=True)
    reason = Text(2000, required=True)
    terminated_by = Text(200, required=True)
    terminated_at = fields.AwareDateTime(required=True)
    amount_eur = Money(required=True)
    paid_eur = Money(required=True)
    final_report_period_start = fields.Date(required=True)
    final_report_due = fields.Date(required=True)


class _IndicatorResult(Contract):
    """One indicator of the contract's logframe (as last amended) with its actual value over the period."""

    result_type = fields.String(required=True, validate=validate.OneOf(("outcome", "output")))
    result_title = Text(300, required=True)
    code = Text(20, required=True)
    title = Text(300, required=True)
    measure = fields.String(required=True, validate=validate.OneOf(("unit", "percentage", "qualitative")))
    unit = Text(60, min_length=0, load_default="")
    baseline_value = Text(500, required=True)
    baseline_year = fields.Integer(required=True, validate=validate.Range(min=1900, max=2100))
    target_value = Text(500, required=True)
    target_date = fields.Date(required=True)
    source_of_verification = Text(500, min_length=0, load_default="")
    actual_value = Text(500, required=True)
    comment = Text(500, min_length=0, load_default="")


class ResultsReported(Contract):
    """An accepted report's actual values of the grant's logframe indicators for its period."""

    report_id = Text(60, required=True)
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    programme_id = Text(60, required=True)
    call_id = Text(60, required=True)
    window = Text(60, required=True)
    country = CountryCode(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("interim", "final")))
    number = fields.Integer(load_default=1)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    results = fields.List(fields.Nested(_IndicatorResult), required=True, validate=validate.Length(min=1, max=500))
    decided_at = fields.AwareDateTime(required=True)


class _PublishedRate(Contract):
    currency = CurrencyCode(required=True)
    rate = Rate(required=True)


class RatesPublished(Contract):
    """One month's exchange rates of one kind loaded into the rates table (only the rates new to it)."""

    month = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))
    rate_type = fields.String(required=True, validate=validate.OneOf(RATE_TYPES))
    source = Text(300, required=True)
    rates = fields.List(fields.Nested(_PublishedRate), required=True, validate=validate.Length(min=1, max=500))
    published_by = Text(200, required=True)
    published_at = fields.AwareDateTime(required=True)


class _Delivery(Contract):
    notification_id = Text(60, required=True)
    source_event_id = fields.UUID(required=True)
    template = Text(60, required=True)
    recipient = fields.Email(required=True)
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    proposal_id = fields.String(allow_none=True, load_default=None)
    grant_id = fields.String(allow_none=True, load_default=None)


class NotificationSent(_Delivery):
    sent_at = fields.AwareDateTime(required=True)
    message_id = Text(300, load_default=None)  # the e-mail's Message-ID, stable per notification


class NotificationFailed(_Delivery):
    error = Text(2000, required=True)
    attempts = fields.Integer(required=True)


class ReportGenerated(Contract):
    report_id = Text(60, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("monthly", "quarterly", "on_demand")))
    period = Text(40, required=True)
    format = Text(10, required=True)
    filename = Text(200, required=True)
    sha256 = Text(64, required=True)
    size = fields.Integer(required=True)
    generated_at = fields.AwareDateTime(required=True)


CONTRACTS = {
    "call_opened": CallOpened,
    "call_closed": CallClosed,
    "proposal_submitted": ProposalSubmitted,
    "proposal_withdrawn": ProposalWithdrawn,
    "proposal_screened": ProposalScreened,
    "proposal_evaluated": ProposalEvaluated,
    "ranking_published": RankingPublished,
    "grant_awarded": GrantAwarded,
    "proposal_rejected": ProposalRejected,
    "contract_signed": ContractSigned,
    "payment_requested": PaymentRequested,
    "tranche_paid": TranchePaid,
    "report_submitted": ReportSubmitted,
    "report_accepted": ReportAccepted,
    "grant_amended": GrantAmended,
    "grant_closed": GrantClosed,
    "grant_decommitted": GrantDecommitted,
    "payment_cancelled": PaymentCancelled,
    "rates_published": RatesPublished,
    "results_reported": ResultsReported,
    "grant_terminated": GrantTerminated,
    "notification_sent": NotificationSent,
    "notification_failed": NotificationFailed,
    "report_generated": ReportGenerated,
}
VERSIONS = {event_type: 1 for event_type in CONTRACTS}
assert set(CONTRACTS) == {e for events in PRODUCED.values() for e in events}, "catalogue and topology differ"


class Envelope(Contract):
    event_id = fields.UUID(required=True)
    event_type = fields.String(required=True, validate=validate.OneOf(tuple(CONTRACTS)))
    version = fields.Integer(required=True, strict=True)
    occurred_at = fields.AwareDateTime(required=True)
    producer = fields.String(required=True, validate=validate.OneOf(tuple(PRODUCED)))
    actor = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    data = fields.Dict(required=True)


_ENVELOPE = Envelope()


class Event:
    """A validated event: `data` holds Python values (Decimal, date, datetime); `body` the wire form; `text` the
    JSON text it was received as, where the receiver kept it (None otherwise)."""

    __slots__ = ("event_id", "event_type", "version", "occurred_at", "producer", "actor", "data", "body", "text")

    def __init__(self, envelope: dict, data: dict, body: dict):
        self.event_id = str(envelope["event_id"])
        self.event_type = envelope["event_type"]
        self.version = envelope["version"]
        self.occurred_at = envelope["occurred_at"]
        self.producer = envelope["producer"]
        self.actor = envelope["actor"]
        self.data = data
        self.body = body
        self.text: str | None = None

    def __repr__(self):
        return f"<Event {self.event_type} {self.event_id}>"


# Schema objects are built once per process (building one costs about as much as a load) and reused: a
# marshmallow schema keeps no state between load/dump calls.
_SCHEMAS: dict[str, Schema] = {}


def contract_schema(event_type: str) -> Schema:
    schema = _SCHEMAS.get(event_type)
    if schema is None:
        schema = _SCHEMAS[event_type] = CONTRACTS[event_type]()
    return schema


_FAST_LOADS: dict[str, Callable[[Any], dict | None] | None] = {}
_FAST_ENVELOPE = compile_schema(_ENVELOPE)


def _fast_parse(body: dict) -> Event | None:
    """The event, when the compiled plans (fastload.py) vouch for envelope and data; None leaves it to marshmallow."""
    envelope = _FAST_ENVELOPE(body) if _FAST_ENVELOPE is not None else None
    if envelope is None or envelope["version"] != VERSIONS[envelope["event_type"]]:
        return None
    data = _fast_data(envelope["event_type"], envelope["data"])
    return None if data is None else Event(envelope, data, body)


def _fast_data(event_type: str, data) -> dict | None:
    """The data loaded by its contract's compiled plan, or None (unsure: marshmallow loads it)."""
    if event_type not in _FAST_LOADS:
        _FAST_LOADS[event_type] = compile_schema(contract_schema(event_type))
    load = _FAST_LOADS[event_type]
    return load(data) if load is not None else None


def make_event(
    event_type: str,
    data: dict,
    *,
    producer: str,
    actor: str | None = None,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> Event:
    """Build the wire form of an event, refusing one whose data does not match its contract."""
    if event_type not in CONTRACTS:
        raise InvalidInput({"event_type": [f"unknown event type {event_type!r}"]})
    if producer_of(event_type) != producer:
        raise InvalidInput({"producer": [f"{producer} does not produce {event_type}"]})
    schema = contract_schema(event_type)
    try:
        # dump then load: the wire form is exactly what a consumer will validate (by the compiled plan when it
        # vouches for it, as parse_event does; marshmallow otherwise, whose error is the refusal)
        wire_data = schema.dump(data)
        loaded = _fast_data(event_type, wire_data)
        if loaded is None:
            loaded = schema.load(wire_data)
    except (ValidationError, TypeError, ValueError, AttributeError) as exc:
        messages = exc.messages if isinstance(exc, ValidationError) else {"_schema": [str(exc)]}
        raise InvalidInput({"data": messages}, f"event {event_type} does not match its contract: {messages}") from exc
    occurred_at = occurred_at or datetime.now(timezone.utc)
    event_id = event_id or str(uuid.uuid4())
    # the envelope is ours, checked here field by field: the data above is the one part validated by a schema
    problems = {}
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        problems["occurred_at"] = ["must be an aware date-time"]
    if actor is not None and (not isinstance(actor, str) or len(actor) > 200):
        problems["actor"] = ["must be a string of at most 200 characters"]
    try:
        parsed_id = uuid.UUID(event_id)
    except (TypeError, ValueError, AttributeError):
        problems["event_id"] = ["must be a UUID"]
    if problems:
        raise InvalidInput(problems, f"event {event_type} has an invalid envelope: {problems}")
    body = {
        "event_id": event_id,
        "event_type": event_type,
        "version": VERSIONS[event_type],
        "occurred_at": occurred_at.isoformat(),
        "producer": producer,
        "actor": actor,
        "data": wire_data,
    }
    envelope = {**body, "event_id": parsed_id, "occurred_at": occurred_at}
    return Event(envelope, loaded, body)


def parse_event(body) -> Event:
    """Validate a received body; raises InvalidInput (the message is poison and goes to the dead letters)."""
    if not isinstance(body, dict):
        raise InvalidInput({"_schema": ["event body must be an object"]})
    return _fast_parse(body) or _parse_checked(body)


def _parse_checked(body: dict) -> Event:
    """marshmallow's load of envelope and data: the reference, and the one that says why a body is refused."""
    try:
        envelope = _ENVELOPE.load(body)
        if envelope["version"] != VERSIONS[envelope["event_type"]]:
            raise ValidationError({"version": [f"unsupported version {envelope['version']}"]})
        data = contract_schema(envelope["event_type"]).load(envelope["data"])
    except ValidationError as exc:
        raise InvalidInput(exc.normalized_messages(), f"event does not match its contract: {exc.messages}") from None
    return Event(envelope, data, body)
