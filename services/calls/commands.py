"""Use cases of the calls service for programmes, calls, proposals and exclusion screening: load, call the domain,
store, emit — in the caller's unit of work. Evaluation and ranking are in evaluation.py."""

import hashlib
import json
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.common.runtime.config import REPO_ROOT
from services.common.security.roles import assessor_only
from services.common.storage.db import UnitOfWork
from services.common.values.errors import Conflict, InvalidInput, NotFound
from services.common.values.wire import wire_default

from . import repository as store  # the writes (and the loads they lock)
from . import views  # what the RPCs return
from .domain import (
    Call,
    CallWindow,
    ConsortiumRule,
    Declaration,
    DeclaredInterest,
    ExclusionEntry,
    ExclusionList,
    PartnerScope,
    Programme,
    Stage,
    call_from_dict,
    check_eligibility,
    eligible_assessors,
    profile_document,
    profile_from_dict,
    programme_from_dict,
    programme_to_dict,
    proposal_reference,
)
from .domain.programme import PROGRAMMES_DIR, read_programme_file, starts_on_load
from .models import (
    AssignmentRow,
    CallRow,
    DeclarationRow,
    ExclusionListRow,
    ProgrammeRow,
    ProposalRow,
    ReferenceSequence,
)
from .repository import CALL_FIELDS, PROPOSAL_FIELDS, fields_named

SCREENED_OK = ("unscreened", "clear", "cleared")  # may go on to evaluation


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --- programmes ------------------------------------------------------------------------------------------------


def load_programme(uow: UnitOfWork, source, now: datetime) -> dict:
    """Create or replace a programme from its definition, or from a programme file shipped with the service."""
    definition = _definition(source)
    with fields_named(prefix="programme." if isinstance(source, dict) else ""):
        programme = programme_from_dict(definition, now.date())
        row = uow.session.get(ProgrammeRow, programme.id, with_for_update=True)
        if row is not None and starts_on_load(definition):
            # its period started when the programme was first loaded: loading it again keeps that day
            programme = programme_from_dict(definition, date.fromisoformat(row.definition["period"]["start"]))
    before = None if row is None else row.definition
    if row is None:
        row = ProgrammeRow(id=programme.id, version=0)
        uow.session.add(row)
    else:
        _check_calls_still_fit(uow, programme)
    _store_programme(row, programme, now)
    uow.audit("calls.load_programme", f"programme:{programme.id}", {"before": before, "after": row.definition})
    return {**views.programme_view(row), "created": before is None}


def _definition(source) -> dict:
    """The definition sent, or the one in a programme file shipped with the service."""
    if isinstance(source, dict):
        return source
    try:
        return read_programme_file(_shipped_file(source))
    except (NotFound, OSError):  # no such file, or a name no file can have (too long, ...)
        raise NotFound("programme file", source[:200]) from None  # not the server's paths


def _shipped_file(source: str) -> Path:
    """Only files shipped under data/programmes: an RPC must not read arbitrary files of the server."""
    path = Path(source)
    if len(path.parts) == 1 and not path.suffix:
        return PROGRAMMES_DIR / f"{source.lower()}.yaml"
    if not path.is_absolute():
        path = REPO_ROOT / path  # relative to the repository, as the CLI prints it
    path = path.resolve()
    if path.parent != PROGRAMMES_DIR.resolve() or path.suffix not in (".yaml", ".yml"):
        raise InvalidInput(
            {
                "programme": [
                    f"{source!r} is not a programme file shipped in "
                    f"services/calls/data/programmes; send the definition instead"
                ]
            }
        )
    return path


