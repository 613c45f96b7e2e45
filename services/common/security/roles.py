"""The role matrix: which roles may call which operation of which service. Deny by default.

Keys are "<service>.<operation>". Read-only roles (auditor, ec_reporter) appear only on reads. A service calling
another holds the one role `service:<name>`, granted only the operations SERVICE_CALLS lists for it (the broker
definitions let it publish exactly those RPC routing keys too).
"""

PM, ASSESSOR, COMMITTEE = "programme_manager", "assessor", "committee"
FINANCE_OFFICER, FINANCE_APPROVER = "finance_officer", "finance_approver"
AUDITOR, EC_REPORTER = "auditor", "ec_reporter"
STAFF_ROLES = (PM, ASSESSOR, COMMITTEE, FINANCE_OFFICER, FINANCE_APPROVER, AUDITOR, EC_REPORTER)

# which operations of other services each service calls, as itself
SERVICE_CALLS = {
    "reporting": ("grants.ledger",),  # reconciliation with the grants ledger
    "notifications": ("reporting.get_report",),  # the report file attached to the EC contacts' e-mail
}


def service_role(service: str) -> str:
    return f"service:{service}"


STAFF = {PM, ASSESSOR, COMMITTEE, FINANCE_OFFICER, FINANCE_APPROVER}
READERS = STAFF | {AUDITOR, EC_REPORTER}
OPS = {PM}  # dead-letter replay and other operator actions

# least privilege on data (services/common/security/privacy.py masks the rest in every operation's result)
FULL_BANK_DETAILS = {FINANCE_OFFICER, FINANCE_APPROVER, AUDITOR}  # full IBANs: who pays, validates accounts, audits
CONTACT_DETAILS = {PM}  # applicants' e-mail addresses: who writes to them


def assessor_only(roles) -> bool:
    """An assessor with no other reading role sees only the proposals assigned to them (calls service)."""
    held = set(roles or ())
    return ASSESSOR in held and not held & (READERS - {ASSESSOR})


# operations every service has (kit RPCs)
_KIT = {
    "health": READERS,
    "list_dead_letters": {PM, AUDITOR},
    "replay_dead_letter": OPS,
    "discard_dead_letter": OPS,
    "query_audit": {AUDITOR, PM},
}

MATRIX: dict[str, set[str]] = {}


def allow(service: str, operations: dict[str, set[str]]):
    for operation, roles in operations.items():
        MATRIX[f"{service}.{operation}"] = set(roles)


for _service in ("calls", "grants", "notifications", "reporting"):
    allow(_service, _KIT)

allow(
    "calls",
    {
        "load_programme": {PM},
        "update_programme": {PM},
        "get_programme": READERS,
        "list_programmes": READERS,
        "create_call": {PM},
        "amend_call": {PM},
        "open_call": {PM},
        "close_call": {PM},
        "get_call": READERS,
        "list_calls": READERS,
        "submit_proposal": {PM},
        "withdraw_proposal": {PM},
        "get_proposal": READERS,
        "list_proposals": READERS,
        "load_exclusion_list": {PM},
        "decide_screening": {PM},
        "declare_conflicts": {ASSESSOR},
        "assign_assessors": {PM},
        "my_assignments": {ASSESSOR},
        "record_assessment": {ASSESSOR},
        "get_scores": {PM, COMMITTEE, AUDITOR},
        "publish_ranking": {COMMITTEE},  # the steering committee's decision
        "get_ranking": READERS,
    },
)

allow(
    "grants",
    {
        "award_grant": {COMMITTEE},
        "reject_proposal": {COMMITTEE},
        "decline_grant": {PM},
        "get_grant": READERS,
        "list_grants": READERS,
        "register_organisation": {FINANCE_OFFICER},
        "validate_bank_account": {FINANCE_APPROVER},
        "list_organisations": {
            PM,
            FINANCE_OFFICER,
            FINANCE_APPROVER,
            AUDITOR,
        },  # bank details: who contracts, pays, audits
        "sign_contract": {PM},
        "request_payment": {FINANCE_OFFICER},
        "approve_payment": {FINANCE_APPROVER},
        "cancel_payment": {FINANCE_OFFICER, FINANCE_APPROVER},  # the domain: only its requester or an approver
        "list_payments": READERS,
        "submit_report": {PM},
        "accept_report": {PM},
        "return_report": {PM},
        "reallocate_budget": {PM},
        "amend_grant": {PM, COMMITTEE},
        "terminate_grant": {PM},  # the domain: not the programme manager who signed the contract (four eyes)
        "approve_amendment": {PM, COMMITTEE},  # raising an award: a second person (four eyes), never its proposer
        "close_grant": {PM},
        "ledger": READERS,
        "set_rates": {FINANCE_OFFICER, FINANCE_APPROVER},  # the EC's (or the UN's) published monthly rates
        "list_rates": READERS,
    },
)

allow(
    "notifications",
    {
        "list_deliveries": {PM, AUDITOR},
        "retry_notification": OPS,
        "send_due_reminders": OPS,
        "report_recipients": {PM, EC_REPORTER},  # `jmdi report generate` tells who received the report
    },
)

allow(
    "reporting",
    {
        "budget_report": READERS,
        "grant_lines": READERS,
        "iati_export": READERS,
        "giving360_export": READERS,
        "totals": READERS,
        "rebuild_projections": OPS,
        "list_reports": READERS,
        "get_report": READERS,
        "generate_report": {PM},  # archives the report and mails it to the EC: not for a read-only role
        "reconcile": {PM, AUDITOR, EC_REPORTER},
    },
)

for _caller, _operations in SERVICE_CALLS.items():
    for _operation in _operations:
        MATRIX[_operation].add(service_role(_caller))


allow(
    "gateway",
    {
        "health": READERS,  # every service's health, asked in parallel with a timeout each
        "query_audit": {AUDITOR, PM},  # the requests the gateway refused
    },
)


def allowed_roles(service: str, operation: str) -> set[str]:
    return MATRIX.get(f"{service}.{operation}", set())


def authorise(identity, service: str, operation: str, roles: set[str] | None = None):
    """Raise NotAllowed unless one of the identity's roles may call the operation (deny by default)."""
    from ..values.errors import NotAllowed

    allowed = allowed_roles(service, operation) if roles is None else roles
    if not set(identity.roles) & allowed:
        raise NotAllowed(f"{identity.user} ({', '.join(identity.roles)}) may not {service}.{operation}")
