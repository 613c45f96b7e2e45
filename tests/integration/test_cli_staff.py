"""The jmdi CLI against the running System: staff commands, exit codes, bulk import, EC reports, least-privilege
broker user, and the demo.

The services run as `make run` runs them — no JMDI_SECRET, so they sign with the checkout's development secret
(var/dev-secret) — which lets the demo run in the CLI's local mode, the way a developer runs it."""
import json
import secrets
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from jmdi import failures, importer
from jmdi.cli import app
from services.common.auth import issue_token, resolve_secret
from tests.support.system import System
from tests.deploy.deploy_helpers import DEPLOY, load_module
from tests.support import flows

DEV_SECRET = resolve_secret("")  # var/dev-secret, created on first use like the services do

pytestmark = pytest.mark.integration

CALL = "CLI-2008"


class Jmdi:
    """`jmdi ...` as a staff member: JMDI_TOKEN for that user and roles, AMQP_URI of the test System."""

    def __init__(self, system, user=None, roles=(), token=None, amqp_uri=None, secret=""):
        self.env = {"AMQP_URI": amqp_uri or system.amqp_uri, "JMDI_SECRET": secret,
                    "JMDI_TOKEN": token if token is not None else (system.token(user, roles) if user else "")}

    def __call__(self, *args, expect=0):
        result = CliRunner().invoke(app, [str(a) for a in args], env=self.env)
        assert result.exit_code == expect, f"jmdi {' '.join(map(str, args))} -> {result.exit_code}\n{result.output}"
        return result

    def json(self, *args, expect=0):
        return json.loads(self(*args, "--json", expect=expect).stdout)


class LocalSystem(System):
    """The services without JMDI_SECRET: they, and the tokens of this module, use the development secret."""

    def token(self, user, roles, ttl=timedelta(hours=1)):
        return issue_token(DEV_SECRET, user, roles, ttl)


@pytest.fixture(scope="module")
def system():
    with LocalSystem(extra_env={"JMDI_SECRET": ""}) as running:
        yield running


@pytest.fixture(scope="module")
def staff(system):
    return {
        "pm": Jmdi(system, "maria.lopez", ["programme_manager"]),
        "committee": Jmdi(system, "steering.chair", ["committee"]),
        "officer": Jmdi(system, "farid.haddad", ["finance_officer"]),
        "approver": Jmdi(system, "claire.dubois", ["finance_approver"]),
        "auditor": Jmdi(system, "olga.audit", ["auditor"]),
        "reporter": Jmdi(system, "ec.reporter", ["ec_reporter"]),
    }


@pytest.fixture(scope="module")
def opened_call(staff, tmp_path_factory):
    pm = staff["pm"]
    programme = tmp_path_factory.mktemp("programme") / "cli.json"
    programme.write_text(json.dumps(flows.programme("CLI")))
    pm("programmes", "load", programme)
    windows = [f"--window={w}=3750000.00" for w in flows.WINDOWS]
    pm("calls", "create", CALL, "--programme", "CLI", "--title", "CLI call 2008",
       "--deadline", flows.call()["deadline"], *windows)
    opened = pm.json("calls", "open", CALL)
    assert opened["status"] == "open"
    return opened


