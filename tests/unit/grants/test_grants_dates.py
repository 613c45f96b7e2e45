"""A grant's dates make sense: within the programme period and in the order of their chain — call closed ≤ award
decision ≤ contract start ≤ payment requested ≤ value date — and nothing in the future but what is planned. Each
refusal is a Conflict naming its rule, and changes nothing."""

from datetime import date, datetime, timezone
from decimal import Decimal as D

import pytest

from services.common.values.errors import Conflict
from services.grants.domain import Grant, Organisation, ProgrammeCalendar, reporting_periods

from grants_helpers import LIMITS, at, budgets, proposal

# a programme of 2008-12-01 to 2011-11-30 whose call closed on 2009-03-31 at noon
CALENDAR = ProgrammeCalendar(datetime(2009, 3, 31, 12, tzinfo=timezone.utc), date(2008, 12, 1), date(2011, 11, 30))
ORG = Organisation(
    "Association Migrations et Développement",
    "RC-1234",
    "MA",
    "MA64011519000001205000534921",
    "Jamal Lahlou",
    account_validated=True,
)


def award(decision_date, recorded=at(2009, 6, 20), calendar=CALENDAR, **kw):
    window, programme = budgets()
    return Grant.award(
        "g-1",
        proposal(**kw),
        D("200000.00"),
        LIMITS,
        window,
        programme,
        decision_reference="SC-1",
        decision_date=decision_date,
        awarded_at=recorded,
        calendar=calendar,
    )[0], window


def rule(action) -> str:
    with pytest.raises(Conflict) as refused:
        action()
    return refused.value.rule


@pytest.mark.parametrize(
    "decision_date, expected",
    [
        (date(2009, 6, 21), "award.decision_in_future"),  # recorded on 2009-06-20
        (date(2031, 1, 1), "award.decision_in_future"),
        (date(2009, 3, 30), "award.before_call_closed"),  # the call closed on 2009-03-31
        (date(2009, 1, 15), "award.before_call_closed"),
    ],
)
def test_an_award_decision_is_dated_after_the_call_closed_and_not_in_the_future(decision_date, expected):
    window, programme = budgets()
    assert (
        rule(
            lambda: Grant.award(
                "g-1",
                proposal(),
                D("200000.00"),
                LIMITS,
                window,
                programme,
                decision_reference="SC-1",
                decision_date=decision_date,
                awarded_at=at(2009, 6, 20),
                calendar=CALENDAR,
            )
        )
        == expected
    )
    assert window.committed == budgets()[0].committed  # nothing committed


def test_an_award_decision_outside_the_programme_period_is_refused():
    late = ProgrammeCalendar(None, date(2008, 12, 1), date(2011, 11, 30))
    assert (
        rule(lambda: award(date(2012, 1, 5), recorded=at(2012, 1, 6), calendar=late))
        == "award.outside_programme_period"
    )
    assert rule(lambda: award(date(2008, 11, 1), calendar=late)) == "award.outside_programme_period"
    grant, _ = award(date(2009, 3, 31))  # on the day the call closed
    assert grant.decision_date == date(2009, 3, 31)


def test_bounds_grants_was_never_told_are_not_checked():
    grant, _ = award(date(2009, 1, 15), calendar=ProgrammeCalendar())
    assert grant.decision_date == date(2009, 1, 15)


def test_a_contract_starts_on_or_after_the_award_and_ends_within_the_programme():
    grant, _ = award(date(2009, 6, 15), duration_months=24)
    assert rule(lambda: grant.sign_contract(ORG, date(2009, 6, 1), at(2009, 6, 20))) == "contract.starts_before_award"
    assert (
        rule(lambda: grant.sign_contract(ORG, date(2011, 12, 1), at(2009, 6, 20)))
        == "contract.outside_programme_period"
    )
    # 24 months from 2010-01-01 end on 2011-12-31, a month after the programme
    assert rule(lambda: grant.sign_contract(ORG, date(2010, 1, 1), at(2009, 6, 20))) == "contract.ends_after_programme"
    assert grant.status.value == "awarded" and not grant.schedule  # every refusal left it as it was
    grant.sign_contract(ORG, date(2009, 7, 1), at(2009, 6, 20))  # a start after signature is a plan: allowed
    assert (grant.start_date, grant.end_date) == (date(2009, 7, 1), date(2011, 6, 30))


def test_a_duration_amendment_may_not_take_the_action_past_the_programme():
    from services.grants.domain import Amendment

    grant, window = award(date(2009, 6, 15), duration_months=24)
    grant.sign_contract(ORG, date(2009, 7, 1), at(2009, 6, 20))
    _, programme = budgets()
    too_long = Amendment("a-1", "duration", "more time", new_duration_months=30)
    assert rule(lambda: grant.amend(too_long, LIMITS, window, programme)) == "amendment.ends_after_programme"
    assert grant.duration_months == 24
    grant.amend(Amendment("a-2", "duration", "a little more time", new_duration_months=29), LIMITS, window, programme)
    assert grant.end_date == date(2011, 11, 30)


def test_a_value_date_is_neither_before_the_request_nor_in_the_future():
    grant, _ = award(date(2009, 6, 15), duration_months=24)
    grant.sign_contract(ORG, date(2009, 7, 1), at(2009, 6, 20))
    tranche = grant.payable_amount(1)
    grant.request_payment("k1", 1, tranche, "officer", at(2009, 7, 2))
    grant.approve_payment("k1", "approver", at(2009, 7, 3))
    assert (
        rule(lambda: grant.mark_paid("k1", date(2009, 7, 1), "B-1", today=date(2009, 7, 3)))
        == "payment.value_date_before_request"
    )
    assert (
        rule(lambda: grant.mark_paid("k1", date(2009, 7, 4), "B-1", today=date(2009, 7, 3)))
        == "payment.value_date_in_future"
    )
    assert grant.paid_total == D("0.00")
    grant.mark_paid("k1", date(2009, 7, 2), "B-1", today=date(2009, 7, 3))  # the day it was requested
    assert grant.paid_total == tranche


@pytest.mark.parametrize(
    "months, last_day", [(6, date(2009, 12, 31)), (18, date(2010, 12, 31)), (36, date(2012, 6, 30))]
)
def test_every_report_covers_a_part_of_the_grant_period(months, last_day):
    """Reports carry no date of their own: the contract gives each its period, inside the action's."""
    start = date(2009, 7, 1)
    periods = reporting_periods(start, months)
    assert periods[0].start == start and periods[-1].end == last_day
    for earlier, later in zip(periods, periods[1:]):
        assert start <= earlier.start <= earlier.end < later.start <= later.end <= last_day
