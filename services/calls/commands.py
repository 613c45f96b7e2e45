"""Use cases of the calls service: load, call the rules, store, emit — in the caller's unit of work."""
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from services.common.db import UnitOfWork
from services.common.errors import Conflict, NotFound

from .models import CallRow, ProgrammeRow, ProposalRow, ReferenceSequence

DEFAULT_MIN_GRANT, DEFAULT_MAX_GRANT, DEFAULT_MAX_EC_SHARE = Decimal("50000.00"), Decimal("200000.00"), Decimal("0.9")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def load_programme(uow: UnitOfWork, programme: dict) -> dict:
    session = uow.session
    row = session.get(ProgrammeRow, programme["id"])
    definition = {**programme, "ec_contribution_eur": str(programme["ec_contribution_eur"]),
                  "windows": [{**w, "allocation_eur": str(w["allocation_eur"])} for w in programme["windows"]]}
    if row is None:
        row = ProgrammeRow(id=programme["id"])
        session.add(row)
    row.name = programme["name"]
    row.ec_contribution = programme["ec_contribution_eur"]
    row.definition = definition
    uow.audit("calls.load_programme", f"programme:{programme['id']}", {"after": definition})
    return definition


def _programme(uow, programme_id) -> ProgrammeRow:
    row = uow.session.get(ProgrammeRow, programme_id)
    if row is None:
        raise NotFound("programme", programme_id)
    return row


def _call(uow, call_id, lock=False) -> CallRow:
    query = select(CallRow).where(CallRow.id == call_id)
    if lock:
        query = query.with_for_update()
    row = uow.session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound("call", call_id)
    return row


def create_call(uow: UnitOfWork, data: dict) -> dict:
    programme = _programme(uow, data["programme_id"])
    if uow.session.get(CallRow, data["call_id"]) is not None:
        raise Conflict("call.exists", f"call {data['call_id']} already exists")
    known = {w["code"]: w for w in programme.definition["windows"]}
    unknown = [w["window"] for w in data["windows"] if w["window"] not in known]
    if unknown:
        raise Conflict("call.unknown_window", f"windows not in programme {programme.id}: {', '.join(unknown)}")
    over = [w["window"] for w in data["windows"] if w["allocation_eur"] > Decimal(known[w["window"]]["allocation_eur"])]
    if over:
        raise Conflict("call.window_over_allocation", f"allocation above the programme's for: {', '.join(over)}")
    call = CallRow(
        id=data["call_id"], programme_id=programme.id, title=data["title"], status="draft",
        year=data["deadline"].year, deadline=data["deadline"],
        min_grant=data["min_grant_eur"] or DEFAULT_MIN_GRANT, max_grant=data["max_grant_eur"] or DEFAULT_MAX_GRANT,
        max_ec_share=data["max_ec_share"] if data["max_ec_share"] is not None else DEFAULT_MAX_EC_SHARE,
        windows=[{"window": w["window"], "allocation_eur": str(w["allocation_eur"])} for w in data["windows"]],
        definition={},
    )
    uow.session.add(call)
    uow.audit("calls.create_call", f"call:{call.id}", {"after": call_view(call)})
    return call_view(call)


def open_call(uow: UnitOfWork, call_id: str, now: datetime) -> dict:
    call = _call(uow, call_id, lock=True)
    if call.status != "draft":
        raise Conflict("call.not_draft", f"call {call_id} is {call.status}")
    if call.deadline <= now:
        raise Conflict("call.deadline_passed", "the submission deadline is already past")
    programme = _programme(uow, call.programme_id)
    names = {w["code"]: w["name"] for w in programme.definition["windows"]}
    call.status, call.opened_at = "open", now
    uow.emit("call_opened", {
        "call_id": call.id, "programme_id": programme.id, "programme_name": programme.name,
        "envelope_eur": programme.ec_contribution, "rule_profile": programme.definition["rule_profile"],
        "title": call.title, "deadline": call.deadline, "min_grant_eur": call.min_grant,
        "max_grant_eur": call.max_grant, "max_ec_share": call.max_ec_share,
        "windows": [{"window": w["window"], "name": names[w["window"]], "allocation_eur": Decimal(w["allocation_eur"])}
                    for w in call.windows],
    }, occurred_at=now)
    return call_view(call)


