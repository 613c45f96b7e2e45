"""Use cases of the calls service for programmes, calls, proposals and exclusion screening: load, call the domain,
store, emit — in the caller's unit of work. Evaluation and ranking are in evaluation.py."""
import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from services.common.db import UnitOfWork
from services.common.config import REPO_ROOT
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.wire import to_wire

from . import store
from .domain import (
    Call, CallWindow, ConsortiumRule, ExclusionEntry, ExclusionList, PartnerScope, check_eligibility,
    load_programme as load_programme_file, profile_document, profile_from_dict, programme_from_dict,
    programme_to_dict, proposal_reference,
)
from .domain.programme import PROGRAMMES_DIR
from .models import CallRow, ExclusionListRow, ProgrammeRow, ProposalRow, ReferenceSequence
from .store import CALL_FIELDS, PROPOSAL_FIELDS, fields_named

SCREENED_OK = ("unscreened", "clear", "cleared")  # may go on to evaluation


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --- programmes ------------------------------------------------------------------------------------------------

def load_programme(uow: UnitOfWork, source, now: datetime) -> dict:
    """Create or replace a programme from its definition, or from a programme file shipped with the service."""
    if isinstance(source, dict):
        with fields_named(prefix="programme."):
            programme = programme_from_dict(source)
    else:
        try:
            programme = load_programme_file(_shipped_file(source))
        except (NotFound, OSError):  # no such file, or a name no file can have (too long, ...)
            raise NotFound("programme file", source[:200]) from None  # not the server's paths
    row = uow.session.get(ProgrammeRow, programme.id, with_for_update=True)
    before = None if row is None else row.definition
    if row is None:
        row = ProgrammeRow(id=programme.id, version=0)
        uow.session.add(row)
    else:
        _check_calls_still_fit(uow, programme)
    _store_programme(row, programme, now)
    uow.audit("calls.load_programme", f"programme:{programme.id}", {"before": before, "after": row.definition})
    return {**store.programme_view(row), "created": before is None}


def _shipped_file(source: str) -> Path:
    """Only files shipped under data/programmes: an RPC must not read arbitrary files of the server."""
    path = Path(source)
    if len(path.parts) == 1 and not path.suffix:
        return PROGRAMMES_DIR / f"{source.lower()}.yaml"
    if not path.is_absolute():
        path = REPO_ROOT / path  # relative to the repository, as the CLI prints it
    path = path.resolve()
    if path.parent != PROGRAMMES_DIR.resolve() or path.suffix not in (".yaml", ".yml"):
        raise InvalidInput({"programme": [f"{source!r} is not a programme file shipped in "
                                          f"services/calls/data/programmes; send the definition instead"]})
    return path


def update_programme(uow: UnitOfWork, programme_id: str, changes: dict, now: datetime) -> dict:
    row = store.programme_row(uow, programme_id, lock=True)
    before = row.definition
    programme = programme_from_dict({**before, **changes})
    _check_calls_still_fit(uow, programme)
    _store_programme(row, programme, now)
    uow.audit("calls.update_programme", f"programme:{programme_id}", {"before": before, "after": row.definition})
    return store.programme_view(row)


def _store_programme(row: ProgrammeRow, programme, now: datetime) -> None:
    row.name, row.ec_contribution = programme.name, programme.ec_contribution
    row.definition = programme_to_dict(programme)
    row.version, row.updated_at = (row.version or 0) + 1, now


def _check_calls_still_fit(uow: UnitOfWork, programme) -> None:
    """A changed programme must still hold its calls: each call window in it, with at least its allocation."""
    problems = []
    for row in uow.session.execute(select(CallRow).where(CallRow.programme_id == programme.id)).scalars():
        for w in store.call_of(row).windows:
            if not programme.has_window(w.code):
                problems.append({"call_id": row.id, "window": w.code, "problem": "window removed"})
            elif programme.window(w.code).allocation < w.allocation:
                problems.append({"call_id": row.id, "window": w.code,
                                 "problem": f"allocation below the call's {w.allocation}"})
    if problems:
        raise Conflict("programme.in_use", f"{len(problems)} call window(s) would no longer fit the programme",
                       problems)


