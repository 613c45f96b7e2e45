"""The jmdi CLI without the system: identity, arguments, errors and exit codes, files, bulk import checks."""

import base64
import json
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jmdi import cli, failures, importer
from jmdi.session import Settings
from jmdi.transport import GatewayUnreachable
from services.common.security.auth import TokenVerifier
from services.common.security.keys import KeyDirectory
from services.common.security.roles import allowed_roles
from services.common.values.errors import Conflict, InvalidInput, NotAllowed, NotFound
from services.common.values.problems import NoAnswer, ServiceUnavailable, SystemFailure, TooManyRefusals
from tests.support import flows

# an issuer of this test module's own (JMDI_ISSUER_KEY), and what a service would verify its tokens with
KEYS = KeyDirectory(Path(tempfile.mkdtemp(prefix="jmdi-cli-keys-")))
KEYS.ensure([], issuer=True)
VERIFIER = TokenVerifier.from_config({"JMDI_JWKS": str(KEYS.issuer_jwks)})


class FakeConnection:
    """Stands in for the RPC connection: records calls, answers from a table (a value, an exception or a function)."""

    def __init__(self, replies=None):
        self.replies = replies or {}
        self.calls = []

    def call(self, service, operation, payload=None, token=None):
        self.calls.append((f"{service}.{operation}", payload or {}))
        reply = self.replies.get(f"{service}.{operation}", {})
        if isinstance(reply, Exception):
            raise reply
        return reply(payload or {}) if callable(reply) else reply

    def close(self):
        pass


@pytest.fixture
def fake(monkeypatch):
    connection = FakeConnection()
    monkeypatch.setattr(cli.STATE, "conn", lambda: connection)
    return connection


def jmdi(*args, env=None):
    base = {"JMDI_ISSUER_KEY": str(KEYS.issuer_key), "JMDI_TOKEN": "", "JMDI_URL": "http://127.0.0.1:1"}
    return CliRunner().invoke(cli.app, [str(a) for a in args], env={**base, **(env or {})})


# --- identity ---------------------------------------------------------------------------------------------------
def test_token_prints_a_token_the_services_accept():
    result = jmdi("token", "--user", "maria.pm", "--role", "programme_manager", "--role", "committee", "--ttl", "2h")
    assert result.exit_code == 0, result.output
    identity = VERIFIER.verify(result.stdout.strip())
    assert identity.user == "maria.pm"
    assert identity.roles == ("programme_manager", "committee")


def test_token_refuses_an_unknown_role_and_a_bad_ttl():
    result = jmdi("token", "--user", "x", "--role", "superuser")
    assert result.exit_code == failures.INVALID_INPUT
    assert "unknown role(s): superuser" in result.stderr
    assert jmdi("token", "--user", "x", "--role", "auditor", "--ttl", "soon").exit_code == failures.INVALID_INPUT


def test_ttl_units():
    assert cli.parse_ttl("30m") == timedelta(minutes=30)
    assert cli.parse_ttl("8h") == timedelta(hours=8)
    assert cli.parse_ttl("2d") == timedelta(days=2)
    assert cli.parse_ttl("45") == timedelta(minutes=45)


def test_local_mode_signs_a_token_for_exactly_the_roles_the_operation_needs(tmp_path, monkeypatch):
    local = KeyDirectory(tmp_path)
    monkeypatch.setattr("jmdi.session.LOCAL_KEYS_DIR", tmp_path)
    settings = Settings.from_env({"JMDI_URL": "http://gateway.example:8000"}, user="maria")
    assert settings.local_mode
    with pytest.raises(NotAllowed, match="`make run`"):  # the CLI never makes the issuer key itself
        settings.token_for("grants", "approve_payment")
    local.ensure([], issuer=True)
    token = settings.token_for("grants", "approve_payment")
    identity = TokenVerifier.from_config({"JMDI_JWKS": str(local.issuer_jwks)}).verify(token)
    assert identity.user == "maria"
    assert set(identity.roles) == allowed_roles("grants", "approve_payment")
    assert settings.token_for("grants", "approve_payment") == token  # one token per role set: one connection


def test_outside_local_mode_nothing_is_implicit():
    with_secret = Settings.from_env({"JMDI_ISSUER_KEY": str(KEYS.issuer_key)})
    assert not with_secret.local_mode
    with pytest.raises(NotAllowed, match="JMDI_TOKEN"):
        with_secret.token_for("calls", "list_calls")
    given = Settings.from_env({"JMDI_TOKEN": "abc"})
    assert not given.local_mode
    assert given.token_for("grants", "approve_payment") == "abc"


