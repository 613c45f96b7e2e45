"""docs/staff-walkthrough.md, run as written, so the page cannot rot.

The commands are read from the page itself: every line of a fenced block in its numbered sections (0 to 10), in
order, run by bash from an empty folder with the checkout's `jmdi` on the PATH, talking to the System's gateway in
local mode (the services trust the checkout's local issuer, as after `make run`), as a reader runs them — `make run` is the test's running System. Text in angle brackets is
filled in from what earlier commands print (queried with `--json`, as a reader reads ids off a table): the page
says which proposal each command is about. Each command must end as the page says: exit 0, or — where its
comment says "refused by rule X" — the refusal naming X. A command marked "each assessor, each proposal of their
list" runs for every assessment waiting in `assessments mine`. "The demo" section is not run here (it needs a
fresh start): tests/integration/test_cli_staff.py runs the demo. README's copy of the page is checked in
tests/unit/cli/test_cli_docs.py."""

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jmdi.cli import app
from tests.integration.test_cli_staff import LocalSystem
from tests.support.infra import REPO, eventually

pytestmark = pytest.mark.integration

PAGE = REPO / "docs" / "staff-walkthrough.md"
CALL = "JMDI-2008"
ASSESSORS = ("karim", "joana", "ngozi")
DEADLINE = "+150s"  # long enough for sections 2 and 3 on a busy machine; the run then waits for it
REFUSED = re.compile(r"refused by rule ([a-z_.]+)")


@dataclass
class Step:
    section: str
    command: str
    comment: str = ""


def steps_of(text: str) -> list[Step]:
    """The page's commands in order: continuation lines joined, heredocs kept whole, comments split off."""
    steps, section, block, lines = [], "", False, iter(text.splitlines())
    for line in lines:
        if line.startswith("## "):
            section = line[3:]
            continue
        if line.startswith("```"):
            block = not block
            continue
        if not block or not re.match(r"\d+\.", section) or not line.strip():
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        if "<<'EOF'" in line:
            body = []
            for more in lines:
                body.append(more)
                if more == "EOF":
                    break
            steps.append(Step(section, "\n".join([line, *body])))
            continue
        parts = re.split(r"\s+#\s", line, maxsplit=1)
        command, comment = parts[0], parts[1] if len(parts) > 1 else ""
        steps.append(Step(section, re.sub(r"\s+", " ", command).strip(), comment.strip()))
    return steps


class Walk:
    """Runs the page's commands against the System and keeps what each printed."""

    def __init__(self, system, folder: Path):
        self.system, self.folder = system, folder
        self.env = {k: v for k, v in os.environ.items() if k not in ("JMDI_TOKEN", "JMDI_ISSUER_KEY", "PYTHONWARNINGS")}
        self.env.update(
            JMDI_URL=system.gateway_url, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", JMDI_TOKEN=""
        )
        self.ran: list[tuple[str, subprocess.CompletedProcess]] = []
        self.deadline = None

    # --- reading the system as a reader does ------------------------------------------------------------------
    def query(self, *args, user: str | None = None):
        """`jmdi [--user U] ARGS --json`, in process (quicker than a shell for the look-ups)."""
        argv = (["--user", user] if user else []) + [str(a) for a in args] + ["--json"]
        result = CliRunner().invoke(app, argv, env={"JMDI_URL": self.system.gateway_url, "JMDI_TOKEN": ""})
        assert result.exit_code == 0, f"jmdi {' '.join(argv)} -> {result.exit_code}\n{result.output}"
        return json.loads(result.stdout)

    def proposal_of(self, place: str) -> dict:
        found = [p for p in self.query("proposals", "list", "--call", CALL) if place in p["lead_organisation"]]
        assert len(found) == 1, f"one proposal led from {place}: {found}"
        return found[0]

    def the_grant(self) -> dict:
        grants = self.query("grants", "list", "--call", CALL)
        assert len(grants) == 1, grants
        return grants[0]

    def fill(self, command: str) -> str:
        """The placeholders of one command, from what the services say now."""
        today = datetime.now(timezone.utc).date().isoformat()
        known = {
            "<deadline>": lambda: DEADLINE,
            "<date>": lambda: today,
            "<reference>": lambda: self.proposal_of("Oujda")["reference"],
            "<organisation-id>": lambda: self.query("organisations", "list", "--registration-number", "MA-66723-W")[0][
                "organisation_id"
            ],
            "<grant-id>": lambda: self.the_grant()["grant_id"],
            "<payment-id>": lambda: next(
                p["payment_id"]
                for p in self.query("payments", "list", "--grant", self.the_grant()["grant_id"])
                if p["status"] == "requested"
            ),
            "<report-id>": lambda: self.query("report", "list")[0]["report_id"],
        }
        about = {
            r"proposals withdraw": "Hawassa",
            r"--outcome excluded": "Mindelo",
            r"--outcome cleared": "Quito",
            r"awards award": "Oujda",
            r"awards reject": "Oran",
        }
        if "<proposal-id>" in command:
            place = next(p for pattern, p in about.items() if re.search(pattern, command))
            command = command.replace("<proposal-id>", self.proposal_of(place)["proposal_id"])
        for placeholder, value in known.items():
            if placeholder in command:
                command = command.replace(placeholder, value())
        assert not re.search(r"<[a-z-]+>", command), f"a placeholder the walkthrough test cannot fill: {command}"
        return command

    # --- running ----------------------------------------------------------------------------------------------
    def shell(self, command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["bash", "-c", command], cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=600
        )
        self.ran.append((command, result))
        return result

    def run(self, step: Step):
        if step.command.startswith("make run"):
            return  # the System's services are running
        if "once the deadline has passed" in step.comment:
            time.sleep(max(0.0, (self.deadline - datetime.now(timezone.utc)).total_seconds()) + 1)
        if "each assessor, each proposal of their list" in step.comment:
            return self.for_each_assessment(step)
        if "within seconds" in step.comment:
            return eventually(
                lambda: self.check(step, self.shell(self.fill(step.command)), quiet=True), 60, 1, step.command
            )
        result = self.shell(self.fill(step.command))
        self.check(step, result)
        if "calls open" in step.command:
            self.deadline = datetime.fromisoformat(self.query("calls", "show", CALL)["deadline"])

    def check(self, step: Step, result: subprocess.CompletedProcess, quiet: bool = False) -> bool:
        said = f"{step.command}\n-> {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        refused = REFUSED.search(step.comment)
        if refused and result.returncode == 0 and step.comment[refused.end() :].strip().startswith("if "):
            return True  # "refused by rule X if ...": the page allows either outcome
        if refused:
            ok = result.returncode == 4 and f"refused by rule {refused.group(1)}" in result.stderr
        else:
            ok = result.returncode == 0
        if quiet:
            return ok
        assert ok, said
        return ok

    def for_each_assessment(self, step: Step):
        stage = re.search(r"--stage (\w+)", step.command).group(1)
        for _ in range(3):  # a third assessor may be assigned while the others score: look again
            pending = [
                (who, a["proposal_id"])
                for who in ASSESSORS
                for a in self.query("assessments", "mine", "--call", CALL, "--stage", stage, "--pending-only", user=who)
            ]
            for who, proposal_id in pending:
                command = step.command.replace("<assessor>", who).replace("<proposal-id>", proposal_id)
                self.check(step, self.shell(command))
            if not pending:
                return
        assert False, f"assessments still pending at stage {stage}"

    def output_of(self, start: str) -> subprocess.CompletedProcess:
        return next(result for command, result in reversed(self.ran) if command.startswith(start))


