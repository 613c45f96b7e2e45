"""The reliability suite's fault scenarios, short: one kill -9, one broker connection cut, one database cut, each in
the middle of a flow, each proving the fault happened, then every invariant and the clients' evidence."""

import pytest

from tests.reliability.suite_runner import run_scenario

pytestmark = pytest.mark.reliability


def test_r1_a_service_killed_mid_flow_loses_nothing_and_applies_nothing_twice():
    outcome = run_scenario(1)
    assert outcome.figures["kills"] == 1 and outcome.figures["grants"] > 0


def test_r2_a_broker_outage_mid_flow_loses_nothing_and_applies_nothing_twice():
    outcome = run_scenario(2)
    assert outcome.figures["connections_cut"] > 0 and outcome.figures["grants"] > 0


def test_r3_a_database_outage_mid_flow_loses_nothing_and_half_applies_nothing():
    outcome = run_scenario(3)
    assert outcome.figures["backends_cut"] > 0 and outcome.figures["grants"] > 0
