"""Use case of early termination (domain/termination.py holds the rules): lock the grant, let the domain decide,
store, emit grant_terminated (the event is the
operation's audit record). Termination moves no money; closure does, after the final report."""

from datetime import datetime

from services.common.storage.db import UnitOfWork

from . import repository as repo
from .views import grant_view


def terminate_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    record = repo.lock_grant(session, data["grant_id"])
    user = uow.identity.user
    events = record.grant.terminate(
        data["effective_date"] or now.date(), data["reason"], user, now, signed_by=record.row.signed_by
    )
    repo.save(session, record, user, now)
    repo.emit(uow, events, now)
    return grant_view(record)