def update_programme(uow: UnitOfWork, programme_id: str, changes: dict, now: datetime) -> dict:
    row = store.programme_row(uow, programme_id, lock=True)
    before = row.definition
    programme = programme_from_dict({**before, **changes}, now.date())
    _check_calls_still_fit(uow, programme)
    _store_programme(row, programme, now)
    uow.audit("calls.update_programme", f"programme:{programme_id}", {"before": before, "after": row.definition})
    return views.programme_view(row)


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
                problems.append(
                    {"call_id": row.id, "window": w.code, "problem": f"allocation below the call's {w.allocation}"}
                )
    if problems:
        raise Conflict(
            "programme.in_use", f"{len(problems)} call window(s) would no longer fit the programme", problems
        )


def get_programme(uow: UnitOfWork, programme_id: str) -> dict:
    return views.programme_view(store.programme_row(uow, programme_id))


def list_programmes(uow: UnitOfWork) -> list[dict]:
    rows = uow.session.execute(select(ProgrammeRow).order_by(ProgrammeRow.id)).scalars()
    return [views.programme_summary(row) for row in rows]


# --- calls -----------------------------------------------------------------------------------------------------


def _call_changes(data: dict) -> dict:
    """RPC names -> the domain Call's fields, for the fields present in `data`."""
    names = {
        "title": "title",
        "deadline": "deadline",
        "min_grant_eur": "min_grant",
        "max_grant_eur": "max_grant",
        "max_ec_share": "max_ec_share",
        "eligible_applicant_types": "eligible_applicant_types",
        "min_duration_months": "min_duration_months",
        "max_duration_months": "max_duration_months",
    }
    changes = {names[k]: v for k, v in data.items() if k in names}
    if data.get("windows") is not None:
        changes["windows"] = tuple(CallWindow(w["window"], w["allocation_eur"]) for w in data["windows"])
    if data.get("consortium") is not None:
        c = data["consortium"]
        changes["consortium"] = ConsortiumRule(
            c["require_eu_partner"],
            c["require_target_country_partner"],
            PartnerScope(c["partner_scope"]),
            c["max_co_applicants"],
        )
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
    return views.call_view(row)


def amend_call(uow: UnitOfWork, data: dict) -> dict:
    row = store.call_row(uow, data["call_id"], lock=True)
    call, before = store.call_of(row), row.definition
    changes = _call_changes({k: v for k, v in data.items() if k != "call_id"})
    if not changes:
        raise InvalidInput({"_schema": ["nothing to amend: give at least one field"]})
    with fields_named(CALL_FIELDS):
        call.amend(
            programme=store.programme_of(store.programme_row(uow, row.programme_id)),
            profile=store.profile_of(row),
            **changes,
        )
    store.save_call(row, call)
    uow.audit("calls.amend_call", f"call:{call.id}", {"before": before, "after": row.definition})
    return views.call_view(row)


def open_call(uow: UnitOfWork, call_id: str, now: datetime) -> dict:
    row = store.call_row(uow, call_id, lock=True)
    call = store.call_of(row)
    call.open(now)
    store.save_call(row, call)
    programme = store.programme_of(store.programme_row(uow, row.programme_id))
    uow.emit(
        "call_opened",
        {
            "call_id": call.id,
            "programme_id": programme.id,
            "programme_name": programme.name,
            "envelope_eur": programme.ec_contribution,
            "rule_profile": call.rule_profile,
            "title": call.title,
            "deadline": call.deadline,
            "min_grant_eur": call.min_grant,
            "max_grant_eur": call.max_grant,
            "max_ec_share": call.max_ec_share,
            "contingency_cap": call.contingency_cap,
            "indirect_cap": call.indirect_cap,
            "max_duration_months": call.max_duration_months,
            "programme_start": programme.period_start,
            "programme_end": programme.period_end,
            "currency_conversion": store.profile_of(row).currency_conversion,
            "windows": [
                {"window": w.code, "name": programme.window(w.code).name_en, "allocation_eur": w.allocation}
                for w in call.windows
            ],
        },
        occurred_at=now,
    )
    return views.call_view(row)