@pytest.fixture(scope="module")
def system():
    with LocalSystem(extra_env={"CALLS_DEADLINE_SWEEP_SECONDS": "5"}) as running:
        yield running


@pytest.fixture(scope="module")
def walked(system, tmp_path_factory):
    walk = Walk(system, tmp_path_factory.mktemp("walkthrough"))
    steps = steps_of(PAGE.read_text(encoding="utf-8"))
    assert len(steps) > 50 and {s.section[:2] for s in steps} >= {f"{n}." for n in range(10)}
    for step in steps:
        walk.run(step)
    return walk


def test_the_walkthrough_runs_today_as_written(walked):
    """Every command of the page ran and ended as the page says (the fixture asserts each one)."""
    grant = walked.the_grant()
    assert grant["status"] == "contracted" and grant["amount_eur"] == "180000.00" and grant["paid_eur"] == "57600.00"
    assert grant["duration_months"] == 33
    assert (walked.folder / "budget.xlsx").read_bytes()[:2] == b"PK" and (walked.folder / "report.xlsx").exists()
    assert "<iati-activity" in (walked.folder / "jmdi-iati.xml").read_text()


def test_no_command_prints_a_python_warning(walked):
    for command, result in walked.ran:
        assert "Warning" not in result.stderr, f"{command}\n{result.stderr}"


def test_tables_show_what_a_person_needs(walked):
    mine = walked.output_of("jmdi --user karim assessments mine").stdout
    assert "Relevance to the objectives and priorities of the call" in mine and "1.1" in mine
    assert "out of 50, threshold 30" in mine
    scores = walked.output_of("jmdi assessments scores").stdout
    assert "39.00 / 50" in scores and "karim" in scores
    ranking = walked.output_of("jmdi ranking show").stdout
    oujda = walked.proposal_of("Oujda")["reference"]
    assert oujda in ranking and "main" in ranking and "80.00" in ranking
    refused = walked.output_of("jmdi grantee-reports submit").stderr
    assert "refused by rule report.period_not_ended" in refused and len(refused.strip().splitlines()) == 1


def test_a_second_import_says_nothing_new_and_report_generate_says_who_received_it(walked):
    imports = [
        result for command, result in walked.ran if command == "jmdi proposals import proposals.xlsx --call JMDI-2008"
    ]
    assert len(imports) == 2 and "all rows submitted" in imports[0].stdout
    assert "already submitted, nothing new" in imports[1].stdout
    generated = walked.output_of("jmdi report generate").stderr
    assert "nobody received it: EC_REPORT_RECIPIENTS is not set" in generated


def test_the_cli_outside_the_walkthrough_prints_no_warning(system):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(JMDI_URL=system.gateway_url, JMDI_TOKEN="")
    jmdi = str(Path(sys.executable).parent / "jmdi")
    for args in (
        ["--help"],
        ["roles", "--role", "auditor"],
        ["whoami"],
        ["calls", "show", "NO-SUCH-CALL"],
        ["token", "--user", "maria.lopez", "--role", "programme_manager"],
    ):
        result = subprocess.run([jmdi, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode in (0, 3), (args, result.stderr)
        assert "Warning" not in result.stderr, (args, result.stderr)
