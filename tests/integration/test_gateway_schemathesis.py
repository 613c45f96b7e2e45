"""Property-based testing of the staff API from its own OpenAPI document (schemathesis, pinned in pyproject.toml):
inputs generated for every operation — valid ones and deliberately invalid ones (wrong types, missing fields,
wrong content types and methods) — against the running gateway and services, with a token holding every staff
role. None may be answered 500: every answer is a result or a typed refusal.

The run is seeded (the same inputs each time) and bounded by examples per operation, never by time."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from services.common.security.roles import MATRIX, STAFF_ROLES
from services.gateway.catalogue import operations
from tests.support.system import System

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = int(os.environ.get("JMDI_SCHEMATHESIS_EXAMPLES", "5"))


@pytest.fixture(scope="module")
def system():
    with System() as running:
        yield running


def schemathesis_cli() -> str:
    exe = Path(sys.executable).with_name("st")
    found = str(exe) if exe.exists() else shutil.which("st")
    assert found, "schemathesis is not installed (pip install -e '.[test]')"
    return found


def test_no_generated_request_is_answered_with_a_server_error(system, tmp_path):
    staff_roles = sorted({r for roles in MATRIX.values() for r in roles} & set(STAFF_ROLES))
    token = system.token("schemathesis.staff", staff_roles)
    command = [
        schemathesis_cli(),
        "run",
        f"{system.gateway_url}/api/v1/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        "2008",
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--request-timeout",
        "120",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stdout[-15000:] + result.stderr[-3000:]
    # it did test every operation of the document
    (report,) = tmp_path.glob("*.xml")
    cases = ElementTree.parse(report).getroot().iter("testcase")
    tested = {case.get("name", "").split(" ", 1)[-1] for case in cases}
    assert {f"/api/v1/{op.service}/{op.name}" for op in operations()} <= tested, sorted(tested)[:5]
