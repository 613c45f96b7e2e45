"""The staff commands: each operation of the services is a `jmdi` command whose options are the operation's own
arguments, as its input schema declares them (jmdi/operations.py reads them from the gateway's OpenAPI document):
an option per field (`--field-name`), required where the schema requires it, of the field's kind (a value, a
repeated value, KEY=VALUE pairs, JSON), with the schema's description as help.

What is declared here is only how a command is shaped for people: its name ("calls open" rather than
"calls.open_call"), which argument is positional, an option named otherwise than its field (`--call` for call_id),
a value read from a file or given as a time from now, the columns of a list. An operation not listed here still gets
a command — `jmdi <service> <operation-with-dashes>` — as soon as a service declares it. Every command also takes
`--data JSON|@file.json|@file.yaml` (fields not covered by options, merged under them) and `--json` (machine
output). An option left out is not sent, so the service's default applies.
"""

import functools
from dataclasses import dataclass, replace

from .operations import Field, OperationInfo, operations


@dataclass(frozen=True)
class P:
    """One command-line parameter and the RPC argument it fills. Left unset, the kind and required come from the
    operation's schema; help too."""

    name: str  # option name without dashes (or the argument's name when positional)
    field: str | None = None  # RPC argument (default: name with '-' → '_')
    kind: str | None = None  # str | int | bool | list | list_int | pairs | pairs_int | json | any | file | text
    #                          | programme | when (None: the field's kind in the schema)
    help: str = ""
    required: bool = False
    positional: bool = False

    @property
    def target(self) -> str:
        return self.field or self.name.replace("-", "_")


@dataclass(frozen=True)
class Cmd:
    path: str  # "calls open": group and command name
    operation: str  # "calls.open_call"
    help: str = ""  # default: the operation's summary
    params: tuple[P, ...] = ()
    columns: tuple[str, ...] = ()  # table columns for list results (default: every scalar field)

    @property
    def service(self) -> str:
        return self.operation.split(".", 1)[0]

    @property
    def rpc(self) -> str:
        return self.operation.split(".", 1)[1]


def arg(name, field=None, help=""):
    return P(name, field, help=help, required=True, positional=True)


def opt(name, field=None, kind=None, help="", required=False):
    return P(name, field, kind, help, required)


CALL = opt("call", "call_id", help="call id")
CALL_RULES = (
    opt("min-grant", "min_grant_eur"),
    opt("max-grant", "max_grant_eur"),
    opt("max-ec-share", help="e.g. 0.90"),
    opt("applicant-type", "eligible_applicant_types", help="an eligible applicant type (repeat)"),
    opt("min-duration", "min_duration_months"),
    opt("max-duration", "max_duration_months"),
)
WHEN = "ISO date-time with zone, or from now: +10m, +2h, +30d"