def close_call(uow: UnitOfWork, call_id: str, now: datetime) -> dict:
    """Close at or after the deadline. The row lock and the state check make a close happen once, whoever asks
    (staff or the deadline sweep of any replica)."""
    row = store.call_row(uow, call_id, lock=True)
    call = store.call_of(row)
    call.close(now)
    store.save_call(row, call)
    received = uow.session.execute(
        select(func.count())
        .select_from(ProposalRow)
        .where(ProposalRow.call_id == call_id, ProposalRow.status != "withdrawn")
    ).scalar_one()
    uow.emit("call_closed", {"call_id": call_id, "closed_at": now, "proposals": received}, occurred_at=now)
    return {**views.call_view(row), "proposals": received}


def close_due_calls(uow: UnitOfWork, now: datetime) -> list[str]:
    """The deadline sweep: every open call whose deadline has passed (a close raced by staff is skipped)."""
    due = (
        uow.session.execute(
            select(CallRow.id).where(CallRow.status == "open", CallRow.deadline < now).order_by(CallRow.deadline)
        )
        .scalars()
        .all()
    )
    closed = []
    for call_id in due:
        row = store.call_row(uow, call_id, lock=True)
        if row.status == "open" and row.deadline < now:
            close_call(uow, call_id, now)
            closed.append(call_id)
    return closed


def get_call(uow: UnitOfWork, call_id: str) -> dict:
    row = store.call_row(uow, call_id)
    counts = dict(
        uow.session.execute(
            select(ProposalRow.status, func.count()).where(ProposalRow.call_id == call_id).group_by(ProposalRow.status)
        ).all()
    )
    return {**views.call_view(row), "proposals": counts}


def list_calls(uow: UnitOfWork, programme_id=None, status=None) -> list[dict]:
    query = select(CallRow).order_by(CallRow.deadline, CallRow.id)
    if programme_id:
        query = query.where(CallRow.programme_id == programme_id)
    if status:
        query = query.where(CallRow.status == status)
    return [views.call_view(row) for row in uow.session.execute(query).scalars()]


# --- proposals -------------------------------------------------------------------------------------------------


def submit_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Idempotent by the client's key: the same key again (even concurrently) gives the same proposal.

    A first submission is the call's read (locked FOR SHARE; programme, call and exclusion list come from caches
    keyed by the row versions that read returns), the reference's upsert, the proposal's INSERT (its data and
    screening included, ON CONFLICT on the key) and the events. A key already used is answered from its proposal,
    whatever the call's state is now."""
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True, default=wire_default).encode()).hexdigest()
    try:
        created = _submit_new(uow, data, fingerprint, now)
    except (Conflict, InvalidInput, NotFound):
        uow.rollback()  # refused as a new proposal: a key already used is still answered from its proposal
        existing = _by_key(uow, data["idempotency_key"])
        if existing is None:
            raise
        return _resubmitted(existing, fingerprint)
    if created is not None:
        return created
    # the key's proposal was committed before (or concurrently, first): ours, if any, is undone
    uow.rollback()
    existing = _by_key(uow, data["idempotency_key"])
    if existing is None:  # ON CONFLICT gave way to a committed proposal, and proposals are never deleted
        raise RuntimeError(f"no proposal holds idempotency key {data['idempotency_key']!r} after a conflict on it")
    return _resubmitted(existing, fingerprint)


def _by_key(uow: UnitOfWork, key: str) -> ProposalRow | None:
    return uow.session.execute(select(ProposalRow).where(ProposalRow.idempotency_key == key)).scalar_one_or_none()


def _resubmitted(row: ProposalRow, fingerprint: str) -> dict:
    if row.request_hash != fingerprint:
        raise Conflict(
            "proposal.idempotency_key_reused",
            f"idempotency key already used for another submission ({row.reference})",
            [{"proposal_id": row.id, "reference": row.reference}],
        )
    return {**views.proposal_view(row), "created": False}


