"""Report reminders: N days before each report due date and on the day, to the lead applicant, once each."""

from __future__ import annotations

from datetime import date, timedelta

from services.common.storage.db import UnitOfWork

from . import contexts
from .domain.schedule import reminder_key, reminder_stage
from .planning import Planner
from .settings import NotificationSettings


def plan_reminders(uow: UnitOfWork, settings: NotificationSettings, today: date) -> int:
    """Plan the reminders due today (run by one replica: an exclusive timer); returns how many were planned.

    Each reminder has a stable key (grant, report, due date, stage) standing in for the source event, so the
    unique (source, recipient, template) constraint makes a second run of the same day plan nothing.
    """
    planner = Planner(uow, settings)
    for due, grant in planner.facts.open_report_dues(today, today + timedelta(days=max(settings.reminder_days))):
        stage = reminder_stage(due.due_date, today, settings.reminder_days)
        if stage is None:
            continue
        key = reminder_key(grant.grant_id, due.kind, due.number, due.due_date, stage)
        if planner.facts.planned_for(key):
            continue
        planner.remind(key, grant, contexts.report_due(grant, due.kind, due.due_date, today))
    return len(planner.planned)
