from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from calls_builders import DEADLINE, UTC, make_call
from services.calls.domain import (
    ApplicantType,
    CallStatus,
    CallWindow,
    ConsortiumRule,
    PartnerScope,
    call_from_dict,
    call_to_dict,
)
from services.common.values.errors import Conflict, InvalidInput, NotFound

OPENING = datetime(2008, 12, 5, tzinfo=UTC)


def test_new_call_is_a_draft_with_profile_defaults(call):
    assert call.status is CallStatus.DRAFT
    assert call.window_codes == ("remittances", "migrants_rights")
    assert call.window("remittances").allocation == Decimal("3750000.00")
    assert call.total_allocation == Decimal("7500000.00")
    assert (call.min_grant, call.max_grant, call.max_ec_share) == (
        Decimal("50000.00"),
        Decimal("200000.00"),
        Decimal("0.90"),
    )
    assert (call.contingency_cap, call.indirect_cap) == (Decimal("0.05"), Decimal("0.07"))
    assert ApplicantType.LOCAL_AUTHORITY in call.eligible_applicant_types
    assert call.deadline.tzinfo is timezone.utc
    with pytest.raises(NotFound):
        call.window("migrant_communities")


def test_lifecycle_draft_open_closed_evaluated(call):
    assert not call.is_open_for_submission(OPENING)
    call.open(OPENING)
    assert call.status is CallStatus.OPEN and call.opened_at == OPENING
    call.close(DEADLINE)
    assert call.status is CallStatus.CLOSED and call.closed_at == DEADLINE
    call.mark_evaluated()
    assert call.status is CallStatus.EVALUATED


@pytest.mark.parametrize(
    "step, rule",
    [
        (lambda c: c.open(OPENING), "call.not_draft"),
        (lambda c: c.amend(title="x"), "call.not_draft"),
        (lambda c: c.mark_evaluated(), "call.not_closed"),
    ],
)
def test_transitions_refused_from_open(call, step, rule):
    call.open(OPENING)
    with pytest.raises(Conflict) as exc:
        step(call)
    assert exc.value.rule == rule


def test_close_and_evaluate_refused_from_draft(call):
    with pytest.raises(Conflict) as exc:
        call.close(DEADLINE)
    assert exc.value.rule == "call.not_open"
    with pytest.raises(Conflict) as exc:
        call.mark_evaluated()
    assert exc.value.rule == "call.not_closed"


def test_evaluated_is_final(call):
    call.open(OPENING)
    call.close(DEADLINE)
    call.mark_evaluated()
    for step, rule in (
        (lambda: call.mark_evaluated(), "call.not_closed"),
        (lambda: call.close(DEADLINE), "call.not_open"),
    ):
        with pytest.raises(Conflict) as exc:
            step()
        assert exc.value.rule == rule


def test_cannot_open_at_or_after_deadline(call):
    with pytest.raises(Conflict) as exc:
        call.open(DEADLINE)
    assert exc.value.rule == "call.deadline_passed"
    assert call.status is CallStatus.DRAFT


def test_cannot_close_before_deadline(call):
    call.open(OPENING)
    with pytest.raises(Conflict) as exc:
        call.close(DEADLINE - timedelta(seconds=1))
    assert exc.value.rule == "call.deadline_not_reached"


def test_open_for_submission_until_the_deadline_inclusive(call):
    call.open(OPENING)
    assert call.is_open_for_submission(DEADLINE)
    assert not call.is_open_for_submission(DEADLINE + timedelta(microseconds=1))
    # the same instant given in another offset
    assert call.is_open_for_submission(DEADLINE.astimezone(timezone(timedelta(hours=1))))


def test_naive_times_are_refused(call):
    with pytest.raises(InvalidInput):
        call.open(datetime(2008, 12, 5))
    with pytest.raises(InvalidInput):
        call.is_open_for_submission(datetime(2008, 12, 5))