COMMANDS: tuple[Cmd, ...] = (
    # --- calls service: programmes, calls, proposals, screening, assessments, ranking ------------------------
    Cmd(
        "programmes load",
        "calls.load_programme",
        "Load (or update) a programme from its YAML definition",
        (
            P(
                "file",
                "programme",
                "programme",
                "programme YAML (e.g. services/calls/data/programmes/jmdi.yaml) or the "
                "id of a shipped programme (jmdi)",
                required=True,
                positional=True,
            ),
        ),
    ),
    Cmd(
        "programmes update",
        "calls.update_programme",
        "Change fields of a programme (via --data, YAML keys)",
        (arg("programme_id", help="programme id"),),
    ),
    Cmd("programmes show", "calls.get_programme", "Show a programme", (arg("programme_id"),)),
    Cmd("programmes list", "calls.list_programmes", "List programmes"),
    Cmd(
        "calls create",
        "calls.create_call",
        "Create a call for proposals (draft)",
        (
            arg("call_id", help="new call id, e.g. JMDI-2008"),
            opt("programme", "programme_id"),
            opt("deadline", kind="when", help=WHEN),
            opt("window", "windows", "pairs", "window=allocation (EUR), repeat per window"),
            *CALL_RULES,
        ),
    ),
    Cmd(
        "calls amend",
        "calls.amend_call",
        "Amend a draft call (only the options given change)",
        (
            arg("call_id"),
            opt("deadline", kind="when", help=WHEN),
            opt("window", "windows", "pairs", "window=allocation (EUR), repeat per window"),
            *CALL_RULES,
        ),
    ),
    Cmd("calls open", "calls.open_call", "Open a call for submissions", (arg("call_id"),)),
    Cmd("calls close", "calls.close_call", "Close a call (no more submissions)", (arg("call_id"),)),
    Cmd("calls show", "calls.get_call", "Show a call", (arg("call_id"),)),
    Cmd(
        "calls list",
        "calls.list_calls",
        "List calls",
        (opt("programme", "programme_id"),),
        ("call_id", "programme_id", "title", "status", "deadline"),
    ),
    Cmd(
        "proposals submit",
        "calls.submit_proposal",
        "Submit one proposal from a JSON/YAML file",
        (P("file", None, "file", "proposal JSON or YAML (the submit_proposal arguments)", True, True),),
    ),
    Cmd("proposals withdraw", "calls.withdraw_proposal", "Withdraw a proposal", (arg("proposal_id"),)),
    Cmd(
        "proposals show",
        "calls.get_proposal",
        "Show a proposal (by id, or --reference)",
        (P("proposal_id", help="proposal id", positional=True),),
    ),
    Cmd(
        "proposals list",
        "calls.list_proposals",
        "List the proposals of a call",
        (CALL,),
        ("reference", "proposal_id", "window", "target_country", "status", "screening", "ec_amount_requested_eur"),
    ),
    Cmd(
        "screening load-exclusions",
        "calls.load_exclusion_list",
        "Load the exclusion list (CSV: name,registration_number[,reason]) and screen every proposal against it",
        (P("file", "csv", "text", "exclusion list CSV", True, True),),
    ),
    Cmd(
        "screening decide",
        "calls.decide_screening",
        "Decide on a proposal flagged by exclusion screening",
        (arg("proposal_id"), opt("reason", help="required to exclude")),
    ),
    Cmd(
        "assessments declare",
        "calls.declare_conflicts",
        "Sign your declaration of impartiality (the organisations you have a link with; none is a declaration too)",
        (CALL, opt("organisation", "interests", help="an organisation you have a link with (repeat)")),
    ),
    Cmd(
        "assessments assign",
        "calls.assign_assessors",
        "Assign assessors to the screened proposals of a call",
        (CALL, opt("assessor", "assessors", help="assessor user name (repeat; default: every declared)")),
    ),
    Cmd(
        "assessments mine",
        "calls.my_assignments",
        "The proposals assigned to you",
        (CALL, opt("pending-only", help="only those not scored yet")),
        ("proposal_id", "reference", "stage", "window", "status"),
    ),
    Cmd(
        "assessments record",
        "calls.record_assessment",
        "Score a proposal assigned to you",
        (arg("proposal_id"), opt("score", "scores", "pairs_int", "criterion=points (repeat)")),
    ),
    Cmd("assessments scores", "calls.get_scores", "The scores of a call's proposals", (CALL,)),
    Cmd(
        "ranking publish",
        "calls.publish_ranking",
        "Rank the evaluated proposals and publish (every window not yet published, or --window)",
        (CALL,),
    ),
    Cmd("ranking show", "calls.get_ranking", "Show the published ranking of a call", (CALL,)),
    # --- grants service --------------------------------------------------------------------------------------
    Cmd(
        "awards award",
        "grants.award_grant",
        "Award a grant to a ranked proposal (steering committee)",
        (
            arg("proposal_id"),
            opt("amount", "amount_eur"),
            opt("decision-ref", "decision_reference"),
            opt("decision-date", help="ISO date of the committee's decision (default: today)"),
        ),
    ),
    Cmd(
        "awards reject",
        "grants.reject_proposal",
        "Reject a proposal (steering committee)",
        (
            arg("proposal_id"),
            opt("reason", "reasons", help="a reason (repeat)"),
            opt("decision-ref", "decision_reference"),
        ),
    ),
    Cmd("awards decline", "grants.decline_grant", "Record that an awardee declined the grant", (arg("grant_id"),)),
    Cmd(
        "grants show", "grants.get_grant", "Show a grant: schedule, reports due, payments, closure", (arg("grant_id"),)
    ),
    Cmd(
        "grants list",
        "grants.list_grants",
        "List grants",
        (opt("programme", "programme_id"), opt("call", "call_id")),
        (
            "grant_id",
            "reference",
            "window",
            "country",
            "lead_organisation",
            "status",
            "amount_eur",
            "paid_eur",
            "decommitted_eur",
        ),
    ),
    Cmd(
        "grants ledger",
        "grants.ledger",
        "The programme ledger: awarded, committed, decommitted and paid per grant",
        (opt("programme", "programme_id"),),
    ),
    Cmd("organisations register", "grants.register_organisation", "Register a grantee organisation and its account"),
    Cmd(
        "organisations validate-bank",
        "grants.validate_bank_account",
        "Confirm an organisation's bank account (not by who registered it)",
        (
            arg("organisation_id"),
            opt("iban", help="the IBAN you checked"),
            opt("shared-iban-reason", help="why it is right that another organisation has the same account"),
        ),
    ),
    Cmd(
        "organisations list",
        "grants.list_organisations",
        "List registered organisations",
        (),
        (
            "organisation_id",
            "legal_name",
            "country",
            "registration_number",
            "iban",
            "account_validated",
            "iban_shared_with",
        ),
    ),
    Cmd(
        "contracts sign",
        "grants.sign_contract",
        "Record the signature of a grant contract with the lead",
        (
            arg("grant_id"),
            opt("organisation", "organisation_id"),
            opt("start-date", help="ISO date the action starts (default: today)"),
            opt("annual-budget", "annual_budgets", help="EC budget of each 12-month period (repeat)"),
        ),
    ),
    Cmd(
        "payments request",
        "grants.request_payment",
        "Request a tranche payment (finance officer)",
        (
            arg("grant_id"),
            opt("tranche", "tranche_number"),
            opt("amount", "amount_eur"),
            opt("idempotency-key", help="the same key again never pays twice"),
        ),
    ),
    Cmd(
        "payments approve",
        "grants.approve_payment",
        "Approve and pay a requested payment (finance approver)",
        (
            arg("payment_id"),
            opt("value-date", help="ISO date the bank paid (default: today)"),
            opt("bank-ref", "bank_reference"),
        ),
    ),
    Cmd(
        "payments cancel",
        "grants.cancel_payment",
        "Cancel a payment request awaiting approval (its requester or a finance approver)",
        (arg("payment_id"), opt("reason", help="why, for the audit trail and the approvers")),
    ),
    Cmd(
        "payments list",
        "grants.list_payments",
        "List payments",
        (opt("grant", "grant_id"),),
        (
            "payment_id",
            "grant_id",
            "tranche_number",
            "amount_eur",
            "status",
            "requested_by",
            "approved_by",
            "value_date",
        ),
    ),
    Cmd(
        "grantee-reports submit",
        "grants.submit_report",
        "Record a grantee's interim or final financial report",
        (
            arg("grant_id"),
            opt("spent", "expenditure", help="heading=amount spent in EUR (repeat), or give --lines"),
            opt(
                "lines",
                "lines",
                kind="file",
                help="the expenditure lines in their currencies, a JSON/YAML list of {heading, "
                "amount, currency, incurred_on, description}: each converted to EUR under the programme's rule",
            ),
        ),
    ),
    Cmd("grantee-reports accept", "grants.accept_report", "Accept a grantee's report", (arg("report_id"),)),
    Cmd(
        "grantee-reports return",
        "grants.return_report",
        "Return a report to the grantee for changes",
        (arg("report_id"),),
    ),
    Cmd(
        "amendments amend",
        "grants.amend_grant",
        "Amend a grant: budget, duration or amount",
        (
            arg("grant_id"),
            opt("budget", "new_budget", help="heading=new amount (repeat)"),
            opt("duration-months", "new_duration_months"),
            opt("amount", "new_amount_eur"),
            opt("annual-budget", "new_annual_budgets", help="(repeat)"),
        ),
    ),
    Cmd(
        "grants terminate",
        "grants.terminate_grant",
        "Terminate a grant early: its final report covers up to the effective date, then closure decommits",
        (arg("grant_id"), opt("effective-date", help="ISO date the action stops (default: today)")),
    ),
    Cmd(
        "amendments approve",
        "grants.approve_amendment",
        "Approve an amendment raising the award (someone other than who proposed it)",
        (arg("amendment_id"),),
    ),
    Cmd(
        "closure close",
        "grants.close_grant",
        "Close a grant after its final report (the unspent award is decommitted)",
        (arg("grant_id"),),
    ),
    Cmd(
        "rates list",
        "grants.list_rates",
        "Published exchange rates (InforEuro / UN operational) by month",
        (
            opt("month", help="YYYY-MM"),
            opt("from-month", help="YYYY-MM"),
            opt("to-month", help="YYYY-MM"),
            opt("currency", help="ISO 4217 code"),
            opt("rate-type", help="inforeuro or un_operational"),
        ),
        ("rate_type", "month", "currency", "rate", "source", "published_by", "published_at"),
    ),
    # --- notifications -----------------------------------------------------------------------------------------
    Cmd(
        "notifications deliveries",
        "notifications.list_deliveries",
        "Messages sent to applicants and staff",
        (opt("proposal", "proposal_id"), opt("grant", "grant_id")),
        ("notification_id", "template", "recipient", "language", "status", "attempts", "created_at"),
    ),
    Cmd(
        "notifications retry", "notifications.retry_notification", "Retry a failed delivery", (arg("notification_id"),)
    ),
    Cmd("notifications send-reminders", "notifications.send_due_reminders", "Send the reminders that are due"),
    # --- reporting (raw operations; `jmdi report ...` wraps the EC reports) -------------------------------------
    Cmd(
        "report totals",
        "reporting.totals",
        "Committed and disbursed totals of a programme",
        (opt("programme", "programme_id"),),
    ),
    Cmd(
        "report grants",
        "reporting.grant_lines",
        "One page of the budget report's grant lines (--after: the previous page's next cursor)",
        (opt("programme", "programme_id"),),
    ),
    Cmd(
        "report list",
        "reporting.list_reports",
        "EC reports generated so far",
        (),
        ("report_id", "kind", "period", "as_of", "format", "filename", "generated_at", "generated_by"),
    ),
)