def get_programme(uow: UnitOfWork, programme_id: str) -> dict:
    return store.programme_view(store.programme_row(uow, programme_id))


def list_programmes(uow: UnitOfWork) -> list[dict]:
    rows = uow.session.execute(select(ProgrammeRow).order_by(ProgrammeRow.id)).scalars()
    return [store.programme_summary(row) for row in rows]


# --- calls -----------------------------------------------------------------------------------------------------

def _call_changes(data: dict) -> dict:
    """RPC names -> the domain Call's fields, for the fields present in `data`."""
    names = {"title": "title", "deadline": "deadline", "min_grant_eur": "min_grant", "max_grant_eur": "max_grant",
             "max_ec_share": "max_ec_share", "eligible_applicant_types": "eligible_applicant_types",
             "min_duration_months": "min_duration_months", "max_duration_months": "max_duration_months"}
    changes = {names[k]: v for k, v in data.items() if k in names}
    if data.get("windows") is not None:
        changes["windows"] = tuple(CallWindow(w["window"], w["allocation_eur"]) for w in data["windows"])
    if data.get("consortium") is not None:
        c = data["consortium"]
        changes["consortium"] = ConsortiumRule(c["require_eu_partner"], c["require_target_country_partner"],
                                               PartnerScope(c["partner_scope"]), c["max_co_applicants"])
    return changes


def create_call(uow: UnitOfWork, data: dict) -> dict:
    programme_row = store.programme_row(uow, data["programme_id"])
    if uow.session.get(CallRow, data["call_id"]) is not None:
        raise Conflict("call.exists", f"call {data['call_id']} already exists", [{"call_id": data["call_id"]}])
    programme = store.programme_of(programme_row)
    profile = profile_document(programme.rule_profile)
    changes = {k: v for k, v in _call_changes(data).items() if v is not None}  # unset: the profile's default
    with fields_named(CALL_FIELDS):
        call = Call.create(id=data["call_id"], programme=programme, profile=profile_from_dict(profile), **changes)
    row = CallRow(id=call.id, programme_id=programme.id, profile=profile)
    store.save_call(row, call)
    uow.session.add(row)
    uow.audit("calls.create_call", f"call:{call.id}", {"after": row.definition})
    return store.call_view(row)


def amend_call(uow: UnitOfWork, data: dict) -> dict:
    row = store.call_row(uow, data["call_id"], lock=True)
    call, before = store.call_of(row), row.definition
    changes = _call_changes({k: v for k, v in data.items() if k != "call_id"})
    if not changes:
        raise InvalidInput({"_schema": ["nothing to amend: give at least one field"]})
    with fields_named(CALL_FIELDS):
        call.amend(programme=store.programme_of(store.programme_row(uow, row.programme_id)),
                   profile=store.profile_of(row), **changes)
    store.save_call(row, call)
    uow.audit("calls.amend_call", f"call:{call.id}", {"before": before, "after": row.definition})
    return store.call_view(row)


def open_call(uow: UnitOfWork, call_id: str, now: datetime) -> dict:
    row = store.call_row(uow, call_id, lock=True)
    call = store.call_of(row)
    call.open(now)
    store.save_call(row, call)
    programme = store.programme_of(store.programme_row(uow, row.programme_id))
    uow.emit("call_opened", {
        "call_id": call.id, "programme_id": programme.id, "programme_name": programme.name,
        "envelope_eur": programme.ec_contribution, "rule_profile": call.rule_profile, "title": call.title,
        "deadline": call.deadline, "min_grant_eur": call.min_grant, "max_grant_eur": call.max_grant,
        "max_ec_share": call.max_ec_share,
        "windows": [{"window": w.code, "name": programme.window(w.code).name_en, "allocation_eur": w.allocation}
                    for w in call.windows],
    }, occurred_at=now)
    return store.call_view(row)