def test_amend_a_draft(call, programme, profile):
    call.amend(title="Revised call", max_grant="150000.00", programme=programme, profile=profile)
    assert call.title == "Revised call" and call.max_grant == Decimal("150000.00")
    call.amend(windows={"migrant_communities": "1000000.00"}, programme=programme)
    assert call.window_codes == ("migrant_communities",)


def test_amend_rejects_unknown_fields_and_bad_values(call, programme, profile):
    with pytest.raises(InvalidInput) as exc:
        call.amend(status="open", id="other")
    assert set(exc.value.errors) == {"status", "id"}
    with pytest.raises(InvalidInput) as exc:
        call.amend(min_grant="250000.00")
    assert "max_grant" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:
        call.amend(windows={"tourism": "1.00"}, programme=programme)
    assert "windows.0.code" in exc.value.errors
    assert call.window_codes == ("remittances", "migrants_rights")  # unchanged after a refused amendment


def test_windows_must_belong_to_programme_and_fit(programme, profile):
    with pytest.raises(InvalidInput) as exc:
        make_call(programme, profile, windows={"remittances": "3750000.01", "tourism": "10.00"})
    assert {"windows.0.allocation", "windows.1.code"} <= set(exc.value.errors)
    call = make_call(programme, profile, windows=[CallWindow(w.code, w.allocation) for w in programme.windows])
    assert call.total_allocation == programme.ec_contribution


def test_windows_sum_cannot_exceed_contribution(programme, profile):
    import dataclasses

    small = dataclasses.replace(programme, ec_contribution=Decimal("5000000.00"))
    with pytest.raises(InvalidInput) as exc:
        make_call(small, profile)
    assert "more than the EC contribution" in exc.value.errors["windows"][0]


def test_call_bounds_stay_inside_profile(programme, profile):
    with pytest.raises(InvalidInput) as exc:
        make_call(programme, profile, min_grant="40000.00", max_grant="250000.00", max_ec_share="0.95")
    assert {"min_grant", "max_grant", "max_ec_share"} <= set(exc.value.errors)
    narrow = make_call(programme, profile, min_grant="60000.00", max_ec_share="0.80")
    assert narrow.min_grant == Decimal("60000.00") and narrow.max_ec_share == Decimal("0.80")


def test_call_input_errors(programme, profile):
    with pytest.raises(InvalidInput) as exc:
        make_call(
            programme,
            profile,
            deadline=datetime(2009, 3, 31),
            windows={},
            eligible_applicant_types=["ngo", "pirate"],
            title=" ",
        )
    assert {"deadline", "windows", "eligible_applicant_types", "title"} <= set(exc.value.errors)
    with pytest.raises(InvalidInput):
        make_call(programme, profile, min_duration_months=20, max_duration_months=12)


@pytest.mark.parametrize("deadline", [datetime(2012, 1, 1, tzinfo=UTC), datetime(2008, 11, 30, 12, tzinfo=UTC)])
def test_a_deadline_outside_the_programme_period_is_refused_by_its_rule(programme, profile, deadline):
    """The programme runs 2008-12-01 to 2011-11-30: a call closing after it, or before it starts, is refused."""
    with pytest.raises(Conflict) as refused:
        make_call(programme, profile, deadline=deadline)
    assert refused.value.rule == "call.deadline_outside_programme"
    assert "2008-12-01 to 2011-11-30" in refused.value.reason
    make_call(programme, profile, deadline=datetime(2011, 11, 30, 23, tzinfo=UTC))  # its last day is inside


def test_round_trip_through_dict(call):
    call.open(OPENING)
    data = call_to_dict(call)
    assert data["windows"][0] == {"code": "remittances", "allocation": "3750000.00"}
    assert data["status"] == "open" and data["max_ec_share"] == "0.90"
    assert call_from_dict(data) == call


def test_consortium_rule_round_trip(programme, profile):
    rule = ConsortiumRule(partner_scope=PartnerScope.ANY_ELIGIBLE_COUNTRY, max_co_applicants=4)
    call = make_call(programme, profile, consortium=rule)
    assert call_from_dict(call_to_dict(call)).consortium == rule