def _submit_new(uow: UnitOfWork, data: dict, fingerprint: str, now: datetime) -> dict | None:
    """The new proposal's view, or None when its idempotency key is already taken."""
    context = _submission_context(uow, data["call_id"])
    call, programme = context.call, context.programme
    proposal_id = str(uuid.uuid4())
    proposal = store.domain_proposal({**data, "submitted_at": now}, proposal_id)
    violations = check_eligibility(call, programme, proposal, now, context.stage)
    if violations:
        raise Conflict(
            "proposal.not_eligible",
            f"{len(violations)} eligibility rule(s) failed",
            [{**v.to_dict(), "field": store.api_field(v.field, PROPOSAL_FIELDS)} for v in violations],
        )
    reference = proposal_reference(
        programme.id,
        context.year,
        proposal.target_country,
        _next_number(uow, f"{programme.id.upper()}-{context.year:04d}", proposal.target_country),
    )
    lead = proposal.lead
    assert lead is not None, "a valid proposal has exactly one lead"  # Proposal's own checks refused it otherwise
    event = uow.emit(
        "proposal_submitted",
        {
            "proposal_id": proposal_id,
            "reference": reference,
            "call_id": call.id,
            "programme_id": programme.id,
            "window": proposal.window,
            "target_country": proposal.target_country,
            "title": proposal.title,
            "summary": proposal.summary,
            "duration_months": proposal.duration_months,
            "applicant_type": lead.type.value,
            "lead_organisation": lead.name,
            "applicants": data["applicants"],
            "budget": proposal.budget.to_dict(),
            "total_eligible_cost_eur": proposal.total_eligible_cost,
            "ec_amount_requested_eur": proposal.ec_amount_requested,
            "co_financing_eur": proposal.co_financing,
            "submitted_at": now,
            "logframe": proposal.logframe,
        },
        occurred_at=now,
    )
    row = ProposalRow(
        id=proposal_id,
        reference=reference,
        call_id=call.id,
        idempotency_key=data["idempotency_key"],
        request_hash=fingerprint,
        window=proposal.window,
        target_country=proposal.target_country,
        status="submitted",
        ec_amount_requested=proposal.ec_amount_requested,
        data=event.body["data"],
        submitted_at=now,
        screening="unscreened",
        screening_hits=[],
        screening_list_id=None,
        screened_at=None,
        screening_decided_by=None,
        screening_reason=None,
        withdrawn_at=None,
        withdrawal_reason=None,
    )
    if context.exclusions is not None:  # screened as it is stored; until a list is loaded it stays unscreened
        hits = context.exclusions.screen(proposal)
        row.screening = "flagged" if hits else "clear"
        row.screening_hits, row.screening_list_id, row.screened_at = [h.to_dict() for h in hits], context.list_id, now
    # a transient row: written by one INSERT (not the session's flush), which gives way to the key's proposal
    table = ProposalRow.__table__
    inserted = (
        uow.session.connection()
        .execute(_statements(uow).insert_proposal, {c.key: getattr(row, c.key) for c in table.columns})
        .first()
    )
    if inserted is None:
        return None
    if context.exclusions is not None:
        _emit_screened(uow, row, now)
    return {**views.proposal_view(row), "created": True}