# operations served by hand-written commands (jmdi/cli.py): files, exit codes, several services at once
SPECIAL = {
    "reporting.budget_report": "report budget",
    "reporting.export_budget_report": "report budget",
    "reporting.iati_export": "report iati",
    "reporting.giving360_export": "report 360giving",
    "reporting.reconcile": "report reconcile",
    "reporting.rebuild_projections": "report rebuild",
    "reporting.get_report": "report show",
    "reporting.generate_report": "report generate",
    "notifications.report_recipients": "report generate",
    "grants.set_rates": "rates import",
    "grants.reallocate_budget": "amendments reallocate",
    "*.list_dead_letters": "dead-letters list",
    "*.replay_dead_letter": "dead-letters replay",
    "*.discard_dead_letter": "dead-letters discard",
    "*.query_audit": "audit",
    "*.health": "health",
}


# the group a command of an operation not declared above goes in
SERVICE_GROUP = {"calls": "calls", "grants": "grants", "notifications": "notifications", "reporting": "report"}
RESERVED = frozenset({"data", "json", "help", "user"})  # options every command has, or the CLI's own


def _shaped(cmd: Cmd, info: OperationInfo | None) -> Cmd:
    """A declared command with every argument of its operation: the declared parameters completed from the schema
    (kind, required, help), then an option for each other field."""
    if info is None:  # an operation the installed services do not have (any more): as declared
        return replace(cmd, params=tuple(replace(p, kind=p.kind or "str") for p in cmd.params))
    params = []
    for p in cmd.params:
        field = None if (p.kind == "file" and p.field is None) else info.field(p.target)
        if field is None:
            params.append(replace(p, kind=p.kind or "str"))
            continue
        params.append(replace(p, kind=p.kind or field.kind, required=field.required, help=p.help or field.help))
    whole_payload = any(p.kind == "file" and p.field is None for p in cmd.params)
    if not whole_payload:  # a command reading the whole payload from a file takes no option per field
        covered = {p.target for p in params} | {p.name for p in params} | RESERVED
        params += [
            _option(field)
            for field in info.fields
            if field.name not in covered and field.name.replace("_", "-") not in covered
        ]
    return replace(cmd, help=cmd.help or info.summary or cmd.operation, params=tuple(params))


