"""Use cases of the calls service for programmes, calls, proposals and exclusion screening: load, call the domain,
store, emit — in the caller's unit of work. Submitting a proposal is in submission.py, evaluation and ranking in
evaluation.py."""

from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from services.common.runtime.config import REPO_ROOT
from services.common.security.roles import assessor_only
from services.common.storage.db import UnitOfWork
from services.common.values.errors import Conflict, InvalidInput, NotFound

from . import repository as store  # the writes (and the loads they lock)
from . import views  # what the RPCs return
from .domain import (
    Call,
    CallWindow,
    ConsortiumRule,
    Declaration,
    DeclaredInterest,
    ExclusionList,
    PartnerScope,
    eligible_assessors,
    profile_document,
    profile_from_dict,
    programme_from_dict,
    programme_to_dict,
)
from .domain.programme import PROGRAMMES_DIR, read_programme_file, starts_on_load
from .models import (
    AssignmentRow,
    CallRow,
    DeclarationRow,
    ExclusionListRow,
    ProgrammeRow,
    ProposalRow,
)
from .repository import CALL_FIELDS, fields_named
from .submission import emit_screened

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
    emit_screened(uow, row, now)
    return bool(hits)


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
    emit_screened(uow, row, now)
    return views.proposal_view(row, full=True)
