"""The reliability suite's delivery scenarios, small: duplicates, poison and replay, consumers that never ran."""

import pytest

from tests.reliability.suite_runner import run_scenario

pytestmark = pytest.mark.reliability


def test_r4_every_event_delivered_three_times_changes_nothing():
    outcome = run_scenario(4)
    assert outcome.figures["copies"] > 0 and outcome.figures["absorbed"] > 0


def test_r5_poison_is_dead_lettered_others_flow_and_replay_applies_it_once():
    outcome = run_scenario(5)
    assert outcome.figures["replay"] == "applied"
    assert outcome.figures["flowed"] > 0


def test_r6_consumers_that_never_ran_apply_every_event_once():
    outcome = run_scenario(6)
    assert outcome.figures["waiting"] > 0
