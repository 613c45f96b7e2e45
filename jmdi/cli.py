"""The `jmdi` staff command line: every staff operation of the four services, through the gateway's HTTP API
(JMDI_URL), with the caller's token.

Most commands are generated from the operations' own input schemas (jmdi/operations.py reads them from the
gateway's OpenAPI document), shaped for people by jmdi/table.py; the ones here need files, several services, or
exit codes of their own. Exit codes: jmdi/failures.py (0 ok, 1 differences, 2 invalid input, 3 not found,
4 conflict, 5 not allowed, 6 system failure, 7 set-up problem).
"""

import base64
import inspect
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from . import failures, output
from .failures import UsageProblem
from .payload import adapt, convert, json_value
from .session import Connection, Settings
from .table import Cmd, commands
from .views import VIEWS

SERVICES = ("calls", "grants", "notifications", "reporting")

app = typer.Typer(
    name="jmdi",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="JMDI programme administration for staff. Identity: JMDI_TOKEN (see `jmdi token`), or "
    "local mode in a checkout. Gateway: JMDI_URL (default http://127.0.0.1:8000). "
    "Exit codes: 0 ok, 1 differences, "
    "2 invalid input, 3 not found, 4 refused by a rule, 5 not allowed, 6 system failure, "
    "7 set-up problem (a file or setting of the installation is missing).",
)


class State:
    settings: Settings | None = None
    connection: Connection | None = None

    def reset(self, settings: Settings):
        self.close()
        self.settings = settings

    def conn(self) -> Connection:
        if self.connection is None:
            self.connection = Connection(self.settings or Settings.from_env())
        return self.connection

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


STATE = State()


@app.callback()
def _global(
    user: Annotated[
        Optional[str],
        typer.Option("--user", help="local mode only: the user name the CLI signs its token as (default $USER@local)"),
    ] = None,
):
    STATE.reset(Settings.from_env(user=user))


def run(action, as_json: bool = False):
    """Run one command's action; any failure becomes one line on stderr and its exit code."""
    try:
        return action()
    except typer.Exit:
        raise
    except Exception as exc:  # every failure is reported, none shown as a traceback
        code, line, detail = failures.describe(exc)
        if as_json:
            output.print_json({"error": detail, "exit_code": code})
        output.error_line(line)
        raise typer.Exit(code) from None
    finally:
        STATE.close()


def rpc(service: str, operation: str, payload: dict | None = None):
    return STATE.conn().call(service, operation, payload or {})


# --- the declared commands ------------------------------------------------------------------------------------
GROUP_HELP = {
    "programmes": "Programmes: their envelope, windows and eligible countries",
    "calls": "Calls for proposals",
    "proposals": "Proposals: submit, bulk import, withdraw, list",
    "screening": "Administrative check and exclusion screening",
    "assessments": "Declarations of impartiality, assignment and scoring",
    "ranking": "Ranking per window and its publication",
    "awards": "Award decisions of the steering committee",
    "grants": "Grants and the programme ledger",
    "organisations": "Grantee organisations and bank accounts",
    "contracts": "Grant contracts",
    "payments": "Payments: request (finance officer), approve (finance approver)",
    "grantee-reports": "Grantees' interim and final financial reports: submit, accept, return",
    "amendments": "Budget reallocations and grant amendments",
    "closure": "Closing grants",
    "rates": "Exchange rates: import the EC's monthly InforEuro file (or UN operational rates), list them",
    "notifications": "Messages to applicants and staff",
    "report": "EC reports: budget, IATI, 360Giving, archived periodic reports, reconciliation",
    "dead-letters": "Events a service could not apply: list, replay, discard",
}
GROUPS: dict[str, typer.Typer] = {}


def group(name: str) -> typer.Typer:
    if name not in GROUPS:
        GROUPS[name] = typer.Typer(no_args_is_help=True, help=GROUP_HELP.get(name, name), rich_markup_mode=None)
        app.add_typer(GROUPS[name], name=name)
    return GROUPS[name]