class _Statements:
    """The submission's statements, built once per dialect (their values are parameters, so SQLAlchemy compiles each
    once and caches it)."""

    def __init__(self, insert, versioned: bool):
        # on PostgreSQL the rows' xmin: renewed by every change of a row, whoever makes it
        versions: tuple = (
            (
                literal_column("calls.xmin").label("call_version"),
                literal_column("programmes.xmin").label("programme_version"),
            )
            if versioned
            else ()
        )
        latest_list = select(ExclusionListRow.id, ExclusionListRow.loaded_at).order_by(ExclusionListRow.id.desc())
        self.read_call = (
            select(
                CallRow.year,
                CallRow.programme_id,
                *versions,
                latest_list.with_only_columns(ExclusionListRow.id).limit(1).scalar_subquery().label("list_id"),
                latest_list.with_only_columns(ExclusionListRow.loaded_at)
                .limit(1)
                .scalar_subquery()
                .label("list_loaded_at"),
            )
            .join(ProgrammeRow, ProgrammeRow.id == CallRow.programme_id)
            .where(CallRow.id == bindparam("call_id"))
            .with_for_update(read=True, of=CallRow)
        )
        self.read_definitions = (
            select(CallRow.definition, CallRow.profile, ProgrammeRow.definition, *versions)
            .join(ProgrammeRow, ProgrammeRow.id == CallRow.programme_id)
            .where(CallRow.id == bindparam("call_id"))
        )
        proposals, sequences = ProposalRow.__table__, ReferenceSequence.__table__
        self.insert_proposal = (
            insert(proposals).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(proposals.c.id)
        )
        self.next_number = (
            insert(sequences)
            .values(prefix=bindparam("prefix"), country=bindparam("country"), last=1)
            .on_conflict_do_update(index_elements=["prefix", "country"], set_={"last": sequences.c.last + 1})
            .returning(sequences.c.last)
        )


_STATEMENTS = {"postgresql": _Statements(pg_insert, versioned=True), "sqlite": _Statements(sqlite_insert, False)}


def _statements(uow: UnitOfWork) -> _Statements:
    return _STATEMENTS[uow.session.get_bind().dialect.name]


class SubmissionContext(NamedTuple):
    call: Call
    programme: Programme
    stage: Stage  # the furthest stage a submission is checked for
    year: int
    exclusions: ExclusionList | None
    list_id: int | None


_CALL_CONTEXTS: dict[tuple, tuple[Call, Programme, Stage]] = {}  # (database, call, row versions) -> definitions
_EXCLUSION_LISTS: dict[
    tuple, ExclusionList
] = {}  # parsed lists by (database, id, loaded_at): loaded lists never change


def _submission_context(uow: UnitOfWork, call_id: str) -> SubmissionContext:
    """The call (locked FOR SHARE: a close waits for submissions in flight), its programme and the latest exclusion
    list, in one statement that reads the rows' versions and the list's id. On PostgreSQL the versions are the
    rows' xmin, which every change of a row (by any writer) renews: the domain objects built from a version are
    reused for it, and a call closed or amended, a programme changed, a list loaded is seen by the next
    submission. SQLite has no such version: there the definitions are read each time."""
    session = uow.session
    postgres = session.get_bind().dialect.name == "postgresql"
    statements = _statements(uow)
    with session.no_autoflush:
        found = session.connection().execute(statements.read_call, {"call_id": call_id}).first()
        if found is None:
            raise NotFound("call", call_id)
        database = uow.core.url
        key = (database, call_id, found.call_version, found.programme_version) if postgres else None
        cached = _CALL_CONTEXTS.get(key) if key else None
        if cached is None:
            call_definition, profile, programme_definition, *read_versions = session.execute(
                statements.read_definitions, {"call_id": call_id}
            ).one()
            grids = profile_from_dict(profile).grids
            cached = (
                call_from_dict(call_definition),
                programme_from_dict(programme_definition),
                Stage.FULL_APPLICATION if Stage.FULL_APPLICATION in grids else Stage.CONCEPT_NOTE,
            )
            if postgres:
                _remember(_CALL_CONTEXTS, (database, call_id, *read_versions), cached)
        exclusions = None
        if found.list_id is not None:
            list_key = (database, found.list_id, found.list_loaded_at)
            exclusions = _EXCLUSION_LISTS.get(list_key)
            if exclusions is None:
                entries = session.execute(
                    select(ExclusionListRow.entries).where(ExclusionListRow.id == found.list_id)
                ).scalar_one()
                exclusions = ExclusionList(ExclusionEntry(**entry) for entry in entries)
                _remember(_EXCLUSION_LISTS, list_key, exclusions, 4)
    call, programme, stage = cached
    return SubmissionContext(call, programme, stage, found.year, exclusions, found.list_id)