def test_errors_have_their_exit_codes_and_one_line(system, staff, opened_call):
    pm = staff["pm"]
    missing = pm("calls", "show", "NO-SUCH-CALL", expect=failures.NOT_FOUND)
    assert "not found: call 'NO-SUCH-CALL' not found" in missing.stderr
    again = pm("calls", "open", CALL, expect=failures.CONFLICT)
    assert again.stderr.startswith("error: refused by rule call.")
    bad = pm("calls", "create", "CLI-BAD", "--programme", "CLI", "--title", "x", "--deadline", "tomorrow",
             "--window", "remittances=lots", expect=failures.INVALID_INPUT)
    assert "invalid input:" in bad.stderr and "deadline" in bad.stderr and "windows.0.allocation_eur" in bad.stderr
    refused = staff["reporter"]("calls", "open", CALL, expect=failures.NOT_ALLOWED)
    assert "not allowed: ec.reporter (ec_reporter) may not calls.open_call" in refused.stderr
    forged = Jmdi(system, token="x.y.z")("calls", "list", expect=failures.NOT_ALLOWED)
    assert "invalid token" in forged.stderr
    # JMDI_SECRET configured and no token: no local mode, nothing implicit
    Jmdi(system, secret=DEV_SECRET)("calls", "list", expect=failures.NOT_ALLOWED)
    for result in (missing, again, bad, refused, forged):
        assert len(result.stderr.strip().splitlines()) == 1


def test_proposals_import_is_all_or_nothing_and_idempotent(system, staff, opened_call, tmp_path):
    pm = staff["pm"]
    rows = [importer.flatten({k: v for k, v in flows.proposal(300 + n, call_id=CALL).items()
                              if k != "idempotency_key"}) for n in range(12)]
    before = system.count_rows("calls", "proposals")

    broken = [dict(row) for row in rows]
    broken[3]["lead_email"] = "nobody-at-example.org"
    broken[7]["target_country"] = "FR"
    broken[9]["partner1_country"] = "SN"  # no consortium member in an EU member state
    bad_file = tmp_path / "broken.xlsx"
    importer.write_rows(broken, bad_file)
    result = pm("proposals", "import", bad_file, "--call", CALL, expect=failures.INVALID_INPUT)
    assert "applicants.0.email" in result.stdout and "target_country" in result.stdout
    # the service's own eligibility rules were run on each row before anything was sent
    assert "proposal.country_not_eligible" in result.stdout and "consortium.no_eu_partner" in result.stdout
    assert system.count_rows("calls", "proposals") == before  # nothing half-imported

    good_file = tmp_path / "proposals.csv"
    importer.write_rows(rows, good_file)
    first = pm.json("proposals", "import", good_file, "--call", CALL)
    assert first["submitted"] == 12 and first["errors"] == 0
    assert system.count_rows("calls", "proposals") == before + 12
    rerun = pm.json("proposals", "import", good_file, "--call", CALL)
    assert rerun["submitted"] == 12
    assert system.count_rows("calls", "proposals") == before + 12  # the rerun found the same proposals

    listed = pm.json("proposals", "list", "--call", CALL)
    assert len(listed) >= 12
    table = pm("proposals", "list", "--call", CALL)
    assert listed[0]["reference"] in table.stdout


def test_audit_shows_who_did_what_and_refusals(staff, opened_call):
    rows = staff["auditor"].json("audit", "--entity", f"call:{CALL}")
    assert [(r["service"], r["operation"], r["user"]) for r in rows][:2] == [
        ("calls", "calls.create_call", "maria.lopez"), ("calls", "calls.open_call", "maria.lopez")]
    staff["reporter"]("calls", "close", CALL, expect=failures.NOT_ALLOWED)
    refused = staff["auditor"].json("audit", "--outcome", "refused", "--who", "ec.reporter")
    assert any(r["operation"] == "calls.close_call" and r["roles"] == ["ec_reporter"] for r in refused)
    table = staff["auditor"]("audit", "--entity", f"call:{CALL}")
    assert "call_opened" in table.stdout
    staff["reporter"]("audit", expect=failures.NOT_ALLOWED)


def test_health_and_dead_letters_on_every_service(staff):
    health = staff["pm"].json("health")
    assert [h["service"] for h in health] == ["calls", "grants", "notifications", "reporting"]
    assert all(h["status"] == "ok" for h in health)
    held = staff["pm"].json("dead-letters", "list")
    assert isinstance(held, list)
    staff["pm"]("dead-letters", "replay", "999999", "--service", "grants", expect=failures.NOT_FOUND)