DATA_HELP = "more arguments as a JSON object, or @FILE (.json/.yaml); options win over it"
JSON_HELP = "print the result as JSON"
EMPTY = inspect.Parameter.empty


def _parameter(p) -> inspect.Parameter:
    pyname = p.name.replace("-", "_")
    kind = inspect.Parameter.KEYWORD_ONLY
    hint: Any
    if p.kind == "int":
        hint = Optional[int]
    elif p.kind == "bool":
        hint = Optional[bool]
    elif p.kind in ("list", "list_int", "pairs", "pairs_int"):
        hint = Optional[list[str]]
    else:
        hint = Optional[str]
    if p.positional:
        info = typer.Argument(help=p.help, show_default=False, metavar=p.name.upper())
        return inspect.Parameter(pyname, kind, default=EMPTY if p.required else None, annotation=Annotated[hint, info])
    names = (f"--{p.name}/--no-{p.name}",) if p.kind == "bool" else (f"--{p.name}",)
    required = p.required and p.kind != "bool"
    metavar = {
        "pairs": "KEY=VALUE",
        "pairs_int": "KEY=N",
        "int": "N",
        "bool": None,
        "list": "TEXT",
        "list_int": "N",
        "file": "FILE",
        "text": "FILE",
        "when": "WHEN",
        "json": "JSON|@FILE",
        "any": "VALUE",
    }.get(p.kind, "TEXT")
    info = typer.Option(*names, help=p.help, show_default=False, metavar=metavar)
    return inspect.Parameter(pyname, kind, default=EMPTY if required else None, annotation=Annotated[hint, info])


def build_payload(cmd: Cmd, values: dict, data: str | None) -> dict:
    payload = json_value(data) if data else {}
    if not isinstance(payload, dict):
        raise UsageProblem("--data must be a JSON object")
    for p in cmd.params:
        value = convert(p.kind or "str", values.get(p.name.replace("-", "_")), p.name)
        if value is None:
            if p.required:
                raise UsageProblem(f"missing option --{p.name}")
            continue
        if p.kind == "file" and p.field is None:
            if not isinstance(value, dict):
                raise UsageProblem(f"{values[p.name.replace('-', '_')]} must hold an object (mapping)")
            payload.update(value)
        else:
            payload[p.target] = value
    return adapt(cmd.operation, payload)


def declare(cmd: Cmd):
    group_name, command_name = cmd.path.split(" ", 1)

    def command(**values):
        as_json, data = values.pop("as_json"), values.pop("data")
        result = run(lambda: rpc(cmd.service, cmd.rpc, build_payload(cmd, values, data)), as_json)
        if not as_json and cmd.operation in VIEWS:
            for title, rows, columns in VIEWS[cmd.operation](result):
                output.show(rows, columns=columns, title=title)
            return
        output.show(result, as_json, list(cmd.columns) or None)

    params = [_parameter(p) for p in cmd.params]
    params.append(
        inspect.Parameter(
            "data",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Optional[str], typer.Option("--data", help=DATA_HELP, show_default=False, metavar="JSON|@FILE")
            ],
        )
    )
    params.append(
        inspect.Parameter(
            "as_json",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[bool, typer.Option("--json", help=JSON_HELP)],
        )
    )
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # typer reads the options here
    command.__name__ = f"{group_name}_{command_name}".replace("-", "_")
    command.__doc__ = f"{cmd.help}  [{cmd.operation}]"
    group(group_name).command(command_name, help=command.__doc__)(command)


for _cmd in commands():
    declare(_cmd)


# --- identity ---------------------------------------------------------------------------------------------------
def parse_ttl(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "m")
    try:
        amount = float(number)
    except ValueError:
        raise UsageProblem(f"--ttl: {text!r} is not a duration (e.g. 30m, 8h, 2d)") from None
    if amount <= 0:
        raise UsageProblem("--ttl must be positive")
    return timedelta(**{units[unit]: amount})


