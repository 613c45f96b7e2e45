"""Live flows (integration and reliability modules, the benchmarks) use a call that closes at the end of today:
they start only when the whole module fits in what is left of the day."""

from datetime import datetime, timedelta, timezone

import pytest

from tests.support.flows import end_of_today, wait_before_midnight


def at(hh_mm_ss: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-04T{hh_mm_ss}+00:00")


@pytest.mark.parametrize("now", ["00:00:00", "12:00:00", "23:40:00", "23:45:00"])
def test_no_wait_while_a_whole_module_fits_in_the_day(now):
    assert wait_before_midnight(at(now)) == 0


@pytest.mark.parametrize(
    ("now", "seconds"), [("23:45:00.5", 900.5), ("23:50:00", 601), ("23:59:59", 2), ("23:59:59.75", 1.25)]
)
def test_near_midnight_it_waits_until_just_past_it(now, seconds):
    assert wait_before_midnight(at(now)) == seconds
    assert at(now) + timedelta(seconds=seconds) > datetime(2026, 12, 5, tzinfo=timezone.utc)


def test_a_shorter_need_waits_later():
    assert wait_before_midnight(at("23:50:00"), timedelta(minutes=5)) == 0
    assert wait_before_midnight(at("23:50:00"), timedelta(minutes=10, seconds=1)) == 601


def test_the_calls_deadline_is_the_last_second_of_today():
    deadline = end_of_today()
    assert (deadline.hour, deadline.minute, deadline.second, deadline.microsecond) == (23, 59, 59, 0)
    assert deadline.date() == datetime.now(timezone.utc).date()
