"""Between the tables and the domain: load rows (locked when a use case changes them), rebuild domain objects,
store them back (what the RPCs return is shaped in views.py)."""

import re
from contextlib import contextmanager

from sqlalchemy import select

from services.common.storage.db import UnitOfWork
from services.common.values.errors import InvalidInput, NotFound

from .domain import (
    Call,
    Programme,
    Proposal,
    RuleProfile,
    call_from_dict,
    call_to_dict,
    profile_from_dict,
    programme_from_dict,
    proposal_from_dict,
)
from .models import CallRow, ProgrammeRow, ProposalRow

# the domain names fields after its own attributes; RPC callers know them by the API's names
CALL_FIELDS = (
    (r"^min_grant$", "min_grant_eur"),
    (r"^max_grant$", "max_grant_eur"),
    (r"^windows\.(\d+)\.code$", r"windows.\1.window"),
    (r"^windows\.(\d+)\.allocation$", r"windows.\1.allocation_eur"),
    (r"^id$", "call_id"),
)
PROPOSAL_FIELDS = (
    (r"^ec_amount_requested$", "ec_amount_requested_eur"),
    (r"^total_eligible_cost$", "total_eligible_cost_eur"),
    (r"^co_financing$", "co_financing_eur"),
)


def api_field(field: str, renames) -> str:
    for pattern, replacement in renames:
        new, count = re.subn(pattern, replacement, field)
        if count:
            return new
    return field


@contextmanager
def fields_named(renames=(), prefix: str = ""):
    """Re-raise the domain's InvalidInput with the API's field names (and an optional prefix)."""
    try:
        yield
    except InvalidInput as exc:
        errors = {prefix + api_field(str(k), renames): v for k, v in exc.errors.items()}
        raise InvalidInput(errors, None, exc.omitted) from None


# --- loading ---------------------------------------------------------------------------------------------------


def _one(uow: UnitOfWork, model, key, entity: str, lock: bool = False, shared: bool = False):
    query = select(model).where(model.__mapper__.primary_key[0] == key)
    if lock or shared:
        # FOR SHARE lets concurrent submissions proceed together while a close (FOR UPDATE) waits for them
        query = query.with_for_update(read=shared and not lock)
    row = uow.session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(entity, key)
    return row


def programme_row(uow: UnitOfWork, programme_id: str, lock: bool = False) -> ProgrammeRow:
    return _one(uow, ProgrammeRow, programme_id, "programme", lock)


def call_row(uow: UnitOfWork, call_id: str, lock: bool = False, shared: bool = False) -> CallRow:
    return _one(uow, CallRow, call_id, "call", lock, shared)


def proposal_row(uow: UnitOfWork, proposal_id: str, lock: bool = False) -> ProposalRow:
    return _one(uow, ProposalRow, proposal_id, "proposal", lock)


def programme_of(row: ProgrammeRow) -> Programme:
    return programme_from_dict(row.definition)


def call_of(row: CallRow) -> Call:
    return call_from_dict(row.definition)


def profile_of(row: CallRow) -> RuleProfile:
    return profile_from_dict(row.profile)


def save_call(row: CallRow, call: Call) -> None:
    row.definition = call_to_dict(call)
    row.title, row.status, row.deadline, row.year = call.title, call.status.value, call.deadline, call.deadline.year
    row.opened_at, row.closed_at = call.opened_at, call.closed_at


def domain_proposal(data: dict, proposal_id: str, reference: str | None = None) -> Proposal:
    """A Proposal from submit_proposal's arguments or from the stored proposal_submitted payload."""
    with fields_named(PROPOSAL_FIELDS):
        return proposal_from_dict(
            {
                "id": proposal_id,
                "call_id": data["call_id"],
                "reference": reference,
                "window": data["window"],
                "target_country": data["target_country"],
                "title": data["title"],
                "summary": data.get("summary", ""),
                "duration_months": data["duration_months"],
                "budget": dict(data["budget"]),
                "total_eligible_cost": data["total_eligible_cost_eur"],
                "ec_amount_requested": data["ec_amount_requested_eur"],
                "co_financing": data["co_financing_eur"],
                "applicants": [dict(a) for a in data["applicants"]],
                "submitted_at": data.get("submitted_at"),
                "logframe": data.get("logframe"),
            }
        )


def stored_proposal(row: ProposalRow) -> Proposal:
    return domain_proposal(row.data, row.id, row.reference)
