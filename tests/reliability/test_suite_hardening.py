"""The reliability suite's hardening scenarios, short: malformed messages to every queue mid-flow (R11), oversized
messages and a flood of refused calls (R12), a three-node RabbitMQ cluster losing a node mid-flow (R13)."""

import pytest

from tests.reliability.suite_runner import run_scenario

pytestmark = pytest.mark.reliability


def test_r11_malformed_messages_crash_nothing_and_are_dead_lettered_once():
    outcome = run_scenario(11)
    assert outcome.figures["crashes"] == 0 and outcome.figures["malformed"] > 0
    # the scenario compares the dead-letter queue with the routing of every message, one by one
    assert outcome.figures["dead_lettered"] > outcome.figures["malformed"] and outcome.figures["max_health_s"] <= 1


def test_r12_oversized_messages_and_a_flood_of_refusals_stay_within_memory_and_audit_bounds():
    outcome = run_scenario(12)
    assert outcome.figures["audit_rows"] <= outcome.figures["audit_bound"]
    assert outcome.figures["peak_rss_mb"] <= outcome.figures["rss_budget_mb"]


def test_r13_a_cluster_node_killed_mid_flow_loses_nothing_and_applies_nothing_twice():
    outcome = run_scenario(13)
    assert outcome.figures["nodes"] == 3 and outcome.figures["killed"] == 1 and outcome.figures["grants"] > 0