def _option(field: Field) -> P:
    return P(field.name.replace("_", "-"), field.name, field.kind, field.help, field.required)


@functools.cache
def commands() -> tuple[Cmd, ...]:
    """Every command of the CLI calling one operation: the declared ones, completed from the operations' schemas,
    and one per operation neither declared nor served by a hand-written command (jmdi/cli.py)."""
    infos = operations()
    declared = tuple(_shaped(cmd, infos.get(cmd.operation)) for cmd in COMMANDS)
    taken = {cmd.operation for cmd in COMMANDS}
    paths = {cmd.path for cmd in COMMANDS}
    more = []
    for key, info in sorted(infos.items()):
        if key in taken or _special(key) or not info.roles or info.service not in SERVICE_GROUP:
            continue
        path = f"{SERVICE_GROUP[info.service]} {info.name.replace('_', '-')}"
        if path not in paths:
            more.append(_shaped(Cmd(path, key), info))
    return declared + tuple(more)


def _special(operation: str) -> str | None:
    name = operation.split(".", 1)[1]
    return SPECIAL.get(operation) or SPECIAL.get(f"*.{name}")


def command_for(operation: str) -> str | None:
    """The CLI command that calls an operation (None: the CLI has none)."""
    for cmd in commands():
        if cmd.operation == operation:
            return f"jmdi {cmd.path}"
    special = _special(operation)
    return f"jmdi {special}" if special else None
