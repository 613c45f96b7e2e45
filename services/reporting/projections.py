"""Projections: how each event changes the reporting facts. Idempotent per event (the inbox guards live
delivery; rebuild replays the archive into emptied tables)."""
from datetime import datetime, timezone

from sqlalchemy import delete, insert, select

from services.common.db import UnitOfWork
from services.common.events import Event

from .models import (PROJECTION_TABLES, ArchivedEvent, GrantFact, ProgrammeFact, ProposalFact, TrancheFact,
                     WindowFact)


def archive(uow: UnitOfWork, event: Event):
    uow.session.execute(insert(ArchivedEvent).values(
        event_id=event.event_id, event_type=event.event_type, producer=event.producer,
        occurred_at=event.occurred_at, body=event.body, archived_at=datetime.now(timezone.utc)))


def _call_opened(session, d, occurred_at):
    if session.get(ProgrammeFact, d["programme_id"]) is None:
        session.add(ProgrammeFact(programme_id=d["programme_id"], name=d["programme_name"], envelope=d["envelope_eur"]))
    for w in d["windows"]:
        if session.get(WindowFact, (d["call_id"], w["window"])) is None:
            session.add(WindowFact(call_id=d["call_id"], window=w["window"], programme_id=d["programme_id"],
                                   name=w["name"] or w["window"], allocation=w["allocation_eur"]))


def _proposal_submitted(session, d, occurred_at):
    if session.get(ProposalFact, d["proposal_id"]) is None:
        session.add(ProposalFact(proposal_id=d["proposal_id"], call_id=d["call_id"], programme_id=d["programme_id"],
                                 window=d["window"], country=d["target_country"], status="submitted",
                                 submitted_at=d["submitted_at"]))


def _grant_awarded(session, d, occurred_at):
    if session.get(GrantFact, d["grant_id"]) is None:
        session.add(GrantFact(
            grant_id=d["grant_id"], programme_id=d["programme_id"], reference=d["reference"], title=d["title"],
            call_id=d["call_id"], window=d["window"], country=d["country"], applicant_type=d["applicant_type"],
            lead_organisation=d["lead_organisation"], committed=d["amount_eur"],
            budget={k: str(v) for k, v in d["budget"].items()}, awarded_at=d["awarded_at"],
            decision_date=d["decision_date"]))


def _tranche_paid(session, d, occurred_at):
    if session.get(TrancheFact, d["payment_id"]) is None:
        session.add(TrancheFact(payment_id=d["payment_id"], grant_id=d["grant_id"], tranche_number=d["tranche_number"],
                                amount=d["amount_eur"], value_date=d["value_date"], paid_at=occurred_at))


PROJECTORS = {
    "call_opened": _call_opened,
    "proposal_submitted": _proposal_submitted,
    "grant_awarded": _grant_awarded,
    "tranche_paid": _tranche_paid,
}


def project(uow: UnitOfWork, event: Event):
    projector = PROJECTORS.get(event.event_type)
    if projector is not None:
        projector(uow.session, event.data, event.occurred_at)
        uow.session.flush()


def rebuild(uow: UnitOfWork) -> int:
    """Empty the projections and replay the whole archive in arrival order; returns the events replayed."""
    from services.common.events import parse_event
    session = uow.session
    for table in PROJECTION_TABLES:
        session.execute(delete(table))
    count = 0
    for (body,) in session.execute(select(ArchivedEvent.body).order_by(ArchivedEvent.seq)).yield_per(1000):
        project(uow, parse_event(body))
        count += 1
    return count