@app.command("token")
def token_command(
    user: Annotated[str, typer.Option("--user", help="who the token identifies (e.g. maria.pm)")],
    role: Annotated[list[str], typer.Option("--role", help="a role (repeat for several)")],
    ttl: Annotated[str, typer.Option("--ttl", help="lifetime: 30m, 8h, 2d")] = "8h",
):
    """Print a signed staff token (with JMDI_ISSUER_KEY, or the local issuer of a checkout after `make run`)."""

    def make():
        issuer = (STATE.settings or Settings.from_env()).staff_issuer()
        if issuer is None:
            raise UsageProblem(
                "no staff token issuer: staff tokens come from the organisation's SSO; "
                "set JMDI_ISSUER_KEY only where JMDI runs its own issuer (or run from a checkout)"
            )
        try:
            return issuer.issue(user, role, parse_ttl(ttl))
        except ValueError as exc:
            from services.common.security.roles import STAFF_ROLES

            raise UsageProblem(f"{exc} (roles: {', '.join(STAFF_ROLES)})") from None

    print(run(make))


@app.command("whoami")
def whoami(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False):
    """Who the CLI acts as: the user, roles and expiry in JMDI_TOKEN (not verified here), or local mode."""

    def describe_identity():
        import jwt

        settings = STATE.settings or Settings.from_env()
        if settings.token:
            try:
                claims = jwt.decode(settings.token, options={"verify_signature": False})
            except jwt.InvalidTokenError as exc:
                raise UsageProblem(f"JMDI_TOKEN is not a token: {exc}") from None
            from services.common.security.auth import DEFAULT_ROLES_CLAIM, DEFAULT_USER_CLAIM, claimed

            expires = datetime.fromtimestamp(claims.get("exp", 0), timezone.utc).isoformat()
            user, roles = claimed(
                settings.token,
                settings.token_settings.get("JMDI_USER_CLAIM", DEFAULT_USER_CLAIM),
                settings.token_settings.get("JMDI_ROLES_CLAIM", DEFAULT_ROLES_CLAIM),
            )
            return {"mode": "token", "user": user, "roles": roles, "expires_at": expires}
        if settings.local_mode:
            from .session import local_user

            return {
                "mode": "local",
                "user": settings.user or local_user(),
                "roles": "each command's roles (roles.MATRIX), signed by the local issuer (var/keys)",
            }
        raise UsageProblem("no identity: set JMDI_TOKEN (JMDI_ISSUER_KEY is set, so there is no local mode)")

    output.show(run(describe_identity), as_json)


