"""The role matrix: which roles may call which operation of which service. Deny by default.

Keys are "<service>.<operation>". Read-only roles (auditor, ec_reporter) appear only on reads.
"""
PM, ASSESSOR, COMMITTEE = "programme_manager", "assessor", "committee"
FINANCE_OFFICER, FINANCE_APPROVER = "finance_officer", "finance_approver"
AUDITOR, EC_REPORTER, SERVICE = "auditor", "ec_reporter", "service"

STAFF = {PM, ASSESSOR, COMMITTEE, FINANCE_OFFICER, FINANCE_APPROVER}
READERS = STAFF | {AUDITOR, EC_REPORTER}
OPS = {PM}  # dead-letter replay and other operator actions

# operations every service has (kit RPCs)
_KIT = {
    "health": READERS | {SERVICE},
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

allow("calls", {
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
    "publish_ranking": {PM, COMMITTEE},
    "get_ranking": READERS,
})

allow("grants", {
    "award_grant": {COMMITTEE},
    "reject_proposal": {COMMITTEE},
    "decline_grant": {PM},
    "get_grant": READERS,
    "list_grants": READERS,
    "register_organisation": {FINANCE_OFFICER},
    "validate_bank_account": {FINANCE_APPROVER},
    "list_organisations": READERS,
    "sign_contract": {PM},
    "request_payment": {FINANCE_OFFICER},
    "approve_payment": {FINANCE_APPROVER},
    "list_payments": READERS,
    "submit_report": {PM},
    "accept_report": {PM},
    "return_report": {PM},
    "reallocate_budget": {PM},
    "amend_grant": {PM, COMMITTEE},
    "close_grant": {PM},
    "ledger": READERS | {SERVICE},
})

allow("notifications", {
    "list_deliveries": {PM, AUDITOR},
    "retry_notification": OPS,
    "send_due_reminders": OPS,
})

allow("reporting", {
    "budget_report": READERS | {SERVICE},
    "iati_export": READERS,
    "giving360_export": READERS,
    "totals": READERS | {SERVICE},
    "rebuild_projections": OPS,
    "list_reports": READERS | {SERVICE},
    "get_report": READERS | {SERVICE},  # notifications attaches the file to the EC contacts' e-mail
    "generate_report": {PM, EC_REPORTER},
    "reconcile": {PM, AUDITOR, EC_REPORTER},
})


def allowed_roles(service: str, operation: str) -> set[str]:
    return MATRIX.get(f"{service}.{operation}", set())
