"""The jmdi CLI against the running System, through the gateway only: staff commands, exit codes, bulk import, EC
reports, the demo — with the broker unreachable from the CLI's environment (AMQP_URI points at a closed port).

The services run as `make run` runs them — with the checkout's local issuer and keys (var/keys) — which lets the
demo run in the CLI's local mode, the way a developer runs it."""

import json
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from jmdi import failures, importer
from jmdi.cli import app
from jmdi.table import commands
from jmdi.transport import Gateway
from services.common.security.auth import StaffIssuer
from services.common.security.keys import LOCAL_KEYS_DIR, KeyDirectory
from services.common.security.roles import MATRIX, SERVICE_CALLS, STAFF_ROLES
from tests.support import flows
from tests.support.answers import checking
from tests.support.infra import free_port
from tests.support.system import System

LOCAL_KEYS = KeyDirectory(LOCAL_KEYS_DIR)  # var/keys, as `make run` creates them

pytestmark = pytest.mark.integration

CALL = "CLI-2008"


NO_BROKER = f"amqp://guest:guest@127.0.0.1:{free_port()}/"  # nothing listens there


class Jmdi:
    """`jmdi ...` as a staff member: JMDI_TOKEN for that user and roles, JMDI_URL the test System's gateway, and a
    broker address where no broker is: the CLI must not need one."""

    def __init__(self, system, user=None, roles=(), token=None, issuer_key=""):
        self.env = {
            "JMDI_URL": system.gateway_url,
            "AMQP_URI": NO_BROKER,
            "JMDI_ISSUER_KEY": issuer_key,
            "JMDI_TOKEN": token if token is not None else (system.token(user, roles) if user else ""),
        }

    def __call__(self, *args, expect=0):
        result = CliRunner().invoke(app, [str(a) for a in args], env=self.env)
        assert expect is None or result.exit_code == expect, (
            f"jmdi {' '.join(map(str, args))} -> {result.exit_code}\n{result.output}"
        )
        return result

    def json(self, *args, expect=0):
        return json.loads(self(*args, "--json", expect=expect).stdout)


class LocalSystem(System):
    """The services with the checkout's local keys: the CLI's local mode signs tokens they accept."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys = LOCAL_KEYS
        self.keys.ensure(SERVICE_CALLS, issuer=True)
        self.issuer = StaffIssuer.from_key_file(self.keys.issuer_key)


@pytest.fixture(scope="module")
def system():
    with LocalSystem() as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def answers_checked():
    """Every result the CLI receives is what the OpenAPI document declares for its operation."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Gateway, "call", checking(Gateway.call))
        yield


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
    pm(
        "calls",
        "create",
        CALL,
        "--programme",
        "CLI",
        "--title",
        "CLI call 2008",
        "--deadline",
        flows.call()["deadline"],
        *windows,
    )
    opened = pm.json("calls", "open", CALL)
    assert opened["status"] == "open"
    return opened


def test_errors_have_their_exit_codes_and_one_line(system, staff, opened_call):
    pm = staff["pm"]
    missing = pm("calls", "show", "NO-SUCH-CALL", expect=failures.NOT_FOUND)
    assert "not found: call 'NO-SUCH-CALL' not found" in missing.stderr
    again = pm("calls", "open", CALL, expect=failures.CONFLICT)
    assert again.stderr.startswith("error: refused by rule call.")
    bad = pm(
        "calls",
        "create",
        "CLI-BAD",
        "--programme",
        "CLI",
        "--title",
        "x",
        "--deadline",
        "tomorrow",
        "--window",
        "remittances=lots",
        expect=failures.INVALID_INPUT,
    )
    assert "invalid input:" in bad.stderr and "deadline" in bad.stderr and "windows.0.allocation_eur" in bad.stderr
    refused = staff["reporter"]("calls", "open", CALL, expect=failures.NOT_ALLOWED)
    assert "not allowed: ec.reporter (ec_reporter) may not calls.open_call" in refused.stderr
    forged = Jmdi(system, token="x.y.z")("calls", "list", expect=failures.NOT_ALLOWED)
    assert "malformed token" in forged.stderr
    # an issuer key configured and no token: no local mode, nothing implicit
    Jmdi(system, issuer_key=str(LOCAL_KEYS.issuer_key))("calls", "list", expect=failures.NOT_ALLOWED)
    for result in (missing, again, bad, refused, forged):
        assert len(result.stderr.strip().splitlines()) == 1


