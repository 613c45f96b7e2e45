"""Which messages an event calls for, and to whom. Recording them is part of applying the event.

Runs inside the event handler's transaction (with the kit's inbox row), so an event is planned exactly once:
one Notification row per (event, recipient, template), delivered later by the dispatcher. The service also
keeps the facts later messages quote (proposal, grant, contract dates, reports due).

An event that refers to a proposal or grant this service has not heard of yet (its queue overtook the one of
proposal_submitted or grant_awarded) is parked and planned as soon as that fact arrives. When the fact comes later
in the same batch (a backlog read from several queues at once), the event waits in memory instead: no parking row
written, flushed and deleted again. What still waits when the batch ends (its fact's own event waits too) is parked.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Callable, Iterable

from services.common.contracts.events import Event, parse_event
from services.common.storage.db import JsonText, UnitOfWork, utcnow
from services.common.values.wire import wire_default

from . import contexts
from .domain.schedule import period_end
from .models import Grant
from .repository import FactMissing, NotificationsRepository, Recipient
from .settings import NotificationSettings

log = logging.getLogger(__name__)


class Planner:
    def __init__(self, uow: UnitOfWork, settings: NotificationSettings, now: datetime | None = None):
        self.uow = uow
        self.facts = NotificationsRepository(uow.session)
        self.settings = settings
        self.now = now or utcnow()
        self.planned: list[dict] = []  # notifications rows, written together by `write`
        self._written = 0
        self._coming: set[str] = set()  # the facts the batch brings (keys as FactMissing names them)
        self._waiting: dict[str, list[Event]] = {}  # events of the batch ahead of their fact, in arrival order

    # --- entry points ---------------------------------------------------------------------------------------
    def apply_all(self, events: Iterable[Event]) -> list[dict]:
        """Plan events in the order they came, with the facts they name read (and locked) up front together."""
        events = list(events)
        proposals = {e.data["proposal_id"] for e in events if "proposal_id" in e.data}
        grants = {e.data["grant_id"] for e in events if "grant_id" in e.data}
        self.facts.prefetch(proposals, grants)
        self._coming = {key for key in map(_fact_brought_by, events) if key}
        for event in events:
            self.apply(event)
        for key, waiting in self._waiting.items():  # their fact's event was itself parked
            for event in waiting:
                self._park(event, key)
        self._waiting.clear()
        self.write()
        return self.planned

    def apply(self, event: Event):
        handler = getattr(self, f"_{event.event_type}", None)
        if handler is not None:
            try:
                handler(event, event.data)
            except FactMissing as missing:
                if missing.key in self._coming:
                    self._waiting.setdefault(missing.key, []).append(event)
                else:
                    self._park(event, missing.key)

    def write(self):
        """The facts changed and the messages planned since the last write, into the transaction."""
        self.facts.flush()
        self.facts.add_notifications(self.planned[self._written :])
        self._written = len(self.planned)

    # --- calls events ---------------------------------------------------------------------------------------
    def _proposal_submitted(self, event, d):
        self.facts.serialise(f"proposal:{d['proposal_id']}")
        self.facts.record_proposal(d)
        self._notify(
            event,
            "submission_receipt",
            self._lead(d["proposal_id"]),
            contexts.submission_receipt(d),
            proposal_id=d["proposal_id"],
        )
        self._release(f"proposal:{d['proposal_id']}")

    def _proposal_withdrawn(self, event, d):
        proposal = self.facts.find_proposal(d["proposal_id"])
        if proposal is not None:
            proposal.status = "withdrawn"

    def _proposal_screened(self, event, d):
        proposal = self.facts.proposal(d["proposal_id"])
        self._notify(
            event,
            "screening_result",
            self._lead(proposal.proposal_id),
            contexts.screening_result(d, proposal),
            proposal_id=proposal.proposal_id,
        )

    def _proposal_evaluated(self, event, d):
        proposal = self.facts.proposal(d["proposal_id"])
        self._notify(
            event,
            "evaluation_result",
            self._lead(proposal.proposal_id),
            contexts.evaluation_result(d, proposal),
            proposal_id=proposal.proposal_id,
        )

    # --- grants events --------------------------------------------------------------------------------------
    def _proposal_rejected(self, event, d):
        proposal = self.facts.proposal(d["proposal_id"])
        self._notify(
            event,
            "rejection",
            self._lead(proposal.proposal_id),
            contexts.rejection(d, proposal),
            proposal_id=proposal.proposal_id,
        )

    def _grant_awarded(self, event, d):
        proposal = self.facts.proposal(d["proposal_id"])
        self.facts.serialise(f"grant:{d['grant_id']}")
        self.facts.record_grant(d)
        self._notify(
            event,
            "award",
            self._lead(proposal.proposal_id),
            contexts.award(d, proposal),
            proposal_id=proposal.proposal_id,
            grant_id=d["grant_id"],
        )
        self._release(f"grant:{d['grant_id']}")

    def _contract_signed(self, event, d):
        grant = self.facts.grant(d["grant_id"])
        grant.status, grant.start_date, grant.end_date = "contracted", d["start_date"], d["end_date"]
        grant.duration_months, grant.amount = d["duration_months"], d["amount_eur"]
        grant.schedule = event.body["data"]["schedule"]
        self.facts.refresh_report_dues(grant)
        self._notify_grant(event, "contract_signed", grant, contexts.contract_signed(d, grant), consortium=True)

    def _payment_requested(self, event, d):
        grant = self.facts.grant(d["grant_id"])
        if not self.settings.finance_approvers:
            log.warning("payment %s requested but FINANCE_APPROVER_EMAILS is empty: nobody to notify", d["payment_id"])
        self._notify(
            event,
            "payment_requested",
            self._staff(self.settings.finance_approvers),
            contexts.payment_requested(d, grant),
            proposal_id=grant.proposal_id,
            grant_id=grant.grant_id,
        )

    def _payment_cancelled(self, event, d):
        """The approvers who were asked to approve it learn it is off their list (and why)."""
        grant = self.facts.grant(d["grant_id"])
        self._notify(
            event,
            "payment_cancelled",
            self._staff(self.settings.finance_approvers),
            contexts.payment_cancelled(d, grant),
            proposal_id=grant.proposal_id,
            grant_id=grant.grant_id,
        )

    def _tranche_paid(self, event, d):
        grant = self.facts.grant(d["grant_id"])
        grant.paid = grant.paid + d["amount_eur"]  # the inbox applies each payment once
        self._notify_grant(event, "tranche_paid", grant, contexts.tranche_paid(d, grant))

    def _report_submitted(self, event, d):
        grant = self.facts.grant(d["grant_id"])
        due = self.facts.report_due(grant.grant_id, d["kind"], d["number"] if d["kind"] == "interim" else 1)
        if due is not None:  # reminders for this report stop
            due.status, due.report_id = "submitted", d["report_id"]

    def _report_accepted(self, event, d):
        grant = self.facts.grant(d["grant_id"])
        due = self.facts.report_due_of(d["report_id"])
        if d["outcome"] == "accepted":
            if due is not None:
                due.status = "accepted"
            context = contexts.report_accepted(d, grant, due.number if due is not None else None)
            self._notify_grant(event, "report_accepted", grant, context)
        else:
            if due is not None:  # a corrected report is expected
                due.status = "open"
            self._notify_grant(
                event, "report_returned", grant, contexts.report_returned(d, grant, self.settings.resubmit_days)
            )

    def _grant_amended(self, event, d):
        grant = self.facts.grant(d["grant_id"])
        previous_amount, previous_end = grant.amount, grant.end_date
        grant.amount, grant.amendments = d["amount_eur"], (grant.amendments or 0) + 1
        duration_changed = d["duration_months"] != grant.duration_months
        grant.duration_months = d["duration_months"]
        if grant.start_date is not None and duration_changed:  # the end moves, and the reports with it
            grant.end_date = period_end(grant.start_date, d["duration_months"])
            self.facts.refresh_report_dues(grant)
        context = contexts.grant_amended(d, grant, previous_amount, previous_end, event.occurred_at)
        self._notify_grant(event, "grant_amended", grant, context, consortium=True)

    def _grant_terminated(self, event, d):
        """The contract ends early: the interim reports not yet in are no longer due; the final report covers up to
        the effective date and is due by the date the event gives (its reminders follow it)."""
        grant = self.facts.grant(d["grant_id"])
        if grant.status != "closed":  # grant_closed travels on its own queue and may have come first
            grant.status = "terminated"
        grant.end_date = d["effective_date"]
        self.facts.end_report_dues_early(grant, d["effective_date"], d["final_report_due"])
        self._notify_grant(event, "grant_terminated", grant, contexts.grant_terminated(d, grant), consortium=True)

    def _grant_closed(self, event, d):
        grant = self.facts.grant(d["grant_id"])
        grant.status = "closed"  # no more report reminders
        self._notify_grant(event, "grant_closed", grant, contexts.grant_closed(d, grant), consortium=True)

    # --- reporting events -----------------------------------------------------------------------------------
    def _report_generated(self, event, d):
        if not self.settings.ec_report_recipients:
            log.warning("report %s generated but EC_REPORT_RECIPIENTS is empty: nobody to send it to", d["report_id"])
        self._notify(
            event,
            "ec_report",
            self._staff(self.settings.ec_report_recipients),
            lambda language: contexts.ec_report(d, language),
            attachment={"report_id": d["report_id"]},
        )

    # --- reminders (the clock, not an event) ----------------------------------------------------------------
    def remind(self, source_key: str, grant: Grant, context: dict):
        self._plan(
            source_key,
            "report_due",
            "report_due",
            self._lead(grant.proposal_id),
            context,
            proposal_id=grant.proposal_id,
            grant_id=grant.grant_id,
        )
        self.write()
        return self.planned

    # --- facts ----------------------------------------------------------------------------------------------
    def _park(self, event: Event, key: str):
        log.info("%s waits for %s before it can be planned", event, key)
        self.facts.park(event, key, self.now)

    def _release(self, key: str):
        """The events waiting for `key`: those parked by earlier batches first (they came first)."""
        for body in self.facts.take_parked(key):
            self.apply(parse_event(body))
        for event in self._waiting.pop(key, ()):
            self.apply(event)

    # --- recipients -----------------------------------------------------------------------------------------
    def _lead(self, proposal_id: str) -> list[Recipient]:
        return self.facts.contacts(proposal_id, ("lead",))

    def _staff(self, people) -> list[Recipient]:
        return [Recipient(p.email, p.name, self.settings.staff_language) for p in people]

    # --- planning -------------------------------------------------------------------------------------------
    def _notify_grant(self, event, template, grant: Grant, context, consortium: bool = False):
        """Grant news reach the lead applicant; what binds the whole consortium reaches co-applicants too."""
        roles = ("lead", "co_applicant") if consortium else ("lead",)
        self._notify(
            event,
            template,
            self.facts.contacts(grant.proposal_id, roles),
            context,
            proposal_id=grant.proposal_id,
            grant_id=grant.grant_id,
        )

    def _notify(self, event: Event, template: str, recipients, context, **refs):
        self._plan(event.event_id, event.event_type, template, recipients, context, **refs)

    def _plan(
        self,
        source_id: str,
        event_type: str,
        template: str,
        recipients,
        context: dict | Callable,
        proposal_id=None,
        grant_id=None,
        attachment=None,
    ):
        seen = set()
        for recipient in recipients:
            if recipient.email.lower() in seen:
                continue
            seen.add(recipient.email.lower())
            variables = context(recipient.language) if callable(context) else context
            # the context in its wire form straight as JSON text: no wire copy of it serialised again
            wire_context = json.dumps({**variables, "recipient_name": recipient.name}, default=wire_default)
            self.planned.append(
                {
                    "id": str(uuid.uuid4()),
                    "source_event_id": source_id,
                    "event_type": event_type,
                    "template": template,
                    "recipient": recipient.email,
                    "recipient_name": recipient.name,
                    "language": recipient.language,
                    "proposal_id": proposal_id,
                    "grant_id": grant_id,
                    "context": JsonText(wire_context),
                    "attachment": attachment,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": self.now,
                    "created_at": self.now,
                }
            )


_FACTS_BROUGHT = {"proposal_submitted": ("proposal", "proposal_id"), "grant_awarded": ("grant", "grant_id")}


def _fact_brought_by(event: Event) -> str | None:
    """The key (as FactMissing names it) of the fact this event records, if it records one."""
    brought = _FACTS_BROUGHT.get(event.event_type)
    return f"{brought[0]}:{event.data[brought[1]]}" if brought else None


def plan(uow: UnitOfWork, event: Event, settings: NotificationSettings) -> list[dict]:
    return plan_all(uow, [event], settings)


def plan_all(uow: UnitOfWork, events: Iterable[Event], settings: NotificationSettings) -> list[dict]:
    """Plan new events in one transaction (the service's batch consumer); returns the notifications rows."""
    return Planner(uow, settings).apply_all(events)
