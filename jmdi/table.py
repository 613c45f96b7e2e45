"""The staff commands, declared: command path → "<service>.<operation>" + how options become RPC arguments.

Following a service's API change is an edit here (docs/api/<svc>.md is the reference). Every command also takes
`--data JSON|@file.json|@file.yaml` (fields not covered by options, merged under them) and `--json` (machine output).
An option left out is not sent, so the service's default applies.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class P:
    """One command-line parameter and the RPC argument it fills."""

    name: str  # option name without dashes (or the argument's name when positional)
    field: str | None = None  # RPC argument (default: name with '-' → '_')
    kind: str = "str"  # str | int | bool | list | pairs | pairs_int | json | file | text | programme
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
    help: str
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


def opt(name, field=None, kind="str", help="", required=False):
    return P(name, field, kind, help, required)


CALL = opt("call", "call_id", help="call id", required=True)
STAGE = opt("stage", help="concept_note or full_application")
CALL_RULES = (opt("min-grant", "min_grant_eur"), opt("max-grant", "max_grant_eur"),
              opt("max-ec-share", help="e.g. 0.90"),
              opt("applicant-type", "eligible_applicant_types", "list", "an eligible applicant type (repeat)"),
              opt("min-duration", "min_duration_months", "int"), opt("max-duration", "max_duration_months", "int"))
LIMIT = opt("limit", kind="int", help="at most this many rows")

COMMANDS: tuple[Cmd, ...] = (
    # --- calls service: programmes, calls, proposals, screening, assessments, ranking ------------------------
    Cmd("programmes load", "calls.load_programme", "Load (or update) a programme from its YAML definition",
        (P("file", "programme", "programme", "programme YAML (e.g. services/calls/data/programmes/jmdi.yaml) or the "
           "id of a shipped programme (jmdi)", required=True, positional=True),)),
    Cmd("programmes update", "calls.update_programme", "Change fields of a programme (via --data, YAML keys)",
        (arg("programme_id", help="programme id"),)),
    Cmd("programmes show", "calls.get_programme", "Show a programme", (arg("programme_id"),)),
    Cmd("programmes list", "calls.list_programmes", "List programmes"),
    Cmd("calls create", "calls.create_call", "Create a call for proposals (draft)",
        (arg("call_id", help="new call id, e.g. JMDI-2008"), opt("programme", "programme_id", required=True),
         opt("title", required=True), opt("deadline", help="ISO date-time with zone", required=True),
         opt("window", "windows", "pairs", "window=allocation (EUR), repeat per window", required=True),
         *CALL_RULES)),
    Cmd("calls amend", "calls.amend_call", "Amend a draft call (only the options given change)",
        (arg("call_id"), opt("title"), opt("deadline"),
         opt("window", "windows", "pairs", "window=allocation (EUR), repeat per window"), *CALL_RULES)),
    Cmd("calls open", "calls.open_call", "Open a call for submissions", (arg("call_id"),)),
    Cmd("calls close", "calls.close_call", "Close a call (no more submissions)", (arg("call_id"),)),
    Cmd("calls show", "calls.get_call", "Show a call", (arg("call_id"),)),
    Cmd("calls list", "calls.list_calls", "List calls", (opt("programme", "programme_id"), opt("status")),
        ("call_id", "programme_id", "title", "status", "deadline")),
    Cmd("proposals submit", "calls.submit_proposal", "Submit one proposal from a JSON/YAML file",
        (P("file", None, "file", "proposal JSON or YAML (the submit_proposal arguments)", True, True),)),
    Cmd("proposals withdraw", "calls.withdraw_proposal", "Withdraw a proposal",
        (arg("proposal_id"), opt("reason"))),
    Cmd("proposals show", "calls.get_proposal", "Show a proposal (by id, or --reference)",
        (P("proposal_id", help="proposal id", positional=True), opt("reference"))),
    Cmd("proposals list", "calls.list_proposals", "List the proposals of a call",
        (CALL, opt("status", help="submitted, withdrawn or excluded"), opt("window"), opt("country"),
         opt("screening", help="unscreened, clear, flagged, cleared or excluded"), LIMIT),
        ("reference", "proposal_id", "window", "target_country", "status", "screening", "ec_amount_requested_eur")),
    Cmd("screening load-exclusions", "calls.load_exclusion_list",
        "Load the exclusion list (CSV: name,registration_number[,reason]) and screen every proposal against it",
        (P("file", "csv", "text", "exclusion list CSV", True, True), opt("source"))),
    Cmd("screening decide", "calls.decide_screening", "Decide on a proposal flagged by exclusion screening",
        (arg("proposal_id"), opt("outcome", help="cleared or excluded", required=True),
         opt("reason", help="required to exclude"))),
    Cmd("assessments declare", "calls.declare_conflicts",
        "Sign your declaration of impartiality (the organisations you have a link with; none is a declaration too)",
        (CALL, opt("organisation", "interests", "list", "an organisation you have a link with (repeat)"))),
    Cmd("assessments assign", "calls.assign_assessors", "Assign assessors to the screened proposals of a call",
        (CALL, STAGE, opt("assessor", "assessors", "list", "assessor user name (repeat; default: every declared)"),
         opt("per-proposal", kind="int"))),
    Cmd("assessments mine", "calls.my_assignments", "The proposals assigned to you",
        (opt("call", "call_id"), STAGE, opt("pending-only", kind="bool", help="only those not scored yet")),
        ("proposal_id", "reference", "stage", "window", "status")),
    Cmd("assessments record", "calls.record_assessment", "Score a proposal assigned to you",
        (arg("proposal_id"), STAGE, opt("score", "scores", "pairs_int", "criterion=points (repeat)", required=True),
         opt("comments"))),
    Cmd("assessments scores", "calls.get_scores", "The scores of a call's proposals", (CALL, opt("window"))),
    Cmd("ranking publish", "calls.publish_ranking", "Rank the evaluated proposals and publish (every window not yet "
        "published, or --window)", (CALL, opt("window"))),
    Cmd("ranking show", "calls.get_ranking", "Show the published ranking of a call", (CALL, opt("window"))),
    # --- grants service --------------------------------------------------------------------------------------
    Cmd("awards award", "grants.award_grant", "Award a grant to a ranked proposal (steering committee)",
        (arg("proposal_id"), opt("amount", "amount_eur", required=True),
         opt("decision-ref", "decision_reference", required=True),
         opt("decision-date", help="ISO date of the committee's decision", required=True))),
    Cmd("awards reject", "grants.reject_proposal", "Reject a proposal (steering committee)",
        (arg("proposal_id"), opt("reason", "reasons", "list", "a reason (repeat)", required=True),
         opt("decision-ref", "decision_reference"))),
    Cmd("awards decline", "grants.decline_grant", "Record that an awardee declined the grant",
        (arg("grant_id"), opt("reason", required=True))),
    Cmd("grants show", "grants.get_grant", "Show a grant: schedule, reports due, payments, closure",
        (arg("grant_id"),)),
    Cmd("grants list", "grants.list_grants", "List grants",
        (opt("programme", "programme_id"), opt("call", "call_id"), opt("window"), opt("country"), opt("status"),
         LIMIT),
        ("grant_id", "reference", "window", "country", "lead_organisation", "status", "amount_eur", "paid_eur")),
    Cmd("grants ledger", "grants.ledger", "The programme ledger: committed and paid per grant",
        (opt("programme", "programme_id"),)),
    Cmd("organisations register", "grants.register_organisation", "Register a grantee organisation and its account",
        (opt("legal-name", required=True), opt("registration-number", required=True),
         opt("country", required=True), opt("iban", required=True), opt("bic"),
         opt("signatory", required=True))),
    Cmd("organisations validate-bank", "grants.validate_bank_account",
        "Confirm an organisation's bank account (not by who registered it)",
        (arg("organisation_id"), opt("iban", help="the IBAN you checked", required=True))),
    Cmd("organisations list", "grants.list_organisations", "List registered organisations",
        (opt("country"), opt("registration-number"), LIMIT),
        ("organisation_id", "legal_name", "country", "registration_number", "account_validated")),
    Cmd("contracts sign", "grants.sign_contract", "Record the signature of a grant contract with the lead",
        (arg("grant_id"), opt("organisation", "organisation_id", required=True),
         opt("start-date", required=True), opt("duration-months", kind="int"),
         opt("annual-budget", "annual_budgets", "list", "EC budget of each 12-month period (repeat)"))),
    Cmd("payments request", "grants.request_payment", "Request a tranche payment (finance officer)",
        (arg("grant_id"), opt("tranche", "tranche_number", "int", required=True),
         opt("amount", "amount_eur", required=True),
         opt("idempotency-key", help="the same key again never pays twice", required=True))),
    Cmd("payments approve", "grants.approve_payment", "Approve and pay a requested payment (finance approver)",
        (arg("payment_id"), opt("value-date", required=True), opt("bank-ref", "bank_reference", required=True))),
    Cmd("payments list", "grants.list_payments", "List payments",
        (opt("grant", "grant_id"), opt("status"), LIMIT),
        ("payment_id", "grant_id", "tranche_number", "amount_eur", "status", "requested_by", "approved_by",
         "value_date")),
    Cmd("reports submit", "grants.submit_report", "Record a grantee's interim or final report",
        (arg("grant_id"), opt("kind", help="interim or final", required=True), opt("number", kind="int"),
         opt("spent", "expenditure", "pairs", "heading=amount spent (repeat)", required=True))),
    Cmd("reports accept", "grants.accept_report", "Accept a grantee's report", (arg("report_id"),)),
    Cmd("reports return", "grants.return_report", "Return a report to the grantee for changes",
        (arg("report_id"), opt("reason", required=True))),
    Cmd("amendments reallocate", "grants.reallocate_budget",
        "Move budget between headings (up to 15% of a heading without an amendment)",
        (arg("grant_id"), opt("budget", "new_budget", "pairs", "heading=new amount (repeat)", required=True),
         opt("reason"))),
    Cmd("amendments amend", "grants.amend_grant", "Amend a grant: budget, duration or amount",
        (arg("grant_id"), opt("kind", help="budget, duration or amount", required=True),
         opt("reason", required=True), opt("budget", "new_budget", "pairs", "heading=new amount (repeat)"),
         opt("duration-months", "new_duration_months", "int"), opt("amount", "new_amount_eur"),
         opt("annual-budget", "new_annual_budgets", "list", "(repeat)"))),
    Cmd("closure close", "grants.close_grant", "Close a grant after its final report", (arg("grant_id"),)),
    # --- notifications -----------------------------------------------------------------------------------------
    Cmd("notifications deliveries", "notifications.list_deliveries", "Messages sent to applicants and staff",
        (opt("recipient"), opt("proposal", "proposal_id"), opt("grant", "grant_id"), opt("status"), LIMIT),
        ("notification_id", "template", "recipient", "language", "status", "attempts", "created_at")),
    Cmd("notifications retry", "notifications.retry_notification", "Retry a failed delivery",
        (arg("notification_id"),)),
    Cmd("notifications send-reminders", "notifications.send_due_reminders", "Send the reminders that are due"),
    # --- reporting (raw operations; `jmdi report ...` wraps the EC reports) -------------------------------------
    Cmd("report totals", "reporting.totals", "Committed and disbursed totals of a programme",
        (opt("programme", "programme_id"),)),
    Cmd("report list", "reporting.list_reports", "EC reports generated so far", (opt("kind"), LIMIT),
        ("report_id", "kind", "period", "as_of", "format", "filename", "generated_at", "generated_by")),
    Cmd("report generate", "reporting.generate_report", "Generate (once) and archive the EC report of a period",
        (opt("kind", help="monthly, quarterly or on_demand", required=True),
         opt("period", help="2010-03, 2010-Q1, or a date for on_demand", required=True))),
)

# operations served by hand-written commands (jmdi/cli.py): files, exit codes, several services at once
SPECIAL = {
    "reporting.budget_report": "report budget", "reporting.export_budget_report": "report budget",
    "reporting.iati_export": "report iati", "reporting.giving360_export": "report 360giving",
    "reporting.reconcile": "report reconcile", "reporting.rebuild_projections": "report rebuild",
    "reporting.get_report": "report show",
    "*.list_dead_letters": "dead-letters list", "*.replay_dead_letter": "dead-letters replay",
    "*.discard_dead_letter": "dead-letters discard", "*.query_audit": "audit", "*.health": "health",
}


def command_for(operation: str) -> str | None:
    """The CLI command that calls an operation (None: the CLI has none)."""
    for cmd in COMMANDS:
        if cmd.operation == operation:
            return f"jmdi {cmd.path}"
    service, name = operation.split(".", 1)
    special = SPECIAL.get(operation) or SPECIAL.get(f"*.{name}")
    return f"jmdi {special}" if special else None
