"""Reporting periods of the EC reports: labels, bounds, and the period a scheduled run reports."""

from datetime import date

import pytest

from services.reporting.domain.periods import PeriodError, last_completed, parse_period


@pytest.mark.parametrize(
    "kind,label,start,end",
    [
        ("monthly", "2026-10", date(2026, 10, 1), date(2026, 10, 31)),
        ("monthly", "2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("monthly", "2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("quarterly", "2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("quarterly", "2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("quarterly", "2009-Q4", date(2009, 10, 1), date(2009, 12, 31)),
        ("on_demand", "2009-12-31", date(2009, 12, 31), date(2009, 12, 31)),
    ],
)
def test_a_period_label_names_its_first_and_last_day(kind, label, start, end):
    period = parse_period(kind, label)
    assert (period.kind, period.label, period.start, period.end) == (kind, label, start, end)


@pytest.mark.parametrize(
    "kind,label",
    [
        ("monthly", "2026-13"),
        ("monthly", "2026-1"),
        ("monthly", "2026-Q1"),
        ("quarterly", "2026-Q5"),
        ("quarterly", "2026-10"),
        ("on_demand", "2026-02-30"),
        ("on_demand", "2026-2-3"),
        ("yearly", "2026"),
    ],
)
def test_a_malformed_label_is_refused_with_the_expected_form(kind, label):
    with pytest.raises(PeriodError):
        parse_period(kind, label)


@pytest.mark.parametrize(
    "today,monthly,quarterly",
    [
        (date(2026, 11, 29), "2026-10", "2026-Q3"),
        (date(2026, 11, 1), "2026-10", "2026-Q3"),
        (date(2026, 1, 1), "2025-12", "2025-Q4"),
        (date(2026, 4, 1), "2026-03", "2026-Q1"),
        (date(2026, 3, 31), "2026-02", "2025-Q4"),
    ],
)
def test_a_scheduled_run_reports_the_last_period_that_ended(today, monthly, quarterly):
    assert last_completed("monthly", today).label == monthly
    assert last_completed("quarterly", today).label == quarterly
    assert last_completed("monthly", today).has_ended(today)
    assert last_completed("quarterly", today).has_ended(today)
    assert not parse_period("monthly", today.strftime("%Y-%m")).has_ended(today)