def test_proposals_import_is_all_or_nothing_and_idempotent(system, staff, opened_call, tmp_path):
    pm = staff["pm"]
    rows = [
        importer.flatten({k: v for k, v in flows.proposal(300 + n, call_id=CALL).items() if k != "idempotency_key"})
        for n in range(12)
    ]
    before = system.count_rows("calls", "proposals")

    broken = [dict(row) for row in rows]
    broken[3]["lead_email"] = "nobody-at-example.org"
    broken[5]["target_country"] = "XX"  # no such country: one row's problem, not the end of the check
    broken[7]["target_country"] = "FR"
    broken[9]["partner1_country"] = "SN"  # no consortium member in an EU member state
    broken[10]["ec_amount_requested_eur"] = "250000.00"
    bad_file = tmp_path / "broken.xlsx"
    importer.write_rows(broken, bad_file)
    result = pm.json("proposals", "import", bad_file, "--call", CALL, expect=failures.INVALID_INPUT)
    assert result["submitted"] == 0 and result["outcome"] == "nothing submitted: fix the rows listed"
    table = pm("proposals", "import", bad_file, "--call", CALL, expect=failures.INVALID_INPUT).stdout
    # every bad row, with its row number (the header is row 1) and field, whatever the kind of problem
    listed = {(e["row"], e["field"]) for e in result["rows_with_errors"]}
    assert {
        (5, "applicants.0.email"),
        (7, "target_country"),
        (9, "target_country"),
        (11, "applicants"),
        (12, "ec_amount_requested_eur"),
    } <= listed, listed
    assert "unknown ISO 3166-1 alpha-2 country code 'XX'" in table
    # the service's own eligibility rules were run on each row before anything was sent, with their reasons
    assert "proposal.country_not_eligible" in table and "consortium.no_eu_partner" in table
    assert "250000.00 is above the maximum grant 200000.00" in table.replace(",", "")
    assert system.count_rows("calls", "proposals") == before  # nothing half-imported

    good_file = tmp_path / "proposals.csv"
    importer.write_rows(rows, good_file)
    first = pm.json("proposals", "import", good_file, "--call", CALL)
    assert first["submitted"] == 12 and first["errors"] == 0
    assert system.count_rows("calls", "proposals") == before + 12
    rerun = pm.json("proposals", "import", good_file, "--call", CALL)
    assert (rerun["submitted"], rerun["already_submitted"]) == (0, 12)
    assert rerun["outcome"] == "already submitted, nothing new"
    assert "already submitted, nothing new" in pm("proposals", "import", good_file, "--call", CALL).stdout
    assert system.count_rows("calls", "proposals") == before + 12  # the rerun found the same proposals

    listed = pm.json("proposals", "list", "--call", CALL)
    assert len(listed) >= 12
    table = pm("proposals", "list", "--call", CALL)
    assert listed[0]["reference"] in table.stdout


def test_audit_shows_who_did_what_and_refusals(staff, opened_call):
    rows = staff["auditor"].json("audit", "--entity", f"call:{CALL}")
    assert [(r["service"], r["operation"], r["user"]) for r in rows][:2] == [
        ("calls", "calls.create_call", "maria.lopez"),
        ("calls", "calls.open_call", "maria.lopez"),
    ]
    staff["reporter"]("calls", "close", CALL, expect=failures.NOT_ALLOWED)
    refused = staff["auditor"].json("audit", "--outcome", "refused", "--who", "ec.reporter")
    assert any(r["operation"] == "calls.close_call" and r["roles"] == ["ec_reporter"] for r in refused)
    table = staff["auditor"]("audit", "--entity", f"call:{CALL}")
    assert "call_opened" in table.stdout
    staff["reporter"]("audit", expect=failures.NOT_ALLOWED)