def close_call(uow: UnitOfWork, call_id: str, now: datetime) -> dict:
    """Close at or after the deadline. The row lock and the state check make a close happen once, whoever asks
    (staff or the deadline sweep of any replica)."""
    row = store.call_row(uow, call_id, lock=True)
    call = store.call_of(row)
    call.close(now)
    store.save_call(row, call)
    received = uow.session.execute(select(func.count()).select_from(ProposalRow).where(
        ProposalRow.call_id == call_id, ProposalRow.status != "withdrawn")).scalar_one()
    uow.emit("call_closed", {"call_id": call_id, "closed_at": now, "proposals": received}, occurred_at=now)
    return {**store.call_view(row), "proposals": received}


def close_due_calls(uow: UnitOfWork, now: datetime) -> list[str]:
    """The deadline sweep: every open call whose deadline has passed (a close raced by staff is skipped)."""
    due = uow.session.execute(select(CallRow.id).where(CallRow.status == "open", CallRow.deadline < now)
                              .order_by(CallRow.deadline)).scalars().all()
    closed = []
    for call_id in due:
        row = store.call_row(uow, call_id, lock=True)
        if row.status == "open" and row.deadline < now:
            close_call(uow, call_id, now)
            closed.append(call_id)
    return closed


def get_call(uow: UnitOfWork, call_id: str) -> dict:
    row = store.call_row(uow, call_id)
    counts = dict(uow.session.execute(select(ProposalRow.status, func.count()).where(
        ProposalRow.call_id == call_id).group_by(ProposalRow.status)).all())
    return {**store.call_view(row), "proposals": counts}


def list_calls(uow: UnitOfWork, programme_id=None, status=None) -> list[dict]:
    query = select(CallRow).order_by(CallRow.deadline, CallRow.id)
    if programme_id:
        query = query.where(CallRow.programme_id == programme_id)
    if status:
        query = query.where(CallRow.status == status)
    return [store.call_view(row) for row in uow.session.execute(query).scalars()]


# --- proposals -------------------------------------------------------------------------------------------------

def submit_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Idempotent by the client's key: the same key again (even concurrently) gives the same proposal."""
    fingerprint = hashlib.sha256(json.dumps(to_wire(data), sort_keys=True).encode()).hexdigest()
    existing = _by_key(uow, data["idempotency_key"])
    if existing is not None:
        return _resubmitted(existing, fingerprint)
    try:
        return _submit_new(uow, data, fingerprint, now)
    except IntegrityError:
        # a concurrent submission with the same key committed first: ours is undone, theirs is the answer
        uow.rollback()
        existing = _by_key(uow, data["idempotency_key"])
        if existing is None:
            raise
        return _resubmitted(existing, fingerprint)


def _by_key(uow: UnitOfWork, key: str) -> ProposalRow | None:
    return uow.session.execute(select(ProposalRow).where(ProposalRow.idempotency_key == key)).scalar_one_or_none()


def _resubmitted(row: ProposalRow, fingerprint: str) -> dict:
    if row.request_hash != fingerprint:
        raise Conflict("proposal.idempotency_key_reused",
                       f"idempotency key already used for another submission ({row.reference})",
                       [{"proposal_id": row.id, "reference": row.reference}])
    return store.proposal_view(row)