# --- errors and exit codes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error,code,line",
    [
        (
            InvalidInput(
                {"amount_eur": ["Not a valid number."], "applicants": {"0": {"email": ["Not a valid email."]}}}
            ),
            2,
            "invalid input: amount_eur: Not a valid number.; applicants.0.email: Not a valid email.",
        ),
        (NotFound("grant", "G-1"), 3, "not found: grant 'G-1' not found"),
        (
            Conflict("payment.exceeds_award", "payments would exceed the award", []),
            4,
            "refused by rule payment.exceeds_award: payments would exceed the award",
        ),
        (NotAllowed("token expired"), 5, "not allowed: token expired"),
        (
            TooManyRefusals("too many refused requests from 10.0.0.1; try again in 42 s", 42),
            5,
            "not allowed: too many refused requests from 10.0.0.1; try again in 42 s",
        ),
        (
            SystemFailure("internal error", "gateway.forward.c0ffee"),
            6,
            "internal error in the system (HTTP 500; correlation id gateway.forward.c0ffee",
        ),
        (
            ServiceUnavailable("the grants service is not running (nothing receives its requests)"),
            6,
            "the grants service is not running",
        ),
        (
            NoAnswer("the grants service did not answer within 60 s"),
            6,
            "the grants service did not answer within 60 s (JMDI_TIMEOUT sets how long jmdi waits)",
        ),
        (
            GatewayUnreachable("the gateway at http://x:8000 does not answer (refused)"),
            6,
            "the gateway at http://x:8000 does not answer",
        ),
    ],
)
def test_each_failure_has_its_exit_code_and_one_line(fake, error, code, line):
    fake.replies["grants.get_grant"] = error
    result = jmdi("grants", "show", "G-1")
    assert result.exit_code == code
    assert line in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_conflict_names_every_failed_rule(fake):
    fake.replies["calls.open_call"] = Conflict(
        "eligibility",
        "2 eligibility rule(s) failed",
        [
            {"rule": "country.not_eligible", "field": "target_country", "message": "FR"},
            {"rule": "amount.outside_limits", "field": "ec_amount_requested_eur", "message": "too much"},
        ],
    )
    result = jmdi("calls", "open", "C")
    assert result.exit_code == failures.CONFLICT
    assert "country.not_eligible" in result.stderr and "amount.outside_limits" in result.stderr


def test_json_mode_prints_the_error_for_scripts(fake):
    fake.replies["grants.get_grant"] = NotFound("grant", "G-9")
    result = jmdi("grants", "show", "G-9", "--json")
    assert result.exit_code == failures.NOT_FOUND
    assert json.loads(result.stdout) == {
        "error": {"code": "not_found", "message": "grant 'G-9' not found"},
        "exit_code": 3,
    }


def test_no_gateway_is_one_clear_line_and_exit_6():
    result = jmdi("calls", "list", env={"JMDI_TOKEN": "t"})
    assert result.exit_code == failures.SYSTEM_FAILURE
    assert "the gateway at http://127.0.0.1:1 does not answer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2():
    assert jmdi("calls", "create").exit_code == failures.INVALID_INPUT


# --- arguments --------------------------------------------------------------------------------------------------
def test_options_become_rpc_arguments(fake):
    fake.replies["calls.create_call"] = {"call_id": "JMDI-2008", "status": "draft"}
    result = jmdi(
        "calls",
        "create",
        "JMDI-2008",
        "--programme",
        "JMDI",
        "--title",
        "Call 2008",
        "--deadline",
        "2009-03-01T12:00:00+00:00",
        "--window",
        "remittances=3750000.00",
        "--window",
        "migrants_rights=1000000.00",
        "--data",
        '{"max_ec_share": "0.8", "title": "old"}',
    )
    assert result.exit_code == 0, result.output
    assert fake.calls == [
        (
            "calls.create_call",
            {
                "call_id": "JMDI-2008",
                "programme_id": "JMDI",
                "title": "Call 2008",
                "deadline": "2009-03-01T12:00:00+00:00",
                "windows": [
                    {"window": "remittances", "allocation_eur": "3750000.00"},
                    {"window": "migrants_rights", "allocation_eur": "1000000.00"},
                ],
                "max_ec_share": "0.8",
            },
        )
    ]
    assert "draft" in result.stdout


def test_scores_are_whole_numbers_and_bad_pairs_are_usage_errors(fake):
    assert jmdi("assessments", "record", "P-1", "--score", "relevance=4", "--score", "design=5").exit_code == 0
    assert fake.calls[-1] == (
        "calls.record_assessment",
        {"proposal_id": "P-1", "scores": {"relevance": 4, "design": 5}},
    )
    result = jmdi("assessments", "record", "P-1", "--score", "relevance=high")
    assert result.exit_code == failures.INVALID_INPUT and "not a whole number" in result.stderr