def _remember(cache: dict, key, value, size: int = 64) -> None:
    if len(cache) >= size:
        cache.clear()  # old versions are never asked for again: dropping them all is simplest
    cache[key] = value


def _next_number(uow: UnitOfWork, prefix: str, country: str) -> int:
    """One atomic upsert: concurrent submissions queue on the sequence row and never share a number."""
    return (
        uow.session.connection()
        .execute(_statements(uow).next_number, {"prefix": prefix, "country": country})
        .scalar_one()
    )


def withdraw_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    row = store.proposal_row(uow, data["proposal_id"], lock=True)
    call = store.call_of(store.call_row(uow, row.call_id, shared=True))
    if row.status != "submitted":
        raise Conflict(
            "proposal.not_submitted",
            f"proposal {row.reference} is {row.status}",
            [{"proposal_id": row.id, "status": row.status}],
        )
    if not call.is_open_for_submission(now):
        raise Conflict(
            "call.deadline_passed",
            "a proposal can only be withdrawn before the call's deadline",
            [{"call_id": call.id, "status": call.status.value, "deadline": call.deadline.isoformat()}],
        )
    row.status, row.withdrawn_at, row.withdrawal_reason = "withdrawn", now, data["reason"]
    uow.emit(
        "proposal_withdrawn",
        {
            "proposal_id": row.id,
            "reference": row.reference,
            "call_id": row.call_id,
            "reason": data["reason"],
            "withdrawn_at": now,
        },
        occurred_at=now,
    )
    return views.proposal_view(row)


def get_proposal(uow: UnitOfWork, proposal_id=None, reference=None) -> dict:
    """An assessor (with no other reading role) sees only a proposal assigned to them and free of any interest
    they declared; any other is NotFound to them, as if it did not exist."""
    if proposal_id:
        row = store.proposal_row(uow, proposal_id)
    else:
        found = uow.session.execute(select(ProposalRow).where(ProposalRow.reference == reference)).scalar_one_or_none()
        if found is None:
            raise NotFound("proposal", reference)
        row = found
    if assessor_only(uow.identity.roles) and not assessor_may_see(uow, uow.identity.user, row):
        raise NotFound("proposal", proposal_id or reference)
    return views.proposal_view(row, full=True)


def list_proposals(uow: UnitOfWork, data: dict) -> list[dict]:
    store.call_row(uow, data["call_id"])
    query = select(ProposalRow).where(ProposalRow.call_id == data["call_id"])
    for column, key in (
        (ProposalRow.status, "status"),
        (ProposalRow.window, "window"),
        (ProposalRow.target_country, "country"),
        (ProposalRow.screening, "screening"),
    ):
        if data[key]:
            query = query.where(column == data[key])
    restricted = assessor_only(uow.identity.roles)
    if restricted:  # their assignments only
        query = query.where(
            ProposalRow.id.in_(
                select(AssignmentRow.proposal_id).where(
                    AssignmentRow.assessor == uow.identity.user, AssignmentRow.status == "active"
                )
            )
        )
    query = query.order_by(ProposalRow.reference).limit(data["limit"])
    rows = uow.session.execute(query).scalars()
    return [views.proposal_view(row) for row in rows if not restricted or assessor_may_see(uow, uow.identity.user, row)]