def _submit_new(uow: UnitOfWork, data: dict, fingerprint: str, now: datetime) -> dict:
    call_row = store.call_row(uow, data["call_id"], shared=True)  # a close waits for submissions in flight
    call = store.call_of(call_row)
    programme = store.programme_of(store.programme_row(uow, call_row.programme_id))
    proposal_id = str(uuid.uuid4())
    proposal = store.domain_proposal({**data, "submitted_at": now}, proposal_id)
    violations = check_eligibility(call, programme, proposal, now)
    if violations:
        raise Conflict("proposal.not_eligible", f"{len(violations)} eligibility rule(s) failed",
                       [{**v.to_dict(), "field": store.api_field(v.field, PROPOSAL_FIELDS)} for v in violations])
    reference = proposal_reference(programme.id, call_row.year, proposal.target_country,
                                   _next_number(uow, f"{programme.id.upper()}-{call_row.year:04d}",
                                                proposal.target_country))
    row = ProposalRow(id=proposal_id, reference=reference, call_id=call.id, idempotency_key=data["idempotency_key"],
                      request_hash=fingerprint, window=proposal.window, target_country=proposal.target_country,
                      status="submitted", ec_amount_requested=proposal.ec_amount_requested, data={},
                      submitted_at=now, screening="unscreened", screening_hits=[])
    uow.session.add(row)
    uow.session.flush()  # the idempotency key's unique constraint speaks here, before any event is written
    lead = proposal.lead
    event = uow.emit("proposal_submitted", {
        "proposal_id": proposal_id, "reference": reference, "call_id": call.id, "programme_id": programme.id,
        "window": proposal.window, "target_country": proposal.target_country, "title": proposal.title,
        "summary": proposal.summary, "duration_months": proposal.duration_months, "applicant_type": lead.type.value,
        "lead_organisation": lead.name, "applicants": data["applicants"], "budget": proposal.budget.to_dict(),
        "total_eligible_cost_eur": proposal.total_eligible_cost,
        "ec_amount_requested_eur": proposal.ec_amount_requested, "co_financing_eur": proposal.co_financing,
        "submitted_at": now,
    }, occurred_at=now)
    row.data = event.body["data"]
    exclusions = _current_exclusion_list(uow)
    if exclusions is not None:
        _screen(uow, row, *exclusions, now)
    return store.proposal_view(row)


def _next_number(uow: UnitOfWork, prefix: str, country: str) -> int:
    """One atomic upsert: concurrent submissions queue on the sequence row and never share a number."""
    dialect = uow.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ReferenceSequence).values(prefix=prefix, country=country, last=1)
    statement = statement.on_conflict_do_update(index_elements=["prefix", "country"],
                                                set_={"last": ReferenceSequence.last + 1})
    return uow.session.execute(statement.returning(ReferenceSequence.last)).scalar_one()


def withdraw_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    row = store.proposal_row(uow, data["proposal_id"], lock=True)
    call = store.call_of(store.call_row(uow, row.call_id, shared=True))
    if row.status != "submitted":
        raise Conflict("proposal.not_submitted", f"proposal {row.reference} is {row.status}",
                       [{"proposal_id": row.id, "status": row.status}])
    if not call.is_open_for_submission(now):
        raise Conflict("call.deadline_passed", "a proposal can only be withdrawn before the call's deadline",
                       [{"call_id": call.id, "status": call.status.value, "deadline": call.deadline.isoformat()}])
    row.status, row.withdrawn_at, row.withdrawal_reason = "withdrawn", now, data["reason"]
    uow.emit("proposal_withdrawn", {"proposal_id": row.id, "reference": row.reference, "call_id": row.call_id,
                                    "reason": data["reason"], "withdrawn_at": now}, occurred_at=now)
    return store.proposal_view(row)


def get_proposal(uow: UnitOfWork, proposal_id=None, reference=None) -> dict:
    if proposal_id:
        return store.proposal_view(store.proposal_row(uow, proposal_id), full=True)
    row = uow.session.execute(select(ProposalRow).where(ProposalRow.reference == reference)).scalar_one_or_none()
    if row is None:
        raise NotFound("proposal", reference)
    return store.proposal_view(row, full=True)


