"""The notifications service's writes: the facts later messages quote (proposals and their contacts, grants,
reports due), events parked until the fact they refer to arrives, and the planned messages themselves.

Every method runs inside the caller's unit of work (an event handler's transaction, with the kit's inbox row)."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import NamedTuple

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT

from services.common.contracts.events import Event
from services.common.storage.db import copy_rows

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


# one statement for a batch's locks, taken in the order of the array (sorted by the caller)
_LOCK_ALL = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(:ids) AS k").bindparams(
    bindparam("ids", type_=ARRAY(BIGINT))
)


# the facts an event parked names (what it will need once released); read before the locks, so that they are taken
# with the batch's, in order
_NAMED_BY_PARKED = select(
    ParkedEvent.body["data"]["proposal_id"].as_string(), ParkedEvent.body["data"]["grant_id"].as_string()
).distinct()


def lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class NotificationsRepository:
    """Reads go through per-transaction memories filled by `prefetch` (a batch's proposals, grants, contacts and
    parked keys in one query each), so planning a batch costs a few statements, not several per event; a key the
    batch did not announce (an event released from the parking) is read and locked on its own."""

    def __init__(self, session):
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"
        self._locked: set[str] = set()
        self._proposals: dict[str, Proposal | None] = {}
        self._grants: dict[str, Grant | None] = {}
        self._contacts: dict[str, dict[str, Contact]] = {}
        self._parking_known: set[str] = set()  # keys whose parked events are known (`_parked`)
        self._parked: set[str] = set()

    def serialise(self, *keys: str):
        """Handlers of different queues run concurrently: whoever creates a fact and whoever parks an event
        waiting for it take the same transaction lock first, so the creator's release always sees the parked
        event, or the waiter sees the fact (PostgreSQL; SQLite runs one transaction at a time anyway). Keys are
        locked in sorted order, so two batches locking overlapping keys wait for each other instead of
        deadlocking."""
        wanted = sorted(set(keys) - self._locked, key=lock_id)
        if not wanted:
            return
        self._locked.update(wanted)
        if self._postgres:
            self.session.execute(_LOCK_ALL, {"ids": [lock_id(k) for k in wanted]})

    def prefetch(self, proposal_ids: set[str], grant_ids: set[str]):
        """Lock the batch's facts, then read them, their applicants and which of them have events parked, one
        query each (after the locks, so what a concurrent creator committed is seen). The facts named by events
        parked for the batch's (which the batch will release) are locked and read with them: taken later, on
        their own, they would be locked out of order, and two batches could deadlock there."""
        proposal_ids, grant_ids = set(proposal_ids), set(grant_ids)
        batch_keys = {f"proposal:{p}" for p in proposal_ids} | {f"grant:{g}" for g in grant_ids}
        if batch_keys:
            for proposal_id, grant_id in self.session.execute(
                _NAMED_BY_PARKED.where(ParkedEvent.waits_for.in_(batch_keys))
            ):
                proposal_ids.update([proposal_id] if proposal_id else [])
                grant_ids.update([grant_id] if grant_id else [])
        self.serialise(*(f"proposal:{p}" for p in proposal_ids), *(f"grant:{g}" for g in grant_ids))
        if grant_ids:
            found = self.session.execute(select(Grant).where(Grant.grant_id.in_(grant_ids))).scalars()
            self._grants.update(dict.fromkeys(grant_ids))
            self._grants.update({g.grant_id: g for g in found})
        if proposal_ids:
            found = self.session.execute(select(Proposal).where(Proposal.proposal_id.in_(proposal_ids))).scalars()
            self._proposals.update(dict.fromkeys(proposal_ids))
            self._proposals.update({p.proposal_id: p for p in found})
        applicants_of = proposal_ids | {g.proposal_id for g in self._grants.values() if g is not None}
        if applicants_of:
            self._contacts.update({p: {} for p in applicants_of})
            for c in self.session.execute(select(Contact).where(Contact.proposal_id.in_(applicants_of))).scalars():
                self._contacts[c.proposal_id][c.email] = c
        keys = {f"proposal:{p}" for p in proposal_ids} | {f"grant:{g}" for g in grant_ids}
        if keys:  # read after the locks: an event parked by a transaction that held one of them is seen
            self._parking_known |= keys
            self._parked |= set(
                self.session.execute(
                    select(ParkedEvent.waits_for).where(ParkedEvent.waits_for.in_(keys)).distinct()
                ).scalars()
            )

    # --- proposals and grants -------------------------------------------------------------------------------
    def record_proposal(self, d: dict):
        """A submitted proposal and its applicants (who later messages go to); a copy writes the same values."""
        values = {
            "reference": d["reference"],
            "call_id": d["call_id"],
            "title": d["title"],
            "lead_organisation": d["lead_organisation"],
            "duration_months": d["duration_months"],
            "status": "submitted",
        }
        proposal = self.find_proposal(d["proposal_id"])
        if proposal is None:
            self._proposals[d["proposal_id"]] = proposal = Proposal(proposal_id=d["proposal_id"], **values)
            self.session.add(proposal)
        else:
            for name, value in values.items():
                setattr(proposal, name, value)
        contacts = self._contacts_of(d["proposal_id"])
        for applicant in d["applicants"]:
            contact = contacts.get(applicant["email"])
            if contact is None:
                contacts[applicant["email"]] = contact = Contact(proposal_id=d["proposal_id"], email=applicant["email"])
                self.session.add(contact)
            contact.name, contact.role, contact.language = applicant["name"], applicant["role"], applicant["language"]
            contact.reference = d["reference"]

    def find_proposal(self, proposal_id: str) -> Proposal | None:
        if proposal_id not in self._proposals:
            self._proposals[proposal_id] = self.session.get(Proposal, proposal_id)
        return self._proposals[proposal_id]

    def proposal(self, proposal_id: str) -> Proposal:
        return self._fact(Proposal, "proposal", proposal_id, self._proposals)

    def record_grant(self, d: dict):
        if self._fact_or_none(Grant, "grant", d["grant_id"], self._grants) is None:
            self._grants[d["grant_id"]] = grant = Grant(
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
            self.session.add(grant)

    def grant(self, grant_id: str) -> Grant:
        return self._fact(Grant, "grant", grant_id, self._grants)

    def _fact(self, model, kind: str, key: str, known: dict):
        """The proposal or grant, locked against a concurrent creator (FactMissing if it has not arrived yet)."""
        row = self._fact_or_none(model, kind, key, known)
        if row is None:
            raise FactMissing(f"{kind}:{key}")
        return row

    def _fact_or_none(self, model, kind: str, key: str, known: dict):
        if key not in known:  # not announced by the batch: locked, then read as committed now
            self.serialise(f"{kind}:{key}")
            known[key] = self.session.get(model, key, populate_existing=True)
        return known[key]

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
        self._parked.add(key)

    def take_parked(self, key: str) -> list[dict]:
        """The bodies of the events waiting for `key`, in arrival order, removed from the parking."""
        if key in self._parking_known and key not in self._parked:
            return []
        self._parked.discard(key)
        self._parking_known.add(key)
        self.session.flush()  # events parked earlier in this transaction are rows to take too
        taken = self.session.execute(
            delete(ParkedEvent).where(ParkedEvent.waits_for == key).returning(ParkedEvent.id, ParkedEvent.body)
        ).all()
        return [body for _, body in sorted(taken, key=lambda row: row[0])]

    # --- recipients and messages ----------------------------------------------------------------------------
    def contacts(self, proposal_id: str, roles) -> list[Recipient]:
        """The applicants in `roles`, lead before co-applicants, then by address."""
        chosen = sorted(
            (c for c in self._contacts_of(proposal_id).values() if c.role in roles),
            key=lambda c: c.email,
        )
        chosen.sort(key=lambda c: c.role, reverse=True)  # stable: by address within a role
        return [Recipient(c.email, c.name, c.language) for c in chosen]

    def _contacts_of(self, proposal_id: str) -> dict[str, Contact]:
        if proposal_id not in self._contacts:
            found = self.session.execute(select(Contact).where(Contact.proposal_id == proposal_id)).scalars()
            self._contacts[proposal_id] = {c.email: c for c in found}
        return self._contacts[proposal_id]

    def planned_for(self, source_id: str) -> bool:
        """Whether a message was already planned for this event or reminder key."""
        return (
            self.session.execute(
                select(Notification.id).where(Notification.source_event_id == source_id).limit(1)
            ).first()
            is not None
        )

    def add_notifications(self, rows: list[dict]):
        """The planned messages, one COPY (after what the session holds; db.copy_rows)."""
        if rows:
            columns = tuple(rows[0])
            copy_rows(self.session, Notification, [tuple(row.values()) for row in rows], columns=columns)

    def flush(self):
        self.session.flush()