def test_health_and_dead_letters_on_every_service(staff):
    health = staff["pm"].json("health")
    assert [h["service"] for h in health] == ["gateway", "calls", "grants", "notifications", "reporting"]
    assert all(h["status"] == "ok" for h in health)
    held = staff["pm"].json("dead-letters", "list")
    assert isinstance(held, list)
    staff["pm"]("dead-letters", "replay", "999999", "--service", "grants", expect=failures.NOT_FOUND)


def test_demo_replays_the_call_and_refuses_to_run_twice(system, tmp_path):
    demo = Jmdi(system)  # neither JMDI_ISSUER_KEY nor JMDI_TOKEN: local mode, as after `make run`
    result = demo("demo", "--proposals", "40", "--call", "JMDI-DEMO")
    assert "proposals submitted" in result.stderr and "first tranches requested and paid" in result.stderr
    assert "grants terminated early, final reports accepted, closed" in result.stderr
    # while it waits for the call's deadline it says so, instead of going silent
    assert "waiting for the call's deadline at" in result.stderr and "s left)" in result.stderr
    assert "Migration" in result.stdout  # the budget report closes the demo
    assert "demo exchange rates loaded" in result.stderr  # a year of generated MAD, XOF, EGP, PHP rates
    rates = Jmdi(system, "olga.audit", ["auditor"]).json("rates", "list", "--currency", "MAD")
    assert len(rates) == 12 and all(r["source"].startswith("DEMO RATES") for r in rates)
    grants = Jmdi(system, "olga.audit", ["auditor"]).json("grants", "list", "--call", "JMDI-DEMO")
    # played today, in order: every grant is contracted and has its pre-financing; none has run long enough to
    # report on its planned periods, but a few were terminated early, reported up to today and closed below their
    # award: the unspent part is decommitted
    assert grants and {g["status"] for g in grants} == {"contracted", "closed"}
    assert all(Decimal(g["paid_eur"]) > 0 for g in grants)
    closed = [
        Jmdi(system, "olga.audit", ["auditor"]).json("grants", "show", g["grant_id"])
        for g in grants
        if g["status"] == "closed"
    ]
    assert 1 <= len(closed) <= 3
    for grant in closed:
        assert grant["termination"]["effective_date"] == grant["start_date"]  # contracted and terminated today
        assert grant["termination"]["terminated_by"] != "maria.lopez"  # not the contract's signer
        assert grant["closure"]["decommitted_eur"] == grant["decommitted_eur"]
        final = Decimal(grant["closure"]["ec_eligible_eur"])
        assert Decimal(grant["decommitted_eur"]) == Decimal(grant["amount_eur"]) - final > 0
        assert Decimal(grant["committed_eur"]) == final
        assert Decimal(grant["paid_eur"]) - Decimal(grant["closure"]["recovery_eur"]) == final
    again = demo("demo", "--proposals", "40", "--call", "JMDI-DEMO", expect=failures.CONFLICT)
    assert "demo.already_run" in again.stderr
    assert len(Jmdi(system, "olga.audit", ["auditor"]).json("grants", "list", "--call", "JMDI-DEMO")) == len(grants)