def test_the_cli_works_as_the_least_privilege_broker_user(system, staff, opened_call):
    """The CLI connects as the jmdi-staff broker user of deploy/rabbitmq: RPC requests and its replies only."""
    definitions = load_module(DEPLOY / "rabbitmq" / "generate_definitions.py", "jmdi_generate_definitions_cli")
    user, password = f"jmdi-staff-{system.id}", secrets.token_urlsafe(16)
    broker = system.broker
    broker.api("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": ""})
    try:
        broker.api("PUT", f"permissions/{quote(system.vhost, safe='')}/{quote(user, safe='')}",
                   definitions.staff_permissions())
        as_staff = Jmdi(system, "maria.lopez", ["programme_manager"],
                        amqp_uri=broker.amqp_uri(system.vhost, user, password))
        assert as_staff.json("calls", "show", CALL)["status"] == "open"
        assert [h["status"] for h in as_staff.json("health")] == ["ok"] * 4
    finally:
        broker.api("DELETE", f"users/{quote(user, safe='')}")


def test_demo_replays_the_call_and_refuses_to_run_twice(system, tmp_path):
    demo = Jmdi(system)  # neither JMDI_SECRET nor JMDI_TOKEN: local mode, as after `make run`
    result = demo("demo", "--proposals", "40", "--call", "JMDI-DEMO")
    assert "proposals submitted" in result.stderr and "second tranches" in result.stderr
    assert "Migration" in result.stdout  # the budget report closes the demo
    grants = Jmdi(system, "olga.audit", ["auditor"]).json("grants", "list", "--call", "JMDI-DEMO")
    assert grants and all(g["status"] == "contracted" for g in grants)
    again = demo("demo", "--proposals", "40", "--call", "JMDI-DEMO", expect=failures.CONFLICT)
    assert "demo.already_run" in again.stderr
    assert len(Jmdi(system, "olga.audit", ["auditor"]).json("grants", "list", "--call", "JMDI-DEMO")) == len(grants)


def test_ec_reports_from_the_cli(system, staff, tmp_path):
    """After the demo: the budget report in every format, the IATI and 360Giving files, reconciliation."""
    reporter, auditor = staff["reporter"], staff["auditor"]
    grants = auditor.json("grants", "list", "--call", "JMDI-DEMO")
    committed = sum(Decimal(g["amount_eur"]) for g in grants)
    budget = json.loads(reporter("report", "budget", "--programme", "JMDI", "--format", "json").stdout)
    assert budget["programme_id"] == "JMDI" and Decimal(budget["committed_eur"]) == committed
    assert "filename" not in budget  # the report itself, not the reply's envelope
    table = reporter("report", "budget", "--programme", "JMDI").stdout
    assert "Commitments and disbursements by window" in table
    csv_text = reporter("report", "budget", "--programme", "JMDI", "--format", "csv").stdout
    sections = [line for line in csv_text.splitlines() if line.startswith("# ")]
    assert "# summary" in sections and len(sections) > 3 and "," in csv_text.splitlines()[1]
    xlsx = tmp_path / "budget.xlsx"
    reporter("report", "budget", "--programme", "JMDI", "--format", "xlsx", "--out", xlsx)
    assert xlsx.read_bytes()[:2] == b"PK" and load_workbook(xlsx).sheetnames
    reporter("report", "budget", "--format", "xlsx", expect=failures.INVALID_INPUT)
    iati = tmp_path / "iati.xml"
    reporter("report", "iati", "--programme", "JMDI", "--out", iati)
    assert iati.read_text().count("<iati-activity") == len(grants)
    giving = tmp_path / "360.json"
    reporter("report", "360giving", "--programme", "JMDI", "--out", giving)
    assert len(json.loads(giving.read_text())["grants"]) == len(grants)
    assert auditor.json("report", "reconcile")["differences"] == []
    rebuilt = staff["pm"].json("report", "rebuild")
    assert rebuilt["events_replayed"] > 0
