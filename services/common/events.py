"""Every event contract of the catalogue (design.md §4), in one module so producers and consumers cannot drift.

An event is an envelope (event_id, event_type, version, occurred_at, producer, actor, data) whose `data`
validates against the schema registered for its type. Money travels as a decimal string with two places.
`make_event` refuses to build an invalid event; `parse_event` refuses to accept one.
"""
import uuid
from datetime import datetime, timezone

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .errors import InvalidInput
from .fields import CountryCode, Money, MoneyMap, Text
from .topology import PRODUCED, producer_of

ANNEX_III_HEADINGS = (
    "human_resources", "travel", "equipment_supplies", "local_office", "other_costs_services", "other",
    "contingency", "indirect_costs",
)
LANGUAGES = ("fr", "en")


class Contract(Schema):
    class Meta:
        unknown = RAISE


class _Applicant(Contract):
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
    applicants = fields.List(fields.Nested(_Applicant), required=True, validate=validate.Length(min=1))
    budget = MoneyMap(ANNEX_III_HEADINGS, required=True)
    total_eligible_cost_eur = Money(required=True)
    ec_amount_requested_eur = Money(required=True)
    co_financing_eur = Money(required=True)
    submitted_at = fields.AwareDateTime(required=True)


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


class PaymentRequested(Contract):
    payment_id = Text(60, required=True)
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    tranche_number = fields.Integer(required=True)
    amount_eur = Money(required=True)
    requested_by = Text(200, required=True)
    requested_at = fields.AwareDateTime(required=True)


class TranchePaid(Contract):
    payment_id = Text(60, required=True)
    grant_id = Text(60, required=True)
    reference = Text(60, required=True)
    tranche_number = fields.Integer(required=True)
    amount_eur = Money(required=True)
    value_date = fields.Date(required=True)
    bank_reference = Text(100, required=True)
    approved_by = Text(200, min_length=0, load_default="")


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
    "call_opened": CallOpened, "call_closed": CallClosed, "proposal_submitted": ProposalSubmitted,
    "proposal_withdrawn": ProposalWithdrawn, "proposal_screened": ProposalScreened,
    "proposal_evaluated": ProposalEvaluated, "ranking_published": RankingPublished,
    "grant_awarded": GrantAwarded, "proposal_rejected": ProposalRejected, "contract_signed": ContractSigned,
    "payment_requested": PaymentRequested, "tranche_paid": TranchePaid, "report_submitted": ReportSubmitted,
    "report_accepted": ReportAccepted, "grant_amended": GrantAmended, "grant_closed": GrantClosed,
    "notification_sent": NotificationSent, "notification_failed": NotificationFailed,
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


class Event:
    """A validated event: `data` holds Python values (Decimal, date, datetime); `body` the wire form."""

    __slots__ = ("event_id", "event_type", "version", "occurred_at", "producer", "actor", "data", "body")

    def __init__(self, envelope: dict, data: dict, body: dict):
        self.event_id = str(envelope["event_id"])
        self.event_type = envelope["event_type"]
        self.version = envelope["version"]
        self.occurred_at = envelope["occurred_at"]
        self.producer = envelope["producer"]
        self.actor = envelope["actor"]
        self.data = data
        self.body = body

    def __repr__(self):
        return f"<Event {self.event_type} {self.event_id}>"


def make_event(event_type: str, data: dict, *, producer: str, actor: str | None = None,
               occurred_at: datetime | None = None, event_id: str | None = None) -> Event:
    """Build the wire form of an event, refusing one whose data does not match its contract."""
    if event_type not in CONTRACTS:
        raise InvalidInput({"event_type": [f"unknown event type {event_type!r}"]})
    if producer_of(event_type) != producer:
        raise InvalidInput({"producer": [f"{producer} does not produce {event_type}"]})
    schema = CONTRACTS[event_type]()
    try:
        # dump then load: the wire form is exactly what a consumer will validate
        wire_data = schema.dump(data)
        loaded = schema.load(wire_data)
    except (ValidationError, TypeError, ValueError, AttributeError) as exc:
        messages = exc.messages if isinstance(exc, ValidationError) else {"_schema": [str(exc)]}
        raise InvalidInput({"data": messages}, f"event {event_type} does not match its contract: {messages}")
    body = {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "version": VERSIONS[event_type],
        "occurred_at": (occurred_at or datetime.now(timezone.utc)).isoformat(),
        "producer": producer,
        "actor": actor,
        "data": wire_data,
    }
    envelope = Envelope().load(body)
    return Event(envelope, loaded, body)


def parse_event(body) -> Event:
    """Validate a received body; raises InvalidInput (the message is poison and goes to the dead letters)."""
    if not isinstance(body, dict):
        raise InvalidInput({"_schema": ["event body must be an object"]})
    try:
        envelope = Envelope().load(body)
        if envelope["version"] != VERSIONS[envelope["event_type"]]:
            raise ValidationError({"version": [f"unsupported version {envelope['version']}"]})
        data = CONTRACTS[envelope["event_type"]]().load(envelope["data"])
    except ValidationError as exc:
        raise InvalidInput(exc.messages, f"event does not match its contract: {exc.messages}") from None
    return Event(envelope, data, body)
