"""What a scenario is, what it reports, and the registry `python -m reliability` runs in order."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Outcome:
    """A scenario's verdict: PASS when no problem was found. `figures` are printed in order, `problems` logged."""

    number: int
    name: str
    figures: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems

    def fail(self, problem: str):
        self.problems.append(problem)

    def check(self, condition: bool, problem: str) -> bool:
        if not condition:
            self.problems.append(problem)
        return condition

    def line(self) -> str:
        figures = " ".join(f"{key}={_fmt(value)}" for key, value in self.figures.items())
        verdict = "PASS" if self.passed else "FAIL"
        head = f"R{self.number} {self.name}: {verdict}"
        tail = f" {figures}" if figures else ""
        if not self.passed:
            tail += f' problems={len(self.problems)} first="{_one_line(self.problems[0])[:160]}"'
        return f"{head}{tail} time={self.seconds:.0f}s"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value).replace(" ", "_")


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace('"', "'")


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    run: Callable  # run(outcome, sizes, log, **options) -> None; records figures and problems on the outcome


SCENARIOS: dict[int, Scenario] = {}


def scenario(number: int, name: str):
    def register(fn):
        SCENARIOS[number] = Scenario(number, name, fn)
        return fn

    return register


def execute(item: Scenario, sizes, log, **options) -> Outcome:
    """Run one scenario; an exception inside it is a FAIL with the error, never a crash of the suite."""
    outcome = Outcome(item.number, item.name)
    started = time.monotonic()
    log(f"=== R{item.number} {item.name}: start")
    try:
        item.run(outcome, sizes, log, **options)
    except Exception as exc:  # the verdict must be printed whatever went wrong
        outcome.fail(f"scenario raised {type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    outcome.seconds = time.monotonic() - started
    for problem in outcome.problems:
        log(f"R{item.number} problem: {problem}")
    log(f"=== R{item.number} {item.name}: {'PASS' if outcome.passed else 'FAIL'} {outcome.figures}")
    return outcome
