import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import flows  # noqa: E402

LIVE_MARKERS = ("integration", "reliability")
_modules_started: set[Path] = set()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item):
    """Before the first test of a module that runs live flows, wait until the whole module fits in today (UTC):
    its call closes at the end of today. Outside pytest-timeout's wrapper (tryfirst), so that the wait, up to
    flows.LONGEST_MODULE, is not taken for a hanging test."""
    module = item.path
    if module not in _modules_started and any(item.get_closest_marker(m) for m in LIVE_MARKERS):
        _modules_started.add(module)
        flows.wait_for_a_whole_day_left()
    yield
