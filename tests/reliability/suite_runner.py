"""Runs a scenario of the reliability suite (reliability/) with the small sizes of `make test`."""

from datetime import datetime

from reliability import scenarios  # noqa: F401  (registers the scenarios)
from reliability.log import SuiteLog
from reliability.scenario import SCENARIOS, execute
from reliability.sizes import FAST
from tests.support.infra import REPO


def run_scenario(number: int):
    log_path = REPO / "var" / "reliability" / f"pytest-{datetime.now():%Y%m%d-%H%M%S}-R{number}" / "suite.log"
    outcome = execute(SCENARIOS[number], FAST, SuiteLog(log_path).scoped(f"R{number}"))
    assert outcome.passed, f"{outcome.line()}\n" + "\n".join(outcome.problems[:20]) + f"\n(log: {log_path})"
    return outcome
