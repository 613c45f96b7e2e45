"""Rules the services share, defined once in the kit: the retry waits, the report due dates, the Annex III
headings — and the services use those definitions rather than copies."""

from datetime import date

import pytest

from services.common.contracts import events
from services.common.messaging.inbox import RetryPolicy
from services.common.values import annex, report_calendar, retry


def test_a_backoff_doubles_from_its_base_up_to_its_cap():
    assert [retry.Backoff(0.2, 1.0).delay(n) for n in range(1, 6)] == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])
    assert retry.backoff_delays(30, 2, 6, 600) == [30, 60, 120, 240, 480]
    with pytest.raises(ValueError):
        retry.Backoff(1.0, 10.0, factor=0.5)


def test_the_inbox_waits_as_the_event_handler_policy_says():
    policy = RetryPolicy(attempts=5)
    assert [policy.delay(n) for n in range(1, 5)] == [retry.EVENT_HANDLER.delay(n) for n in range(1, 5)]
    assert RetryPolicy(attempts=5, backoff=1.0, cap=3.0).delay(4) == 3.0  # EVENT_RETRY_BACKOFF still applies


def test_the_report_calendar_of_a_contract():
    assert report_calendar.report_due_dates(date(2009, 3, 1), 36) == [
        ("interim", 1, date(2010, 2, 28), date(2010, 4, 29)),
        ("interim", 2, date(2011, 2, 28), date(2011, 4, 29)),
        ("final", 1, date(2012, 2, 29), date(2012, 5, 31)),
    ]
    assert report_calendar.add_months(date(2009, 1, 31), 1) == date(2009, 2, 28)


def test_grants_and_notifications_use_the_kits_calendar():
    from services.grants.domain import reports
    from services.notifications.domain import schedule

    assert schedule.report_due_dates is report_calendar.report_due_dates
    start = date(2010, 1, 31)
    assert [(p.kind, p.end, p.due_date) for p in reports.reporting_periods(start, 30)] == [
        (d.kind, d.period_end, d.due_date) for d in report_calendar.report_due_dates(start, 30)
    ]


def test_every_service_uses_the_one_list_of_annex_iii_headings():
    from services.calls.domain import proposal
    from services.grants.domain import annex as grants_annex
    from services.reporting.domain import budget_report

    assert events.ANNEX_III_HEADINGS is annex.HEADINGS
    assert proposal.BUDGET_LINES is annex.HEADINGS and proposal.DIRECT_LINES is annex.DIRECT_HEADINGS
    assert grants_annex.HEADINGS is annex.HEADINGS and budget_report.HEADINGS is annex.HEADINGS
    assert set(annex.HEADING_LABELS) == set(annex.HEADINGS)