def test_a_programme_file_is_sent_as_its_definition_and_a_bare_name_as_a_shipped_id(fake):
    import yaml

    path = "services/calls/data/programmes/jmdi.yaml"
    assert jmdi("programmes", "load", path).exit_code == 0
    assert jmdi("programmes", "load", "jmdi").exit_code == 0
    (_, from_file), (_, by_id) = fake.calls
    with open(path, encoding="utf-8") as fh:
        document = yaml.safe_load(fh)
    # as the YAML says (its period starts on the day the service loads it), dates as ISO strings
    assert from_file == {"programme": document} and document["period"] == {"start": "on_load", "months": 36}
    assert by_id == {"programme": "jmdi"}
    from services.calls.schemas import LoadProgramme

    assert LoadProgramme().load(from_file)["programme"]["id"] == "JMDI"


def test_list_results_are_tables_and_json_on_request(fake):
    fake.replies["notifications.list_deliveries"] = [
        {"notification_id": "n1", "template": "award", "recipient": "lead@example.org", "status": "sent"}
    ]
    table = jmdi("notifications", "deliveries")
    assert table.exit_code == 0 and "lead@example.org" in table.stdout and "┃" in table.stdout
    as_json = jmdi("notifications", "deliveries", "--json", "--status", "sent")
    assert json.loads(as_json.stdout)[0]["template"] == "award"
    assert fake.calls[-1] == ("notifications.list_deliveries", {"status": "sent"})


def test_audit_merges_every_service_in_time_order(fake):
    fake.replies["calls.query_audit"] = [
        {
            "id": 1,
            "at": "2009-01-02T00:00:00+00:00",
            "user": "maria",
            "roles": ["programme_manager"],
            "operation": "calls.open_call",
            "outcome": "done",
            "entity": "call:C",
            "detail": {"event_type": "x"},
        }
    ]
    fake.replies["grants.query_audit"] = [
        {
            "id": 1,
            "at": "2009-01-01T00:00:00+00:00",
            "user": "eve",
            "roles": [],
            "operation": "grants.approve_payment",
            "outcome": "refused",
            "entity": None,
            "detail": {"reason": "no"},
        }
    ]
    # refused at the door: only the gateway's trail has it
    fake.replies["gateway.query_audit"] = [
        {
            "id": 7,
            "at": "2008-12-31T00:00:00+00:00",
            "user": "mallory",
            "roles": [],
            "operation": "grants.approve_payment",
            "outcome": "refused",
            "entity": None,
            "detail": {"reason": "invalid token"},
        }
    ]
    result = jmdi("audit", "--outcome", "refused", "--json")
    rows = json.loads(result.stdout)
    assert [r["service"] for r in rows] == ["gateway", "grants", "calls"]
    assert all(call[1] == {"outcome": "refused", "limit": 500} for call in fake.calls)
    assert {c[0] for c in fake.calls} == {f"{s}.query_audit" for s in (*cli.SERVICES, "gateway")}


def test_health_names_the_service_that_does_not_answer_and_exits_6(fake):
    fake.replies["gateway.health"] = [
        {"service": "gateway", "status": "ok"},
        {"service": "calls", "status": "ok", "outbox_pending": 0},
        {"service": "grants", "status": "timeout", "detail": "the grants service did not answer within 4 s"},
    ]
    result = jmdi("health")
    assert result.exit_code == failures.SYSTEM_FAILURE
    assert "not answering: grants" in result.stderr and "did not answer within 4 s" in result.stdout
    fake.replies["gateway.health"] = [{"service": "gateway", "status": "ok"}, {"service": "calls", "status": "ok"}]
    assert jmdi("health", "--service", "calls").exit_code == 0
    assert fake.calls[-1] == ("gateway.health", {"service": "calls"})


# --- reports ----------------------------------------------------------------------------------------------------
def test_budget_xlsx_needs_out_and_is_written_as_bytes(fake, tmp_path):
    assert jmdi("report", "budget", "--format", "xlsx").exit_code == failures.INVALID_INPUT
    assert fake.calls == []
    fake.replies["reporting.budget_report"] = {
        "format": "xlsx",
        "content_base64": base64.b64encode(b"PK\x03\x04xlsx").decode(),
    }
    out = tmp_path / "budget.xlsx"
    result = jmdi("report", "budget", "--format", "xlsx", "--out", out, "--as-of", "2010-12-31")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"PK\x03\x04xlsx"
    assert fake.calls[-1] == ("reporting.budget_report", {"as_of": "2010-12-31", "format": "xlsx"})


