"""A service audits at most REFUSAL_AUDITS_PER_MINUTE refusals one by one; the rest are counted and summarised in
one row when the next minute starts (services/common/service/entrypoints.py)."""

from services.common.service.entrypoints import RefusalBudget


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_refusals_past_the_budget_are_counted_then_summarised_once():
    clock = Clock()
    budget = RefusalBudget(3, clock=clock)
    decisions = [budget.admit() for _ in range(10)]
    assert decisions == [(True, 0)] * 3 + [(False, 0)] * 7
    clock.now += 61
    assert budget.admit() == (True, 7)  # the next minute: this one audited, and the 7 summarised
    assert budget.admit() == (True, 0)  # summarised once only
    clock.now += 61
    assert budget.admit() == (True, 0)  # nothing suppressed in between