def assessor_may_see(uow: UnitOfWork, assessor: str, row: ProposalRow) -> bool:
    """Assigned (not recused) and not in conflict with the assessor's current declaration for the call."""
    assigned = (
        uow.session.execute(
            select(AssignmentRow.id)
            .where(
                AssignmentRow.proposal_id == row.id,
                AssignmentRow.assessor == assessor,
                AssignmentRow.status == "active",
            )
            .limit(1)
        ).first()
        is not None
    )
    if not assigned:
        return False
    declared = uow.session.get(DeclarationRow, (row.call_id, assessor))
    if declared is None:
        return True
    declaration = Declaration(
        assessor, tuple(DeclaredInterest(i["name"], i["registration_number"]) for i in declared.interests)
    )
    return bool(eligible_assessors(store.stored_proposal(row), [assessor], [declaration]))


# --- exclusion screening ---------------------------------------------------------------------------------------


def load_exclusion_list(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """The new list replaces the old one for future screenings, and screens every proposal not screened yet."""
    with fields_named(prefix="csv."):
        exclusions = ExclusionList.from_csv(data["csv"])
    row = ExclusionListRow(
        source=data["source"],
        loaded_at=now,
        loaded_by=uow.identity.user,
        size=len(exclusions),
        entries=[
            {"name": e.name, "registration_number": e.registration_number, "reason": e.reason, "line": e.line}
            for e in exclusions.entries
        ],
    )
    uow.session.add(row)
    uow.session.flush()
    pending = (
        uow.session.execute(
            select(ProposalRow)
            .join(CallRow, CallRow.id == ProposalRow.call_id)
            .where(
                ProposalRow.status == "submitted",
                ProposalRow.screening == "unscreened",
                CallRow.status.in_(("open", "closed")),
            )
            .order_by(ProposalRow.submitted_at)
            .with_for_update(of=ProposalRow)
        )
        .scalars()
        .all()
    )
    flagged = [proposal.reference for proposal in pending if _screen(uow, proposal, row.id, exclusions, now)]
    uow.audit("calls.load_exclusion_list", f"exclusion_list:{row.id}", {"source": row.source, "entries": row.size})
    return {"list_id": row.id, "entries": row.size, "source": row.source, "screened": len(pending), "flagged": flagged}


def _screen(uow: UnitOfWork, row: ProposalRow, list_id: int, exclusions: ExclusionList, now: datetime) -> bool:
    hits = exclusions.screen(store.stored_proposal(row))
    row.screening = "flagged" if hits else "clear"
    row.screening_hits, row.screening_list_id, row.screened_at = [h.to_dict() for h in hits], list_id, now
    _emit_screened(uow, row, now)
    return bool(hits)


def _emit_screened(uow: UnitOfWork, row: ProposalRow, now: datetime) -> None:
    hits = [
        {
            "applicant": h["applicant_name"],
            "matched": h["entry_name"] or h["entry_registration_number"],
            "by": "registration_number" if "registration_number" in h["matched_on"] else "name",
            "reason": h["reason"],
        }
        for h in row.screening_hits or []
    ]
    uow.emit(
        "proposal_screened",
        {
            "proposal_id": row.id,
            "reference": row.reference,
            "call_id": row.call_id,
            "outcome": row.screening,
            "hits": hits,
            "reason": row.screening_reason or "",
        },
        occurred_at=now,
    )


def decide_screening(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Staff decide on a flagged proposal: cleared (goes on to evaluation) or excluded (goes no further)."""
    row = store.proposal_row(uow, data["proposal_id"], lock=True)
    if row.screening != "flagged":
        raise Conflict(
            "screening.not_flagged",
            f"proposal {row.reference} is {row.screening}, not flagged",
            [{"proposal_id": row.id, "screening": row.screening}],
        )
    if row.status != "submitted":
        raise Conflict(
            "proposal.not_submitted",
            f"proposal {row.reference} is {row.status}",
            [{"proposal_id": row.id, "status": row.status}],
        )
    row.screening, row.screening_reason = data["outcome"], data["reason"]
    row.screening_decided_by = uow.identity.user
    if data["outcome"] == "excluded":
        row.status = "excluded"
    _emit_screened(uow, row, now)
    return views.proposal_view(row, full=True)
