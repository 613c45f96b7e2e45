"""A service that lacks a file of its installation says so as a set-up problem — its own error type and the CLI's
exit code 7 — never as a programme rule or an internal error."""

import pytest

from jmdi import failures
from services.common.values.errors import SetupProblem
from tests.integration.test_cli_staff import Jmdi
from tests.support.system import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    empty = tmp_path_factory.mktemp("no-standards")
    with System(services=("reporting",), extra_env={"STANDARDS_DIR": str(empty)}) as running:
        running.standards_dir = empty
        yield running


def test_a_missing_iati_schema_is_a_setup_problem(system, tmp_path):
    reporter = system.client("ec.reporter", ["ec_reporter"])
    with pytest.raises(SetupProblem) as problem:
        reporter.reporting.iati_export(programme_id="JMDI")
    assert str(system.standards_dir) in problem.value.what and "STANDARDS_DIR" in problem.value.remedy

    out = tmp_path / "iati.xml"
    result = Jmdi(system, "ec.reporter", ["ec_reporter"])("report", "iati", "--out", out, expect=failures.SETUP_PROBLEM)
    line = result.stderr.strip()
    assert line.startswith("error: set-up problem: IATI 2.03 standard file not found at") and "rule" not in line
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
