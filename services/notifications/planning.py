"""Which messages an event calls for, and to whom. Recording them is part of applying the event."""
import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from services.common.db import UnitOfWork
from services.common.events import Event

from .models import Contact, Notification


def _contacts(session, proposal_id):
    return session.execute(select(Contact).where(Contact.proposal_id == proposal_id)).scalars().all()


def plan(uow: UnitOfWork, event: Event) -> list[Notification]:
    session, d = uow.session, event.data
    planned = []

    def notify(template, recipient, language, proposal_id=None, grant_id=None):
        planned.append(Notification(
            id=str(uuid.uuid4()), source_event_id=event.event_id, event_type=event.event_type, template=template,
            recipient=recipient, language=language, proposal_id=proposal_id, grant_id=grant_id,
            context=event.body["data"], status="pending", attempts=0, created_at=datetime.now(timezone.utc)))

    if event.event_type == "proposal_submitted":
        for applicant in d["applicants"]:
            session.merge(Contact(proposal_id=d["proposal_id"], email=applicant["email"], name=applicant["name"],
                                  role=applicant["role"], language=applicant["language"], reference=d["reference"]))
            if applicant["role"] == "lead":
                notify("submission_receipt", applicant["email"], applicant["language"], d["proposal_id"])
    elif event.event_type == "grant_awarded":
        for contact in _contacts(session, d["proposal_id"]):
            if contact.role == "lead":
                notify("award", contact.email, contact.language, d["proposal_id"], d["grant_id"])
    session.add_all(planned)
    return planned
