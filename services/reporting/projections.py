"""Projections: how each event becomes reporting facts.

Each projector only adds rows keyed by the event's own identity (grant, payment, amendment, event id), so
applying an event twice changes nothing: the inbox guards live delivery, and a rebuild replays the archive
into emptied tables. No projector reads the clock: a rebuild gives exactly the live rows.
"""
from datetime import datetime, timezone

from sqlalchemy import delete, insert, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.common.db import UnitOfWork
from services.common.events import Event, parse_event

from .models import (PROJECTION_TABLES, AmendmentRow, ArchivedEvent, CallClosureRow, CallRow, ClosureRow,
                     ContractRow, ExpenditureRow, GrantReportRow, GrantRow, PaymentRequestRow, ProgrammeRow,
                     ProposalOutcomeRow, ProposalRow, TrancheRow, WindowRow)


def archive(uow: UnitOfWork, event: Event):
    archive_many(uow, [event])


def archive_many(uow: UnitOfWork, events: list[Event]):
    """One multi-row insert for a batch: the archive is append-only, in arrival order."""
    archived_at = datetime.now(timezone.utc)
    uow.session.execute(insert(ArchivedEvent), [
        {"event_id": e.event_id, "event_type": e.event_type, "producer": e.producer, "occurred_at": e.occurred_at,
         "body": e.body, "archived_at": archived_at} for e in events])


class FactWriter:
    """Collects the fact rows of a batch and writes each table with one multi-row INSERT that skips keys already
    there: no read before write, a handful of round trips per batch instead of two per event. The first row of
    a key wins, within the batch as against the table — the same as applying the events one by one."""

    def __init__(self, session):
        self.session = session
        self.rows: dict[type, dict] = {}

    def add(self, row, key):
        columns = sa_inspect(type(row)).column_attrs
        self.rows.setdefault(type(row), {}).setdefault(key, {c.key: getattr(row, c.key) for c in columns})

    def flush(self):
        insert_ignoring = pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        for model, rows in self.rows.items():
            if rows:
                self.session.execute(insert_ignoring(model).on_conflict_do_nothing(), list(rows.values()))
        self.rows.clear()


def _add_once(writer: FactWriter, row, key):
    writer.add(row, key)


def _money_map(values: dict) -> dict:
    return {heading: str(amount) for heading, amount in values.items()}


# --- calls ---------------------------------------------------------------------------------------------------

def _call_opened(session, evt: Event):
    d = evt.data
    _add_once(session, ProgrammeRow(programme_id=d["programme_id"], name=d["programme_name"],
                                    envelope=d["envelope_eur"]), d["programme_id"])
    _add_once(session, CallRow(call_id=d["call_id"], programme_id=d["programme_id"], title=d["title"],
                               rule_profile=d["rule_profile"], deadline=d["deadline"], opened_at=evt.occurred_at),
              d["call_id"])
    for position, w in enumerate(d["windows"]):
        _add_once(session, WindowRow(call_id=d["call_id"], window=w["window"], programme_id=d["programme_id"],
                                     name=w["name"] or w["window"], allocation=w["allocation_eur"],
                                     position=position),
                  (d["call_id"], w["window"]))


def _call_closed(session, evt: Event):
    d = evt.data
    _add_once(session, CallClosureRow(call_id=d["call_id"], closed_at=d["closed_at"], proposals=d["proposals"]),
              d["call_id"])


def _proposal_submitted(session, evt: Event):
    d = evt.data
    _add_once(session, ProposalRow(
        proposal_id=d["proposal_id"], reference=d["reference"], call_id=d["call_id"],
        programme_id=d["programme_id"], window=d["window"], country=d["target_country"],
        applicant_type=d["applicant_type"], requested=d["ec_amount_requested_eur"],
        submitted_on=d["submitted_at"].date()), d["proposal_id"])


def _outcome(session, evt: Event, proposal_id: str, call_id: str, kind: str, outcome: str, score=None,
             on=None):
    _add_once(session, ProposalOutcomeRow(
        event_id=evt.event_id, proposal_id=proposal_id, call_id=call_id, kind=kind, outcome=outcome, score=score,
        occurred_at=evt.occurred_at, decided_on=on or evt.occurred_at.date()), (evt.event_id, proposal_id))


def _proposal_withdrawn(session, evt: Event):
    d = evt.data
    _outcome(session, evt, d["proposal_id"], d["call_id"], "withdrawn", "withdrawn", on=d["withdrawn_at"].date())


def _proposal_screened(session, evt: Event):
    d = evt.data
    _outcome(session, evt, d["proposal_id"], d["call_id"], "screened", d["outcome"])


def _proposal_evaluated(session, evt: Event):
    d = evt.data
    _outcome(session, evt, d["proposal_id"], d["call_id"], "evaluated",
             f"{d['stage']}:{'passed' if d['passed'] else 'failed'}", score=d["score"])


def _ranking_published(session, evt: Event):
    d = evt.data
    on = d["published_at"].date()
    for list_name in ("main", "reserve"):
        for ranked in d[list_name]:
            _outcome(session, evt, ranked["proposal_id"], d["call_id"], "ranked", list_name, ranked["score"], on)
    for proposal_id in d["excluded"]:
        _outcome(session, evt, proposal_id, d["call_id"], "ranked", "excluded", on=on)


def _proposal_rejected(session, evt: Event):
    d = evt.data
    _outcome(session, evt, d["proposal_id"], d["call_id"], "rejected", "rejected")


# --- grants --------------------------------------------------------------------------------------------------