@app.command("roles")
def roles_command(
    role: Annotated[Optional[str], typer.Option("--role", help="only what this role may do")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """The role matrix: which role may call which operation, and the command that calls it."""
    from services.common.security.roles import MATRIX

    from .table import command_for

    rows = [
        {"operation": op, "roles": ", ".join(sorted(allowed)), "command": command_for(op) or ""}
        for op, allowed in sorted(MATRIX.items())
        if role is None or role in allowed
    ]
    output.show(rows, as_json)


# --- operations on every service --------------------------------------------------------------------------------
ServiceOpt = Annotated[
    Optional[str], typer.Option("--service", help="calls, grants, notifications or reporting (default: all)")
]


def _services(service: str | None) -> tuple[str, ...]:
    if service is None or service == "all":
        return SERVICES
    if service not in SERVICES:
        raise UsageProblem(f"--service must be one of {', '.join(SERVICES)}")
    return (service,)


@app.command("health")
def health(service: ServiceOpt = None, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False):
    """Is each service up (its outbox backlog, held dead letters); exit 6 naming any that does not answer."""

    def ask():
        (name,) = _services(service) if service else (None,)
        return rpc("gateway", "health", {"service": name} if name else {})

    rows = run(ask, as_json)
    output.show(rows, as_json, ["service", "status", "outbox_pending", "dead_letters_held", "detail"])
    down = [row["service"] for row in rows if row.get("status") != "ok"]
    if down:
        output.error_line(f"not answering: {', '.join(down)}")
        raise typer.Exit(failures.SYSTEM_FAILURE)


@app.command("audit")
def audit(
    entity: Annotated[Optional[str], typer.Option(help="e.g. proposal:<id>, grant:<id>, call:<id>")] = None,
    user: Annotated[Optional[str], typer.Option("--who", help="only this user's actions")] = None,
    since: Annotated[Optional[str], typer.Option(help="ISO date-time with zone")] = None,
    until: Annotated[Optional[str], typer.Option(help="ISO date-time with zone")] = None,
    outcome: Annotated[Optional[str], typer.Option(help="done or refused")] = None,
    service: Annotated[
        Optional[str],
        typer.Option("--service", help="calls, grants, notifications, reporting or gateway (default: all)"),
    ] = None,
    limit: Annotated[int, typer.Option(help="rows per service")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """The audit trail: who did what, with which role, on which entity, refused or done (auditor)."""
    query = {
        k: v
        for k, v in dict(entity=entity, user=user, since=since, until=until, outcome=outcome, limit=limit).items()
        if v is not None
    }

    def collect():
        rows = []
        # the services' trails, and the gateway's: requests refused at the door never reached a service
        names = (
            ("gateway",)
            if service == "gateway"
            else (*_services(service), *(("gateway",) if service in (None, "all") else ()))
        )
        for name in names:
            rows += [{"service": name, **row} for row in rpc(name, "query_audit", query)]
        return sorted(rows, key=lambda r: (str(r.get("at")), r.get("id") or 0))

    rows = run(collect, as_json)
    if as_json:
        output.print_json(rows)
        return
    for row in rows:
        detail = row.get("detail") or {}
        row["roles"] = ",".join(row.get("roles") or [])
        row["what"] = detail.get("event_type") or detail.get("reason") or ""
    output.show(rows, columns=["at", "service", "user", "roles", "operation", "outcome", "entity", "what"])


dead_letters = group("dead-letters")


@dead_letters.command("list")
def dead_letters_list(
    service: ServiceOpt = None,
    status: Annotated[
        str, typer.Option(help="held, replayed, discarded, refused (not from their producer) or all")
    ] = "held",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """Events a service failed to apply after its retries."""

    def collect():
        return [
            {"service": name, **row}
            for name in _services(service)
            for row in rpc(name, "list_dead_letters", {"status": status})
        ]

    output.show(
        run(collect, as_json),
        as_json,
        ["service", "id", "consumer", "event_type", "event_id", "status", "attempts", "error", "last_failed_at"],
    )


def _dead_letter_action(operation: str):
    def action(
        dead_letter_id: Annotated[int, typer.Argument(help="dead letter id (from `dead-letters list`)")],
        service: Annotated[str, typer.Option("--service", help="the service holding it")],
        as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ):
        def call():
            (name,) = _services(service)
            return rpc(name, operation, {"id": dead_letter_id})

        output.show(run(call, as_json), as_json)

    return action


dead_letters.command("replay", help="Apply a dead-lettered event again (after fixing the cause)")(
    _dead_letter_action("replay_dead_letter")
)
dead_letters.command("discard", help="Give up on a dead-lettered event (kept, marked discarded)")(
    _dead_letter_action("discard_dead_letter")
)


@app.command("rpc")
def raw_rpc(
    service: Annotated[str, typer.Argument(help="service name")],
    operation: Annotated[str, typer.Argument(help="operation name")],
    fields: Annotated[Optional[list[str]], typer.Argument(help="field=value (JSON values allowed)")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help=DATA_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """Call any operation by name (for operations newer than this CLI)."""

    def call():
        payload = json_value(data) if data else {}
        for item in fields or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageProblem(f"expected field=value, got {item!r}")
            try:
                payload[key] = json.loads(value)
            except json.JSONDecodeError:
                payload[key] = value
        return rpc(service, operation, payload)

    output.show(run(call, as_json), as_json)


# --- EC reports ------------------------------------------------------------------------------------------------
report = group("report")
FORMATS = ("table", "json", "csv", "xlsx")


def document(result, fmt: str | None = None) -> bytes | str:
    """The file body in a reporting reply: base64 for binary formats, text, or the JSON itself."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        result = {k: v for k, v in result.items() if k not in ("format", "filename", "mimetype")}
        for key in ("content_base64", "base64"):
            if isinstance(result.get(key), str):
                return base64.b64decode(result[key])
        content = result.get("content")
        if isinstance(content, str):
            return base64.b64decode(content) if fmt == "xlsx" else content
        if content is not None:
            return json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(result, indent=2, ensure_ascii=False) + "\n"


def deliver(body: bytes | str, out: Path | None):
    if out is None:
        if isinstance(body, bytes):
            raise UsageProblem("binary output needs --out FILE")
        sys.stdout.write(body if body.endswith("\n") else body + "\n")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    output.note(f"wrote {out} ({out.stat().st_size} bytes)")


OutOpt = Annotated[Optional[Path], typer.Option("--out", help="write to this file (default: stdout)")]
ProgrammeOpt = Annotated[Optional[str], typer.Option("--programme", help="programme id")]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="ISO date: the report as it stood that day")]


def _filters(programme, as_of) -> dict:
    return {k: v for k, v in {"programme_id": programme, "as_of": as_of}.items() if v}


@report.command("budget")
def report_budget(
    programme: ProgrammeOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or xlsx")] = "table",
    out: OutOpt = None,
):
    """The EC "Migration and Asylum" budget report (xlsx needs --out)."""

    def produce():
        if fmt not in FORMATS:
            raise UsageProblem(f"--format must be one of {', '.join(FORMATS)}")
        if fmt == "xlsx" and out is None:
            raise UsageProblem("--format xlsx needs --out FILE")
        result = rpc("reporting", "budget_report", {**_filters(programme, as_of), "format": fmt})
        deliver(document(result, fmt), out)

    run(produce)


def _export(operation: str, out: Path, programme, as_of):
    run(lambda: deliver(document(rpc("reporting", operation, _filters(programme, as_of))), out))


@report.command("iati")
def report_iati(
    out: Annotated[Path, typer.Option("--out", help="the IATI XML file to write")],
    programme: ProgrammeOpt = None,
    as_of: AsOfOpt = None,
):
    """IATI 2.03 activities XML of the programme's grants."""
    _export("iati_export", out, programme, as_of)


@report.command("360giving")
def report_360giving(
    out: Annotated[Path, typer.Option("--out", help="the 360Giving JSON file to write")],
    programme: ProgrammeOpt = None,
    as_of: AsOfOpt = None,
):
    """360Giving JSON of the programme's grants."""
    _export("giving360_export", out, programme, as_of)


def differences_of(result) -> list:
    if isinstance(result, dict):
        for key in ("differences", "mismatches", "discrepancies"):
            if isinstance(result.get(key), list):
                return result[key]
        if result.get("ok") is False or result.get("balanced") is False:
            return [result]
    return []


@report.command("reconcile")
def report_reconcile(
    programme: ProgrammeOpt = None, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False
):
    """Compare reporting's figures with the grants ledger; exit 1 when they differ."""
    result = run(lambda: rpc("reporting", "reconcile", _filters(programme, None)), as_json)
    differences = differences_of(result)
    if as_json:
        output.print_json(result)
    elif differences:
        output.show(differences, title="differences")
    else:
        output.show(result)
    if differences:
        output.error_line(f"{len(differences)} difference(s) between reporting and the grants ledger")
        raise typer.Exit(failures.DIFFERENCES)


@report.command("generate")
def report_generate(
    kind: Annotated[str, typer.Option("--kind", help="monthly, quarterly or on_demand")],
    period: Annotated[str, typer.Option("--period", help="2010-03, 2010-Q1, or a date for on_demand")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """Generate (once) and archive the EC report of a period; the notifications service sends it to the EC
    contacts (EC_REPORT_RECIPIENTS) — this says who, or that nobody receives it."""

    def generate():
        made = rpc("reporting", "generate_report", {"kind": kind, "period": period})
        return {**made, "sent_to": _recipients_of(made)}

    result = run(generate, as_json)
    output.show(result, as_json)
    if as_json:
        return
    if not result.get("created"):
        output.note(
            f"already generated on {str(result.get('generated_at'))[:10]}: not sent again "
            f"(`jmdi report show {result.get('report_id')} --out FILE` writes it)"
        )
    elif isinstance(result["sent_to"], list) and result["sent_to"]:
        output.note(f"sent to {len(result['sent_to'])} EC contact(s): {', '.join(result['sent_to'])}")
    elif isinstance(result["sent_to"], list):
        output.note(
            "nobody received it: EC_REPORT_RECIPIENTS is not set on the notifications service (the report "
            f"is archived: `jmdi report show {result.get('report_id')} --out FILE` writes it)"
        )
    else:
        output.note(f"archived; who receives it is unknown: {result['sent_to']}")


def _recipients_of(made: dict):
    """The EC contacts notifications sends a new report to ([] when none is set), or why that is unknown."""
    if not made.get("created"):
        return []
    try:
        return rpc("notifications", "report_recipients")["ec_report"]
    except Exception as exc:  # the report is made and archived either way: say why the answer is missing
        return failures.describe(exc)[1]


@report.command("show")
def report_show(
    report_id: Annotated[str, typer.Argument(help="report id (from `jmdi report list`)")],
    out: OutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """Show an archived EC report; --out writes its file."""
    result = run(lambda: rpc("reporting", "get_report", {"report_id": report_id}), as_json)
    if out is not None:
        run(lambda: deliver(document(result), out))
    output.show({k: v for k, v in result.items() if k not in ("content", "content_base64")}, as_json)


@report.command("rebuild")
def report_rebuild(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False):
    """Rebuild reporting's projections from its event archive."""
    output.show(run(lambda: rpc("reporting", "rebuild_projections"), as_json), as_json)


@app.command("reports", hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def reports_renamed():
    """The grantees' reports moved to `jmdi grantee-reports`; EC reports are `jmdi report`."""
    output.error_line(
        "`jmdi reports` is now `jmdi grantee-reports` (grantees' interim and final reports); "
        "EC reports are `jmdi report`"
    )
    raise typer.Exit(failures.INVALID_INPUT)


# --- budget reallocation by moves ---------------------------------------------------------------------------------
@group("amendments").command("reallocate")
def amendments_reallocate(
    grant_id: Annotated[str, typer.Argument(help="grant id", metavar="GRANT_ID", show_default=False)],
    move: Annotated[
        Optional[list[str]],
        typer.Option(
            "--move",
            metavar="FROM:TO=AMOUNT",
            help="move AMOUNT (EUR) from one heading to another (repeat), e.g. human_resources:travel=1000.00",
        ),
    ] = None,
    budget: Annotated[
        Optional[list[str]],
        typer.Option(
            "--budget",
            metavar="HEADING=AMOUNT",
            help="the new amount of a heading (repeat; headings not given keep theirs)",
        ),
    ] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", help="why")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """Move budget between headings (up to 15% of a heading without an amendment)  [grants.reallocate_budget]"""
    from .payload import moved_budget

    def reallocate():
        if not move and not budget:
            raise UsageProblem("give --move FROM:TO=AMOUNT or --budget HEADING=AMOUNT")
        current = rpc("grants", "get_grant", {"grant_id": grant_id})["budget"]
        new_budget = moved_budget(current, move or [], convert("pairs", budget, "budget") or {})
        return rpc(
            "grants",
            "reallocate_budget",
            {
                k: v
                for k, v in {"grant_id": grant_id, "new_budget": new_budget, "reason": reason}.items()
                if v is not None
            },
        )

    output.show(run(reallocate, as_json), as_json)


# --- bulk import and the demo -------------------------------------------------------------------------------------
def show_import(result, as_json: bool, **done) -> None:
    """A file import's outcome: its summary and the rows with errors (or all of it as JSON); exit non-zero on
    errors."""
    if as_json:
        output.print_json({**result.summary(), "rows_with_errors": result.errors, **done})
    else:
        output.show(result.summary())
        if result.errors:
            output.show(result.errors, columns=["row", "field", "message"], title="rows with errors")
    if result.errors:
        raise typer.Exit(result.exit_code)


@group("proposals").command("import")
def proposals_import(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX, one proposal per row")],
    call: Annotated[str, typer.Option("--call", help="call id")],
    check: Annotated[bool, typer.Option("--check", help="validate only, submit nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """Import proposals: every row is validated first; nothing is submitted unless all rows are valid."""
    from .importer import import_proposals

    result = run(lambda: import_proposals(STATE.conn(), file, call, check_only=check, quiet=as_json), as_json)
    show_import(result, as_json, submitted_rows=result.submitted, already_submitted_rows=result.already)


@group("rates").command("import")
def rates_import(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX: a currency code and a rate per row")],
    source: Annotated[
        str, typer.Option("--source", help="where the rates come from, kept with each rate, e.g. 'InforEuro 2026-03'")
    ],
    month: Annotated[
        Optional[str], typer.Option("--month", help="YYYY-MM of every row (else the file's month column)")
    ] = None,
    rate_type: Annotated[str, typer.Option("--rate-type", help="inforeuro or un_operational")] = "inforeuro",
    check: Annotated[bool, typer.Option("--check", help="validate only, publish nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
):
    """Publish exchange rates from an InforEuro-style file: every row is validated first; nothing is published
    unless all rows are valid; one month at a time  [grants.set_rates]"""
    from .rates import import_rates

    result = run(
        lambda: import_rates(STATE.conn(), file, source, month, rate_type, check_only=check, quiet=as_json), as_json
    )
    show_import(result, as_json, months=result.published)


@group("proposals").command("template")
def proposals_template(
    out: Annotated[Path, typer.Argument(help="the .csv or .xlsx file to write")],
    rows: Annotated[int, typer.Option(help="example rows")] = 3,
):
    """Write an import file with every column and a few example rows (replace them with the real proposals)."""

    def write():
        import yaml

        from .demo import PROGRAMME_FILE
        from .importer import flatten, write_rows
        from .payload import programme_from_yaml
        from .scenario import build

        programme = programme_from_yaml(yaml.safe_load(PROGRAMME_FILE.read_text(encoding="utf-8")))
        from datetime import date

        examples = build(programme, "CALL", rows, seed=1, starting=date.today()).consortia
        write_rows([flatten({k: v for k, v in c.payload.items() if k != "idempotency_key"}) for c in examples], out)
        output.note(f"wrote {out}: {rows} example row(s); import with `jmdi proposals import {out} --call ID`")

    run(write)


@app.command("demo")
def demo(
    proposals: Annotated[int, typer.Option(help="how many proposals to submit")] = 300,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same demo")] = 2008,
    call_id: Annotated[str, typer.Option("--call", help="call id")] = "JMDI-2008",
):
    """Replay the 2008 JMDI call end to end against the running services, then print the budget report."""
    from .demo import run_demo

    run(lambda: run_demo(STATE.conn(), proposals=proposals, seed=seed, call_id=call_id))


def main():
    try:
        app()
    finally:
        STATE.close()


if __name__ == "__main__":
    main()
