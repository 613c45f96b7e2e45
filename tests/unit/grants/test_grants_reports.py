from datetime import date
from decimal import Decimal as D

import pytest

from services.common.values.errors import Conflict, InvalidInput
from services.grants.domain import (
    FinancialReport,
    ReportStatus,
    accept,
    report_due_dates,
    reporting_periods,
    return_report,
)

from grants_helpers import at


def test_due_dates_36_months():
    assert report_due_dates(date(2009, 3, 1), 36) == [
        ("interim", date(2010, 2, 28), date(2010, 4, 29)),  # 60 days after the first 12 months
        ("interim", date(2011, 2, 28), date(2011, 4, 29)),
        ("final", date(2012, 2, 29), date(2012, 5, 31)),  # 3 months after the end
    ]


def test_due_dates_short_and_partial_periods():
    assert report_due_dates(date(2009, 1, 1), 12) == [("final", date(2009, 12, 31), date(2010, 3, 31))]
    dues = report_due_dates(date(2009, 1, 1), 30)
    assert [d.kind for d in dues] == ["interim", "interim", "final"]
    assert dues[-1].period_end == date(2011, 6, 30)
    periods = reporting_periods(date(2009, 1, 1), 30)
    assert (periods[-1].start, periods[-1].condition) == (date(2011, 1, 1), "final_report")
    assert periods[0].condition == "interim_report:1"


def test_month_end_clamping():
    assert report_due_dates(date(2009, 1, 31), 13)[0] == ("interim", date(2010, 1, 30), date(2010, 3, 31))


def _report(**kw):
    values = dict(
        report_id="r-1",
        grant="g-1",
        kind="interim",
        number=1,
        period_start=date(2009, 3, 1),
        period_end=date(2010, 2, 28),
        expenditure={"human_resources": "20000.00", "travel": D("5000.50")},
        submitted_at=at(2010, 4, 1),
    )
    values.update(kw)
    return FinancialReport(**values)


def test_expenditure_by_heading_fills_missing_headings():
    report = _report()
    assert report.total == D("25000.50")
    assert len(report.expenditure) == 8 and report.expenditure["indirect_costs"] == D("0.00")


@pytest.mark.parametrize("expenditure", [{"catering": "1.00"}, {"travel": 10.5}, {"travel": "-1.00"}])
def test_bad_expenditure(expenditure):
    with pytest.raises(InvalidInput):
        _report(expenditure=expenditure)


def test_accept_and_return():
    accepted = accept(_report(), at(2010, 5, 1))
    assert accepted.status == ReportStatus.ACCEPTED
    with pytest.raises(Conflict):
        accept(accepted, at(2010, 5, 2))
    with pytest.raises(InvalidInput):
        return_report(_report(), "   ", at(2010, 5, 1))
    returned = return_report(_report(), "missing invoices for travel", at(2010, 5, 1))
    assert (returned.status, returned.reason) == (ReportStatus.RETURNED, "missing invoices for travel")
