"""Report reminders: N days before each report due date and on the day, to the lead applicant, once each."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from services.common.db import UnitOfWork

from . import contexts
from .models import Grant, Notification, ReportDue
from .planning import Planner
from .schedule import reminder_key, reminder_stage
from .settings import NotificationSettings


def plan_reminders(uow: UnitOfWork, settings: NotificationSettings, today: date) -> int:
    """Plan the reminders due today (run by one replica: an exclusive timer); returns how many were planned.

    Each reminder has a stable key (grant, report, due date, stage) standing in for the source event, so the
    unique (source, recipient, template) constraint makes a second run of the same day plan nothing.
    """
    session = uow.session
    horizon = today + timedelta(days=max(settings.reminder_days))
    rows = session.execute(
        select(ReportDue, Grant).join(Grant, Grant.grant_id == ReportDue.grant_id)
        .where(ReportDue.status == "open", Grant.status == "contracted",
               ReportDue.due_date >= today, ReportDue.due_date <= horizon)
        .order_by(ReportDue.due_date)).all()
    planner = Planner(uow, settings)
    for due, grant in rows:
        stage = reminder_stage(due.due_date, today, settings.reminder_days)
        if stage is None:
            continue
        key = reminder_key(grant.grant_id, due.kind, due.number, due.due_date, stage)
        if session.execute(select(Notification.id).where(Notification.source_event_id == key).limit(1)).first():
            continue
        planner.remind(key, grant, contexts.report_due(grant, due.kind, due.due_date, today))
    return len(planner.planned)
