"""The notifications service's writes: the facts later messages quote (proposals and their contacts, grants,
reports due), events parked until the fact they refer to arrives, and the planned messages themselves.

Every method runs inside the caller's unit of work (an event handler's transaction, with the kit's inbox row)."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import NamedTuple

from sqlalchemy import delete, select, text

from services.common.contracts.events import Event

from .domain.schedule import report_due_dates
from .models import Contact, Grant, Notification, ParkedEvent, Proposal, ReportDue


class Recipient(NamedTuple):
    email: str
    name: str
    language: str


class FactMissing(Exception):
    """The event refers to a proposal or grant this service has not heard of yet (`key`: what it waits for)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class NotificationsRepository:
    def __init__(self, session):
        self.session = session

    def serialise(self, key: str):
        """Handlers of different queues run concurrently: whoever creates a fact and whoever parks an event
        waiting for it take the same transaction lock first, so the creator's release always sees the parked
        event, or the waiter sees the fact (PostgreSQL; SQLite runs one transaction at a time anyway)."""
        if self.session.get_bind().dialect.name == "postgresql":
            lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            self.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})

    # --- proposals and grants -------------------------------------------------------------------------------
    def record_proposal(self, d: dict):
        """A submitted proposal and its applicants (who later messages go to); a redelivery changes nothing."""
        self.session.merge(
            Proposal(
                proposal_id=d["proposal_id"],
                reference=d["reference"],
                call_id=d["call_id"],
                title=d["title"],
                lead_organisation=d["lead_organisation"],
                duration_months=d["duration_months"],
                status="submitted",
            )
        )
        for applicant in d["applicants"]:
            self.session.merge(
                Contact(
                    proposal_id=d["proposal_id"],
                    email=applicant["email"],
                    name=applicant["name"],
                    role=applicant["role"],
                    language=applicant["language"],
                    reference=d["reference"],
                )
            )
        self.session.flush()

    def find_proposal(self, proposal_id: str) -> Proposal | None:
        return self.session.get(Proposal, proposal_id)

    def proposal(self, proposal_id: str) -> Proposal:
        return self._fact(Proposal, "proposal", proposal_id)

    def record_grant(self, d: dict):
        if self.session.get(Grant, d["grant_id"]) is None:
            self.session.add(
                Grant(
                    grant_id=d["grant_id"],
                    proposal_id=d["proposal_id"],
                    reference=d["reference"],
                    title=d["title"],
                    lead_organisation=d["lead_organisation"],
                    amount=d["amount_eur"],
                    paid=0,
                    status="awarded",
                    schedule=[],
                    amendments=0,
                )
            )
            self.session.flush()

    def grant(self, grant_id: str) -> Grant:
        return self._fact(Grant, "grant", grant_id)

    def _fact(self, model, kind: str, key: str):
        """The proposal or grant, locked against a concurrent creator (FactMissing if it has not arrived yet)."""
        self.serialise(f"{kind}:{key}")
        row = self.session.get(model, key, populate_existing=True)
        if row is None:
            raise FactMissing(f"{kind}:{key}")
        return row

    # --- reports due ----------------------------------------------------------------------------------------
    def report_due(self, grant_id: str, kind: str, number: int) -> ReportDue | None:
        return self.session.get(ReportDue, (grant_id, kind, number))

    def report_due_of(self, report_id: str) -> ReportDue | None:
        return self.session.execute(select(ReportDue).where(ReportDue.report_id == report_id)).scalar_one_or_none()

    def refresh_report_dues(self, grant: Grant):
        """The reports due follow the grant's start and duration; a report no longer due and not in is dropped."""
        existing = {
            (r.kind, r.number): r
            for r in self.session.execute(select(ReportDue).where(ReportDue.grant_id == grant.grant_id)).scalars()
        }
        assert grant.duration_months is not None  # contract_signed sets it with the start date
        wanted = report_due_dates(grant.start_date, grant.duration_months)
        for due in wanted:
            row = existing.get((due.kind, due.number))
            if row is None:
                self.session.add(
                    ReportDue(
                        grant_id=grant.grant_id,
                        kind=due.kind,
                        number=due.number,
                        period_end=due.period_end,
                        due_date=due.due_date,
                        status="open",
                    )
                )
            else:
                row.period_end, row.due_date = due.period_end, due.due_date
        for key, row in existing.items():
            if key not in {(due.kind, due.number) for due in wanted} and row.status == "open":
                self.session.delete(row)

    def open_report_dues(self, first: date, last: date) -> list[tuple[ReportDue, Grant]]:
        """Reports not yet in, due between `first` and `last`, of grants still running (or ended early)."""
        return (
            self.session.execute(
                select(ReportDue, Grant)
                .join(Grant, Grant.grant_id == ReportDue.grant_id)
                .where(
                    ReportDue.status == "open",
                    Grant.status.in_(("contracted", "terminated")),
                    ReportDue.due_date >= first,
                    ReportDue.due_date <= last,
                )
                .order_by(ReportDue.due_date)
            )
            .tuples()
            .all()
        )

    def end_report_dues_early(self, grant: Grant, effective_date: date, final_report_due: date):
        """A terminated contract: the final report covers up to the effective date; open interim ones go."""
        for due in self.session.execute(select(ReportDue).where(ReportDue.grant_id == grant.grant_id)).scalars():
            if due.kind == "final":
                due.period_end, due.due_date = effective_date, final_report_due
            elif due.status == "open":
                self.session.delete(due)

    # --- parked events --------------------------------------------------------------------------------------
    def park(self, event: Event, key: str, now):
        self.session.add(
            ParkedEvent(
                waits_for=key, event_id=event.event_id, event_type=event.event_type, body=event.body, parked_at=now
            )
        )

    def take_parked(self, key: str) -> list[dict]:
        """The bodies of the events waiting for `key`, in arrival order, removed from the parking."""
        self.session.flush()
        parked = (
            self.session.execute(select(ParkedEvent).where(ParkedEvent.waits_for == key).order_by(ParkedEvent.id))
            .scalars()
            .all()
        )
        bodies = []
        for row in parked:
            self.session.execute(delete(ParkedEvent).where(ParkedEvent.id == row.id))
            bodies.append(row.body)
        return bodies

    # --- recipients and messages ----------------------------------------------------------------------------
    def contacts(self, proposal_id: str, roles) -> list[Recipient]:
        rows = self.session.execute(
            select(Contact)
            .where(Contact.proposal_id == proposal_id, Contact.role.in_(roles))
            .order_by(Contact.role.desc(), Contact.email)
        ).scalars()
        return [Recipient(c.email, c.name, c.language) for c in rows]

    def planned_for(self, source_id: str) -> bool:
        """Whether a message was already planned for this event or reminder key."""
        return (
            self.session.execute(
                select(Notification.id).where(Notification.source_event_id == source_id).limit(1)
            ).first()
            is not None
        )

    def add(self, notification: Notification):
        self.session.add(notification)

    def flush(self):
        self.session.flush()