def _grant_awarded(session, evt: Event):
    d = evt.data
    _add_once(session, GrantRow(
        grant_id=d["grant_id"], proposal_id=d["proposal_id"], programme_id=d["programme_id"],
        reference=d["reference"], title=d["title"], call_id=d["call_id"], window=d["window"], country=d["country"],
        applicant_type=d["applicant_type"], lead_organisation=d["lead_organisation"], amount=d["amount_eur"],
        budget=_money_map(d["budget"]), decision_reference=d["decision_reference"],
        decision_date=d["decision_date"], awarded_at=d["awarded_at"]), d["grant_id"])


def _contract_signed(session, evt: Event):
    d = evt.data
    _add_once(session, ContractRow(grant_id=d["grant_id"], amount=d["amount_eur"], start_date=d["start_date"],
                                   end_date=d["end_date"], duration_months=d["duration_months"],
                                   signed_on=d["signed_at"].date()), d["grant_id"])


def _grant_amended(session, evt: Event):
    d = evt.data
    # the contract carries no decision date: the amendment counts from the day it was recorded
    _add_once(session, AmendmentRow(
        amendment_id=d["amendment_id"], grant_id=d["grant_id"], kind=d["kind"], amount=d["amount_eur"],
        duration_months=d["duration_months"], budget=_money_map(d["budget"]), occurred_at=evt.occurred_at,
        effective_on=evt.occurred_at.date()), d["amendment_id"])


def _payment_requested(session, evt: Event):
    d = evt.data
    _add_once(session, PaymentRequestRow(payment_id=d["payment_id"], grant_id=d["grant_id"],
                                         tranche_number=d["tranche_number"], amount=d["amount_eur"],
                                         requested_on=d["requested_at"].date()), d["payment_id"])


def _tranche_paid(session, evt: Event):
    d = evt.data
    _add_once(session, TrancheRow(payment_id=d["payment_id"], grant_id=d["grant_id"],
                                  tranche_number=d["tranche_number"], amount=d["amount_eur"],
                                  value_date=d["value_date"], bank_reference=d["bank_reference"],
                                  paid_at=evt.occurred_at), d["payment_id"])


def _report_submitted(session, evt: Event):
    d = evt.data
    _add_once(session, GrantReportRow(event_id=evt.event_id, report_id=d["report_id"], grant_id=d["grant_id"],
                                      kind=d["kind"], status="submitted", total=d["total_eur"],
                                      decided_on=d["submitted_at"].date()), evt.event_id)


def _report_accepted(session, evt: Event):
    d = evt.data
    on = d["decided_at"].date()
    _add_once(session, GrantReportRow(event_id=evt.event_id, report_id=d["report_id"], grant_id=d["grant_id"],
                                      kind=d["kind"], status=d["outcome"], total=d["total_eur"], decided_on=on),
              evt.event_id)
    if d["outcome"] != "accepted":
        return  # a returned report's figures are not expenditure
    for heading, amount in d["expenditure"].items():
        _add_once(session, ExpenditureRow(event_id=evt.event_id, heading=heading, report_id=d["report_id"],
                                          grant_id=d["grant_id"], amount=amount, accepted_on=on),
                  (evt.event_id, heading))


def _grant_closed(session, evt: Event):
    d = evt.data
    _add_once(session, ClosureRow(grant_id=d["grant_id"], kind=d["kind"], paid=d["paid_eur"],
                                  accepted_expenditure=d["accepted_expenditure_eur"], recovery=d["recovery_eur"],
                                  closed_on=d["closed_at"].date()), d["grant_id"])


PROJECTORS = {
    "call_opened": _call_opened,
    "call_closed": _call_closed,
    "proposal_submitted": _proposal_submitted,
    "proposal_withdrawn": _proposal_withdrawn,
    "proposal_screened": _proposal_screened,
    "proposal_evaluated": _proposal_evaluated,
    "ranking_published": _ranking_published,
    "grant_awarded": _grant_awarded,
    "proposal_rejected": _proposal_rejected,
    "contract_signed": _contract_signed,
    "payment_requested": _payment_requested,
    "tranche_paid": _tranche_paid,
    "report_submitted": _report_submitted,
    "report_accepted": _report_accepted,
    "grant_amended": _grant_amended,
    "grant_closed": _grant_closed,
}


def project(uow: UnitOfWork, event: Event, writer: FactWriter | None = None):
    """Project one event; with a writer, its rows wait for the writer's flush (batches, rebuild)."""
    projector = PROJECTORS.get(event.event_type)
    if projector is None:
        return
    own_writer = writer is None
    writer = writer or FactWriter(uow.session)
    projector(writer, event)
    if own_writer:
        writer.flush()


REBUILD_PAGE = 1000


def rebuild(uow: UnitOfWork) -> int:
    """Empty the projections and replay the whole archive in arrival order; returns the events replayed.

    On PostgreSQL the archive is locked against new rows until the rebuild commits: an event arriving
    meanwhile waits, then is archived and projected onto the rebuilt facts (never projected twice)."""
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {ArchivedEvent.__tablename__} IN EXCLUSIVE MODE"))
    for table in PROJECTION_TABLES:
        session.execute(delete(table))
    count, last_seq = 0, 0
    while True:  # pages by sequence number: no cursor stays open while the projectors write
        page = session.execute(select(ArchivedEvent.seq, ArchivedEvent.body).where(ArchivedEvent.seq > last_seq)
                               .order_by(ArchivedEvent.seq).limit(REBUILD_PAGE)).all()
        if not page:
            return count
        writer = FactWriter(session)
        for seq, body in page:
            project(uow, parse_event(body), writer)
            last_seq = seq
        writer.flush()
        count += len(page)