def test_budget_table_goes_to_stdout(fake):
    fake.replies["reporting.budget_report"] = {"format": "table", "content": "Window  Committed\n"}
    result = jmdi("report", "budget", "--programme", "JMDI")
    assert result.exit_code == 0 and result.stdout == "Window  Committed\n"
    assert jmdi("report", "budget", "--format", "pdf").exit_code == failures.INVALID_INPUT


def test_reconcile_exits_1_on_differences(fake):
    fake.replies["reporting.reconcile"] = {"differences": [], "checked": 3}
    assert jmdi("report", "reconcile").exit_code == 0
    fake.replies["reporting.reconcile"] = {"differences": [{"grant_id": "G1", "reporting": "1.00", "grants": "2.00"}]}
    result = jmdi("report", "reconcile")
    assert result.exit_code == failures.DIFFERENCES
    assert "G1" in result.stdout and "1 difference" in result.stderr


# --- bulk import ------------------------------------------------------------------------------------------------
def _rows(n, changes=None):
    rows = []
    for i in range(n):
        payload = {k: v for k, v in flows.proposal(i).items() if k != "idempotency_key"}
        rows.append({**importer.flatten(payload), **(changes or {}).get(i, {})})
    return rows


CALL = {
    "call_id": "JMDI-2008",
    "programme_id": "JMDI",
    "min_grant_eur": "50000.00",
    "max_grant_eur": "200000.00",
    "windows": [{"window": w, "allocation_eur": "3750000.00"} for w in flows.WINDOWS],
}


def _import_fake():
    submitted = {}

    def submit(payload):
        return submitted.setdefault(
            payload["idempotency_key"],
            {"proposal_id": f"P{len(submitted) + 1}", "reference": f"JMDI-2008-{len(submitted) + 1:04d}"},
        )

    fake = FakeConnection(
        {"calls.get_call": CALL, "calls.get_programme": flows.programme(), "calls.submit_proposal": submit}
    )
    return fake, submitted


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_import_submits_every_row_once_even_when_rerun(tmp_path, suffix):
    path = tmp_path / f"proposals{suffix}"
    importer.write_rows(_rows(5), path)
    fake, submitted = _import_fake()
    first = importer.import_proposals(fake, path, "JMDI-2008", quiet=True)
    assert first.errors == [] and len(first.submitted) == 5
    payload = [p for op, p in fake.calls if op == "calls.submit_proposal"][0]
    assert payload["duration_months"] == 24 and payload["applicants"][0]["role"] == "lead"
    again = importer.import_proposals(fake, path, "JMDI-2008", quiet=True)
    assert [r["proposal_id"] for r in again.submitted] == [r["proposal_id"] for r in first.submitted]
    assert len(submitted) == 5


def test_import_submits_nothing_when_any_row_is_invalid(tmp_path):
    rows = _rows(
        4, {1: {"target_country": "Morocco"}, 2: {"window": "tourism"}, 3: {"ec_amount_requested_eur": "150000.5x"}}
    )
    path = tmp_path / "bad.csv"
    importer.write_rows(rows, path)
    fake, submitted = _import_fake()
    result = importer.import_proposals(fake, path, "JMDI-2008", quiet=True)
    assert submitted == {}
    assert [(e["row"], e["field"]) for e in result.errors] == [
        (3, "target_country"),
        (4, "window"),
        (5, "ec_amount_requested_eur"),
    ]
    assert result.exit_code == failures.INVALID_INPUT


def test_import_flags_duplicate_rows(tmp_path):
    rows = _rows(2)
    path = tmp_path / "dupes.csv"
    importer.write_rows([rows[0], rows[1], rows[0]], path)
    fake, submitted = _import_fake()
    result = importer.import_proposals(fake, path, "JMDI-2008", quiet=True)
    assert result.errors == [{"row": 4, "field": "(row)", "message": "duplicates row 2"}] and submitted == {}


def test_import_command_reports_rows_with_errors(tmp_path, fake):
    fake.replies.update({"calls.get_call": CALL, "calls.get_programme": flows.programme()})
    path = tmp_path / "bad.csv"
    importer.write_rows(_rows(2, {0: {"lead_email": "not-an-email"}}), path)
    result = jmdi("proposals", "import", path, "--call", "JMDI-2008")
    assert result.exit_code == failures.INVALID_INPUT
    assert "applicants.0.email" in result.stdout and "nothing submitted" in result.stdout
    assert not [c for c in fake.calls if c[0] == "calls.submit_proposal"]


