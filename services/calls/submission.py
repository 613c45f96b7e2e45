"""Submitting a proposal: the calls service's hot path (a deadline rush is thousands of these in an hour).

On PostgreSQL a first submission to a call is read once: the call, its programme and the latest exclusion list,
with the rows' versions. Every later submission to that call is checked against those definitions in Python and
written by one statement in its own transaction (submission_write.py) that checks the versions are still the rows',
takes the reference's number, inserts the proposal and writes its events and audit rows: one round trip. When that
statement writes nothing (a call changed, a key already used, the numbers of a year used up), or the definitions
held refuse the proposal, it is submitted again the first way, which is the reference for every outcome. SQLite
always goes the first way."""

import hashlib
import json
import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.common.storage.db import UnitOfWork, statements_commit_themselves
from services.common.values.errors import Conflict, InvalidInput, NotFound
from services.common.values.wire import wire_default

from . import repository as store
from . import views
from .domain import (
    Call,
    ExclusionEntry,
    ExclusionList,
    Programme,
    Proposal,
    Stage,
    call_from_dict,
    check_eligibility,
    profile_from_dict,
    programme_from_dict,
    proposal_reference,
)
from .models import CallRow, ExclusionListRow, ProgrammeRow, ProposalRow, ReferenceSequence
from .repository import PROPOSAL_FIELDS
from .submission_write import RowVersions, write_submission


def submit_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Idempotent by the client's key: the same key again (even concurrently) gives the same proposal.

    Written in one statement when the call's definitions are known (see the module's docstring); otherwise, and
    whenever that statement writes nothing, the call's read (locked FOR SHARE; programme, call and exclusion list
    come from caches keyed by the row versions that read returns), the reference's upsert, the proposal's INSERT
    (its data and screening included, ON CONFLICT on the key) and the events. A key already used is answered from
    its proposal, whatever the call's state is now."""
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True, default=wire_default).encode()).hexdigest()
    created = _submit_in_one_statement(uow, data, fingerprint, now)
    if created is not None:
        return created
    uow.rollback()  # the first way starts a transaction of its own
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
    proposal = _eligible_proposal(context, data, now)
    reference = proposal_reference(
        context.programme.id,
        context.year,
        proposal.target_country,
        _next_number(uow, _reference_prefix(context), proposal.target_country),
    )
    row = _proposal_row(uow, context, proposal, data, fingerprint, reference, now)
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
        emit_screened(uow, row, now)
    return {**views.proposal_view(row), "created": True}


def _submit_in_one_statement(uow: UnitOfWork, data: dict, fingerprint: str, now: datetime) -> dict | None:
    """The new proposal's view, or None when the statement wrote nothing (or the call's definitions are not known
    to this process, or they refuse the proposal): the caller then goes the first way."""
    known = _KNOWN_CALLS.get((uow.core.url, data["call_id"]))
    if known is None:
        return None
    context, versions = known
    try:
        proposal = _eligible_proposal(context, data, now)
    except (Conflict, InvalidInput, NotFound):
        return None  # refused on definitions that may be stale: the first way refuses it on the rows as they are
    # the reference is numbered by the statement: until then the proposal, its events and its audit rows carry a
    # stand-in no submitted text can hold (it quotes the proposal's id, drawn after the text was received)
    stand_in = f"reference of {proposal.id}"
    row = _proposal_row(uow, context, proposal, data, fingerprint, stand_in, now)
    if context.exclusions is not None:
        emit_screened(uow, row, now)
    events, audit = uow.take_event_rows()
    # the statement is its own transaction: the unit of work's commit then has nothing left to send
    try:
        with statements_commit_themselves(uow.session.connection()) as connection:
            reference = write_submission(
                connection,
                {c.key: getattr(row, c.key) for c in ProposalRow.__table__.columns if c.key != "reference"},
                events,
                audit,
                stand_in=stand_in,
                prefix=_reference_prefix(context),
                versions=versions,
            )
    except IntegrityError:  # the key's submission committed meanwhile: nothing was written
        return None
    if reference is None:
        return None
    row.reference, row.data["reference"] = reference, reference
    return {**views.proposal_view(row), "created": True}


def _eligible_proposal(context: "SubmissionContext", data: dict, now: datetime) -> Proposal:
    """The proposal as the domain sees it, with a new id; Conflict naming every eligibility rule it fails."""
    proposal = store.domain_proposal({**data, "submitted_at": now}, str(uuid.uuid4()))
    violations = check_eligibility(context.call, context.programme, proposal, now, context.stage)
    if violations:
        raise Conflict(
            "proposal.not_eligible",
            f"{len(violations)} eligibility rule(s) failed",
            [{**v.to_dict(), "field": store.api_field(v.field, PROPOSAL_FIELDS)} for v in violations],
        )
    return proposal


def _reference_prefix(context: "SubmissionContext") -> str:
    return f"{context.programme.id.upper()}-{context.year:04d}"


def _proposal_row(
    uow: UnitOfWork,
    context: "SubmissionContext",
    proposal: Proposal,
    data: dict,
    fingerprint: str,
    reference: str,
    now: datetime,
) -> ProposalRow:
    """The proposal's row (not added to the session) and its proposal_submitted event, emitted."""
    call, programme = context.call, context.programme
    lead = proposal.lead
    assert lead is not None, "a valid proposal has exactly one lead"  # Proposal's own checks refused it otherwise
    event = uow.emit(
        "proposal_submitted",
        {
            "proposal_id": proposal.id,
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
        id=proposal.id,
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
    return row


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


_EXCLUSION_LISTS: dict[
    tuple, ExclusionList
] = {}  # parsed lists by (database, id, loaded_at): loaded lists never change
# by (database, call): the context the call's last submission was checked against and the versions its definitions
# were built from; the first way reuses the definitions while the rows keep those versions, and the one-statement
# write checks them against the rows
_KNOWN_CALLS: dict[tuple, tuple[SubmissionContext, RowVersions]] = {}


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
        versions = RowVersions(found.call_version, found.programme_version, found.list_id) if postgres else None
        known = _KNOWN_CALLS.get((database, call_id)) if versions else None
        if known is not None and versions and known[1][:2] == versions[:2]:
            call, programme, stage = known[0].call, known[0].programme, known[0].stage
        else:
            read = session.execute(statements.read_definitions, {"call_id": call_id}).one()
            call_definition, profile, programme_definition = read[:3]
            grids = profile_from_dict(profile).grids
            call, programme = call_from_dict(call_definition), programme_from_dict(programme_definition)
            stage = Stage.FULL_APPLICATION if Stage.FULL_APPLICATION in grids else Stage.CONCEPT_NOTE
            if versions:  # the versions of the rows just read, which may be newer than the call's read saw
                versions = RowVersions(read.call_version, read.programme_version, found.list_id)
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
    context = SubmissionContext(call, programme, stage, found.year, exclusions, found.list_id)
    if versions:  # the next submission to this call is written in one statement that checks these versions
        _remember(_KNOWN_CALLS, (database, call_id), (context, versions))
    return context


def _remember(cache: dict, key, value, size: int = 64) -> None:
    if len(cache) >= size:
        cache.clear()  # what is dropped is read again once: dropping it all is simplest
    cache[key] = value


def _next_number(uow: UnitOfWork, prefix: str, country: str) -> int:
    """One atomic upsert: concurrent submissions queue on the sequence row and never share a number."""
    return (
        uow.session.connection()
        .execute(_statements(uow).next_number, {"prefix": prefix, "country": country})
        .scalar_one()
    )


def emit_screened(uow: UnitOfWork, row: ProposalRow, now: datetime) -> None:
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