def eligibility_violations(call: CallRow, programme: ProgrammeRow, proposal: dict, now: datetime) -> list[dict]:
    """The walking skeleton's rules; every failed rule is listed, not just the first."""
    failed = []

    def rule(name, field, message):
        failed.append({"rule": name, "field": field, "message": message})

    if call.status != "open":
        rule("call.not_open", "call_id", f"call is {call.status}")
    if now >= call.deadline:
        rule("call.deadline_passed", "call_id", "the submission deadline has passed")
    amount = proposal["ec_amount_requested_eur"]
    if amount < call.min_grant or amount > call.max_grant:
        rule("amount.outside_limits", "ec_amount_requested_eur",
             f"{amount} is outside {call.min_grant}–{call.max_grant}")
    if proposal["window"] not in {w["window"] for w in call.windows}:
        rule("window.not_in_call", "window", f"{proposal['window']} is not a window of this call")
    if proposal["target_country"] not in programme.definition["eligible_countries"]:
        rule("country.not_eligible", "target_country", f"{proposal['target_country']} is not eligible")
    return failed


def submit_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    existing = uow.session.execute(
        select(ProposalRow).where(ProposalRow.idempotency_key == data["idempotency_key"])).scalar_one_or_none()
    if existing is not None:
        return proposal_view(existing)  # the same submission again: one proposal
    call = _call(uow, data["call_id"])
    programme = _programme(uow, call.programme_id)
    violations = eligibility_violations(call, programme, data, now)
    if violations:
        raise Conflict("eligibility", f"{len(violations)} eligibility rule(s) failed", violations)
    reference = next_reference(uow, call, programme.id, data["target_country"])
    lead = next(a for a in data["applicants"] if a["role"] == "lead")
    proposal = ProposalRow(
        id=str(uuid.uuid4()), reference=reference, call_id=call.id, idempotency_key=data["idempotency_key"],
        window=data["window"], target_country=data["target_country"], status="submitted",
        ec_amount_requested=data["ec_amount_requested_eur"], data={}, submitted_at=now,
    )
    event = uow.emit("proposal_submitted", {
        "proposal_id": proposal.id, "reference": reference, "call_id": call.id, "programme_id": programme.id,
        "window": data["window"], "target_country": data["target_country"], "title": data["title"],
        "summary": data["summary"], "duration_months": data["duration_months"], "applicant_type": lead["type"],
        "lead_organisation": lead["name"], "applicants": data["applicants"], "budget": data["budget"],
        "total_eligible_cost_eur": data["total_eligible_cost_eur"],
        "ec_amount_requested_eur": data["ec_amount_requested_eur"], "co_financing_eur": data["co_financing_eur"],
        "submitted_at": now,
    }, occurred_at=now)
    proposal.data = event.body["data"]
    uow.session.add(proposal)
    return proposal_view(proposal)


def next_reference(uow: UnitOfWork, call: CallRow, programme_id: str, country: str) -> str:
    query = select(ReferenceSequence).where(ReferenceSequence.call_id == call.id,
                                            ReferenceSequence.country == country).with_for_update()
    seq = uow.session.execute(query).scalar_one_or_none()
    if seq is None:
        seq = ReferenceSequence(call_id=call.id, country=country, last=0)
        uow.session.add(seq)
    seq.last += 1
    return f"{programme_id}-{call.year}-{country}-{seq.last:04d}"


def get_proposal(uow: UnitOfWork, proposal_id=None, reference=None) -> dict:
    query = select(ProposalRow)
    query = query.where(ProposalRow.id == proposal_id) if proposal_id else query.where(ProposalRow.reference == reference)
    row = uow.session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound("proposal", proposal_id or reference)
    return proposal_view(row)


def list_proposals(uow: UnitOfWork, call_id: str, status=None, limit=1000) -> list[dict]:
    query = select(ProposalRow).where(ProposalRow.call_id == call_id).order_by(ProposalRow.reference).limit(limit)
    if status:
        query = query.where(ProposalRow.status == status)
    return [proposal_view(row) for row in uow.session.execute(query).scalars()]


def call_view(call: CallRow) -> dict:
    return {"call_id": call.id, "programme_id": call.programme_id, "title": call.title, "status": call.status,
            "deadline": call.deadline, "min_grant_eur": call.min_grant, "max_grant_eur": call.max_grant,
            "max_ec_share": call.max_ec_share, "windows": call.windows}


def proposal_view(row: ProposalRow) -> dict:
    return {"proposal_id": row.id, "reference": row.reference, "call_id": row.call_id, "status": row.status,
            "window": row.window, "target_country": row.target_country,
            "ec_amount_requested_eur": row.ec_amount_requested, "submitted_at": row.submitted_at,
            "title": row.data.get("title")}