def test_whoami_reads_the_user_and_roles_where_the_sso_puts_them():
    from tests.support.tokens import KeycloakRealm

    token = KeycloakRealm().token("claire.dubois", ["finance_approver"])
    shown = json.loads(jmdi("whoami", "--json", env={"JMDI_TOKEN": token}).stdout)
    assert shown["mode"] == "token" and shown["user"] == "claire.dubois"
    assert shown["roles"][0] == "finance_approver"  # as claimed: whoami does not verify
    client_roles = KeycloakRealm(client="jmdi-gateway").token("ana.b", ["auditor"], roles_in="client")
    shown = json.loads(
        jmdi(
            "whoami",
            "--json",
            env={"JMDI_TOKEN": client_roles, "JMDI_ROLES_CLAIM": "resource_access.jmdi-gateway.roles"},
        ).stdout
    )
    assert shown["roles"] == ["auditor"]


def test_reallocation_moves_amounts_between_the_grants_headings(fake):
    fake.replies["grants.get_grant"] = {
        "budget": {"human_resources": "50000.00", "travel": "6000.00", "other": "1000.00"}
    }
    result = jmdi(
        "amendments",
        "reallocate",
        "G-1",
        "--move",
        "human_resources:travel=1000.00",
        "--move",
        "other:local_office=250.50",
        "--reason",
        "more field visits",
    )
    assert result.exit_code == 0, result.output
    assert fake.calls[-1] == (
        "grants.reallocate_budget",
        {
            "grant_id": "G-1",
            "reason": "more field visits",
            "new_budget": {
                "human_resources": "49000.00",
                "travel": "7000.00",
                "other": "749.50",
                "local_office": "250.50",
            },
        },
    )
    for bad, message in (
        (["--move", "travel=5"], "FROM:TO=AMOUNT"),
        (["--move", "catering:travel=5"], "no heading"),
        (["--move", "travel:other=1.234"], "two decimals"),
        ([], "give --move"),
    ):
        refused = jmdi("amendments", "reallocate", "G-1", *bad)
        assert refused.exit_code == failures.INVALID_INPUT and message in refused.stderr, (bad, refused.stderr)


def test_a_deadline_may_be_given_from_now(fake):
    from datetime import datetime, timezone

    before = datetime.now(timezone.utc)
    assert jmdi("calls", "amend", "C-1", "--deadline", "+10m").exit_code == 0
    deadline = datetime.fromisoformat(fake.calls[-1][1]["deadline"])
    assert timedelta(minutes=9) < deadline - before < timedelta(minutes=11)
    assert jmdi("calls", "amend", "C-1", "--deadline", "2027-03-31T12:00:00+00:00").exit_code == 0
    assert fake.calls[-1][1]["deadline"] == "2027-03-31T12:00:00+00:00"
    refused = jmdi("calls", "amend", "C-1", "--deadline", "+ten minutes")
    assert refused.exit_code == failures.INVALID_INPUT and "time from now like +10m" in refused.stderr


def test_a_refusal_lists_each_rule_with_its_reason(fake, tmp_path):
    fake.replies["calls.submit_proposal"] = Conflict(
        "proposal.not_eligible",
        "2 eligibility rule(s) failed",
        [
            {
                "rule": "proposal.amount_above_maximum",
                "field": "ec_amount_requested_eur",
                "message": "250000.00 is above the maximum grant 200000.00",
            },
            {
                "rule": "proposal.country_not_eligible",
                "field": "target_country",
                "message": "FR is not an eligible country of JMDI",
            },
        ],
    )
    path = tmp_path / "proposal.json"
    path.write_text(json.dumps(flows.proposal(1)))
    result = jmdi("proposals", "submit", path)
    assert result.exit_code == failures.CONFLICT
    assert result.stderr.strip() == (
        "error: refused by rule proposal.not_eligible: 2 eligibility rule(s) failed (proposal.amount_above_maximum: "
        "250000.00 is above the maximum grant 200000.00; proposal.country_not_eligible: FR is not an eligible "
        "country of JMDI)"
    )


def test_the_old_reports_group_points_to_its_new_name():
    result = jmdi("reports", "submit", "G-1", "--kind", "interim")
    assert result.exit_code == failures.INVALID_INPUT and "jmdi grantee-reports" in result.stderr


def test_text_from_the_system_reaches_the_terminal_without_control_characters(capsys):
    from jmdi import output

    row = {"user": "\x1b[2J\x1b]0;owned\x07claire", "what": "refused"}
    output.show([row])
    output.show(row)
    output.error_line("no such user \x1b[31mred")
    captured = capsys.readouterr()
    assert "claire" in captured.out and "red" in captured.err
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.out
