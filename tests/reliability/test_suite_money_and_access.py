"""The reliability suite's money, access and input scenarios, small: races, identities, fuzzing, broker rights."""

import pytest

from tests.reliability.suite_runner import run_scenario

pytestmark = pytest.mark.reliability


def test_r8_one_award_wins_the_last_200000_and_no_payment_is_made_twice():
    outcome = run_scenario(8)
    assert (outcome.figures["won"], outcome.figures["overspend_eur"], outcome.figures["double_payments"]) == (1, 0, 0)


def test_r9_the_gateway_and_each_service_refuse_and_audit_missing_forged_expired_and_wrong_role_tokens():
    outcome = run_scenario(9)
    figures = outcome.figures
    assert figures["refused_at_gateway"] + figures["refused_by_services"] == figures["audited"] > 0
    assert figures["refused_at_gateway"] > 0 and figures["refused_by_services"] > 0 and figures["throttled"] > 0


def test_r7_fuzzed_rpc_inputs_get_an_answer_or_a_typed_refusal_and_refusals_leave_no_trace():
    outcome = run_scenario(7)
    assert outcome.figures["internal"] == 0 and outcome.figures["generated"] >= 300


def test_r10_a_service_user_cannot_touch_another_services_queues_or_exchange():
    outcome = run_scenario(10)
    assert outcome.figures["refused"] > 0 and outcome.figures["flow"] == "ok"


def test_r14_hostile_text_is_refused_or_kept_inert_and_every_export_is_still_produced():
    outcome = run_scenario(14)
    figures = outcome.figures
    assert figures["internal"] == 0 and figures["controls_refused"] > 0 and figures["grants"] > 0
    assert figures["hostile_titles"] > 0 and figures["xlsx_text_cells"] > 0 and figures["scheduled_reports"] >= 2