def list_proposals(uow: UnitOfWork, data: dict) -> list[dict]:
    store.call_row(uow, data["call_id"])
    query = select(ProposalRow).where(ProposalRow.call_id == data["call_id"])
    for column, key in ((ProposalRow.status, "status"), (ProposalRow.window, "window"),
                        (ProposalRow.target_country, "country"), (ProposalRow.screening, "screening")):
        if data[key]:
            query = query.where(column == data[key])
    query = query.order_by(ProposalRow.reference).limit(data["limit"])
    return [store.proposal_view(row) for row in uow.session.execute(query).scalars()]


# --- exclusion screening ---------------------------------------------------------------------------------------

def load_exclusion_list(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """The new list replaces the old one for future screenings, and screens every proposal not screened yet."""
    with fields_named(prefix="csv."):
        exclusions = ExclusionList.from_csv(data["csv"])
    row = ExclusionListRow(source=data["source"], loaded_at=now, loaded_by=uow.identity.user, size=len(exclusions),
                           entries=[{"name": e.name, "registration_number": e.registration_number,
                                     "reason": e.reason, "line": e.line} for e in exclusions.entries])
    uow.session.add(row)
    uow.session.flush()
    pending = uow.session.execute(
        select(ProposalRow).join(CallRow, CallRow.id == ProposalRow.call_id)
        .where(ProposalRow.status == "submitted", ProposalRow.screening == "unscreened",
               CallRow.status.in_(("open", "closed")))
        .order_by(ProposalRow.submitted_at).with_for_update(of=ProposalRow)).scalars().all()
    flagged = [proposal.reference for proposal in pending if _screen(uow, proposal, row.id, exclusions, now)]
    uow.audit("calls.load_exclusion_list", f"exclusion_list:{row.id}", {"source": row.source, "entries": row.size})
    return {"list_id": row.id, "entries": row.size, "source": row.source, "screened": len(pending),
            "flagged": flagged}


def _current_exclusion_list(uow: UnitOfWork):
    row = uow.session.execute(select(ExclusionListRow).order_by(ExclusionListRow.id.desc()).limit(1)).scalar()
    if row is None:
        return None  # nothing to screen against: the proposal stays "unscreened" until a list is loaded
    return row.id, ExclusionList(ExclusionEntry(**entry) for entry in row.entries)


def _screen(uow: UnitOfWork, row: ProposalRow, list_id: int, exclusions: ExclusionList, now: datetime) -> bool:
    hits = exclusions.screen(store.stored_proposal(row))
    row.screening = "flagged" if hits else "clear"
    row.screening_hits, row.screening_list_id, row.screened_at = [h.to_dict() for h in hits], list_id, now
    _emit_screened(uow, row, now)
    return bool(hits)


def _emit_screened(uow: UnitOfWork, row: ProposalRow, now: datetime) -> None:
    hits = [{"applicant": h["applicant_name"], "matched": h["entry_name"] or h["entry_registration_number"],
             "by": "registration_number" if "registration_number" in h["matched_on"] else "name",
             "reason": h["reason"]} for h in row.screening_hits or []]
    uow.emit("proposal_screened", {"proposal_id": row.id, "reference": row.reference, "call_id": row.call_id,
                                   "outcome": row.screening, "hits": hits, "reason": row.screening_reason or ""},
             occurred_at=now)


def decide_screening(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Staff decide on a flagged proposal: cleared (goes on to evaluation) or excluded (goes no further)."""
    row = store.proposal_row(uow, data["proposal_id"], lock=True)
    if row.screening != "flagged":
        raise Conflict("screening.not_flagged", f"proposal {row.reference} is {row.screening}, not flagged",
                       [{"proposal_id": row.id, "screening": row.screening}])
    if row.status != "submitted":
        raise Conflict("proposal.not_submitted", f"proposal {row.reference} is {row.status}",
                       [{"proposal_id": row.id, "status": row.status}])
    row.screening, row.screening_reason = data["outcome"], data["reason"]
    row.screening_decided_by = uow.identity.user
    if data["outcome"] == "excluded":
        row.status = "excluded"
    _emit_screened(uow, row, now)
    return store.proposal_view(row, full=True)