def test_the_demo_never_disburses_before_it_commits(system, staff):
    """The demo's chronology: the call closes, then awards are decided, then contracts start and tranches are
    paid — no payment dated before its grant's award, and month by month the cumulative disbursements never exceed
    the cumulative commitments."""
    auditor = staff["auditor"]
    grants = [
        auditor.json("grants", "show", g["grant_id"]) for g in auditor.json("grants", "list", "--call", "JMDI-DEMO")
    ]
    call = auditor.json("calls", "show", "JMDI-DEMO")
    assert grants and call["status"] in ("closed", "evaluated")
    for grant in grants:
        assert call["deadline"][:10] <= grant["decision_date"] <= grant["start_date"], grant["reference"]
        assert grant["payments"], grant["reference"]
        for payment in grant["payments"]:
            assert payment["requested_at"][:10] <= payment["value_date"], grant["reference"]
            assert grant["decision_date"] <= payment["value_date"], grant["reference"]
    report = json.loads(staff["reporter"]("report", "budget", "--programme", "JMDI", "--format", "json").stdout)
    committed = disbursed = Decimal("0.00")
    for month in report["months"]:
        committed += Decimal(month["committed_eur"])
        disbursed += Decimal(month["disbursed_eur"])
        assert disbursed <= committed, month["month"]
    assert Decimal(report["disbursed_eur"]) > 0
    # the early terminations: each decommitment after its grant's award, and the report shows them
    assert Decimal(report["decommitted_eur"]) > 0
    assert report["terminated_grants"] == sum(1 for g in grants if g["termination"])
    for grant in grants:
        if grant["closure"]:
            assert (
                grant["decision_date"] <= grant["termination"]["effective_date"] <= grant["closure"]["closed_at"][:10]
            ), grant["reference"]
    # their final reports: staff costs in the consortium's own currency where the demo has its rates, converted
    # to EUR at the month's rate, travel in EUR; and how far each indicator got before the action stopped
    currencies = {line["currency"] for line in report["expenditure_lines"]}
    assert currencies & {"MAD", "XOF", "EGP", "PHP"} and "EUR" in currencies, currencies
    reported = {row["reference"] for row in report["results"] if row["actual"]}
    assert reported == {g["reference"] for g in grants if g["closure"]}


def test_ec_reports_from_the_cli(system, staff, tmp_path):
    """After the demo: the budget report in every format, the IATI and 360Giving files, reconciliation."""
    reporter, auditor = staff["reporter"], staff["auditor"]
    grants = auditor.json("grants", "list", "--call", "JMDI-DEMO")
    committed = sum(Decimal(g["committed_eur"]) for g in grants)
    budget = json.loads(reporter("report", "budget", "--programme", "JMDI", "--format", "json").stdout)
    assert budget["programme_id"] == "JMDI" and Decimal(budget["committed_eur"]) == committed
    assert Decimal(budget["decommitted_eur"]) == sum(Decimal(g["decommitted_eur"]) for g in grants) > 0
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


def dummy_arguments(cmd, tmp_path) -> list[str]:
    """The required arguments of a declared command, filled with values that name nothing that exists."""
    files = {
        "file": ("args.json", "{}"),
        "text": ("list.csv", "name,registration_number\n"),
        "json": None,
        "programme": None,
    }
    values = {
        "int": "1",
        "pairs": "x=1",
        "pairs_int": "x=1",
        "list": "x",
        "list_int": "1",
        "json": "{}",
        "programme": "NO-SUCH",
    }
    argv = cmd.path.split(" ")
    for p in cmd.params:
        if not p.required or p.kind == "bool":
            continue
        if files.get(p.kind):
            name, content = files[p.kind]
            value = tmp_path / name
            value.write_text(content)
        else:
            value = values.get(p.kind, "NO-SUCH-1")
        argv += [value] if p.positional else [f"--{p.name}", value]
    return argv


def test_every_declared_command_reaches_its_service_through_the_gateway(system, tmp_path):
    """With every staff role and arguments naming nothing, each command gets the service's own answer: done,
    invalid input, not found or a rule's refusal — never "not allowed" or a system failure."""
    everyone = sorted({r for roles in MATRIX.values() for r in roles} & set(STAFF_ROLES))
    as_everyone = Jmdi(system, "all.roles", everyone)
    for cmd in commands():
        result = as_everyone(*dummy_arguments(cmd, tmp_path), expect=None)
        assert result.exit_code in (
            failures.OK,
            failures.DIFFERENCES,
            failures.INVALID_INPUT,
            failures.NOT_FOUND,
            failures.CONFLICT,
        ), f"jmdi {cmd.path}: {result.exit_code} {result.output}"
