"""Identities and roles on every operation, against the real services: who may do what (an expectation table written
from docs/access.md, independent of the role matrix) through the gateway (the first layer) and straight at the
services (the second, each sufficient), bad tokens, the audit trails."""

import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from services.common.contracts.topology import SERVICES
from services.common.security.auth import ROLES, SERVICE_ISSUER, ServiceSigner, StaffIssuer
from services.common.security.keys import generate_private_key, load_private_key
from services.common.values.errors import JmdiError, NotAllowed, NotFound
from tests.support import flows
from tests.support.infra import eventually
from tests.support.tokens import hmac_signed, now_claims, unsigned

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def by_role(system):
    """One client of the gateway per role, each user named after the role (so refusals can be found in the audit
    trail)."""
    return {role: system.client(f"{role}.user", [role]) for role in ROLES}


@pytest.fixture(scope="module")
def by_role_rpc(system):
    """The same people straight at the services over the broker, as only a service could be."""
    return {role: system.rpc_client(f"{role}.user", [role]) for role in ROLES}


def call(client, operation: str, **arguments):
    service, name = operation.split(".", 1)
    return getattr(getattr(client, service), name)(**arguments)


def outcome(client, operation: str):
    """The exception an operation with empty arguments raises (None when it succeeds)."""
    try:
        call(client, operation)
    except Exception as exc:  # classified by the test
        return exc
    return None


# --- who may do what, in the programme's words (docs/access.md, "Roles and the matrix") ---------------------------
# Written from the roles' descriptions, NOT from services/common/security/roles.py: the running services are tested against
# it, so a wrong grant in the matrix fails here.
PM, ASSESSOR, COMMITTEE = "programme manager", "assessor", "steering committee"
OFFICER, APPROVER = "finance officer", "finance approver (another person)"
AUDITOR, EC = "auditor", "EC reporter"
REPORTING, NOTIFICATIONS = "the reporting service", "the notifications service"  # machine identities
TOKEN_ROLE = {
    PM: "programme_manager",
    ASSESSOR: "assessor",
    COMMITTEE: "committee",
    OFFICER: "finance_officer",
    APPROVER: "finance_approver",
    AUDITOR: "auditor",
    EC: "ec_reporter",
    REPORTING: "service:reporting",
    NOTIFICATIONS: "service:notifications",
}
STAFF = {PM, ASSESSOR, COMMITTEE, OFFICER, APPROVER}
ANY_READER = STAFF | {AUDITOR, EC}  # reading what the programme publishes is open to every person
BANK_DETAILS = {PM, OFFICER, APPROVER, AUDITOR}  # IBANs: those who contract, pay, validate or audit
OPERATORS = {PM}  # dead letters and resends

WHO_MAY = {
    # setting up programmes and calls; entering proposals, screening, assigning assessors: the programme manager
    "calls.load_programme": {PM},
    "calls.update_programme": {PM},
    "calls.create_call": {PM},
    "calls.amend_call": {PM},
    "calls.open_call": {PM},
    "calls.close_call": {PM},
    "calls.submit_proposal": {PM},
    "calls.withdraw_proposal": {PM},
    "calls.load_exclusion_list": {PM},
    "calls.decide_screening": {PM},
    "calls.assign_assessors": {PM},
    # assessors sign their declaration, see their assignments, score them
    "calls.declare_conflicts": {ASSESSOR},
    "calls.my_assignments": {ASSESSOR},
    "calls.record_assessment": {ASSESSOR},
    # scores: those who run or decide the evaluation, and audit (an assessor sees only their own)
    "calls.get_scores": {PM, COMMITTEE, AUDITOR},
    # the steering committee publishes the ranking, awards and rejects
    "calls.publish_ranking": {COMMITTEE},
    "grants.award_grant": {COMMITTEE},
    "grants.reject_proposal": {COMMITTEE},
    # amendments: the programme manager prepares them, the committee decides them
    "grants.amend_grant": {PM, COMMITTEE},
    # ... and an amendment raising the award needs a second of them (four eyes)
    "grants.approve_amendment": {PM, COMMITTEE},
    # contracts, grantees' reports, budget moves within the rules, closure: the programme manager
    "grants.sign_contract": {PM},
    "grants.decline_grant": {PM},
    "grants.submit_report": {PM},
    "grants.accept_report": {PM},
    "grants.return_report": {PM},
    "grants.reallocate_budget": {PM},
    "grants.close_grant": {PM},
    # ending a grant early: a programme manager (the domain refuses the one who signed the contract)
    "grants.terminate_grant": {PM},
    # four eyes on money: the officer registers and requests, another person validates and approves
    "grants.register_organisation": {OFFICER},
    "grants.request_payment": {OFFICER},
    "grants.validate_bank_account": {APPROVER},
    "grants.approve_payment": {APPROVER},
    # a request not yet approved may be cancelled: by the officer who made it, or by an approver
    "grants.cancel_payment": {OFFICER, APPROVER},
    "grants.list_organisations": BANK_DETAILS,
    # exchange rates: finance loads the EC's (or the UN's) published monthly rates; every reader sees them
    "grants.set_rates": {OFFICER, APPROVER},
    "grants.list_rates": ANY_READER,
    # what every reader may see
    "calls.get_programme": ANY_READER,
    "calls.list_programmes": ANY_READER,
    "calls.get_call": ANY_READER,
    "calls.list_calls": ANY_READER,
    "calls.get_proposal": ANY_READER,
    "calls.list_proposals": ANY_READER,
    "calls.get_ranking": ANY_READER,
    "grants.get_grant": ANY_READER,
    "grants.list_grants": ANY_READER,
    "grants.list_payments": ANY_READER,
    "reporting.iati_export": ANY_READER,
    "reporting.giving360_export": ANY_READER,
    "reporting.totals": ANY_READER,
    "reporting.budget_report": ANY_READER,
    "reporting.grant_lines": ANY_READER,
    "reporting.list_reports": ANY_READER,
    # ... and the few reads a service makes of another, as itself: reporting reconciles with the grants ledger,
    # notifications attaches an archived report to the EC contacts' e-mail
    "grants.ledger": ANY_READER | {REPORTING},
    "reporting.get_report": ANY_READER | {NOTIFICATIONS},
    # producing an EC report archives it and mails it to the EC: not for a read-only role
    "reporting.generate_report": {PM},
    # reconciling reads and compares: the auditor, the programme manager, the EC reporter
    "reporting.reconcile": {PM, AUDITOR, EC},
    "reporting.rebuild_projections": OPERATORS,
    # e-mails sent carry applicants' addresses: those who run the programme or audit it
    "notifications.list_deliveries": {PM, AUDITOR},
    "notifications.retry_notification": OPERATORS,
    "notifications.send_due_reminders": OPERATORS,
    # who receives the EC reports (the EC's own contacts): the one who generates them, and the EC reporter
    "notifications.report_recipients": {PM, EC},
}
for _service in ("calls", "grants", "notifications", "reporting"):
    WHO_MAY.update(
        {
            f"{_service}.health": ANY_READER,
            f"{_service}.list_dead_letters": {PM, AUDITOR},
            f"{_service}.replay_dead_letter": OPERATORS,
            f"{_service}.discard_dead_letter": OPERATORS,
            # the audit trail: auditors and programme managers
            f"{_service}.query_audit": {AUDITOR, PM},
        }
    )
# the staff door itself: its health (every service's), the requests it refused
WHO_MAY.update({"gateway.health": ANY_READER, "gateway.query_audit": {AUDITOR, PM}})


def expected(operation: str, door: bool) -> set[str]:
    """The token roles allowed; through the gateway a service identity never comes in."""
    return {TOKEN_ROLE[who] for who in WHO_MAY[operation] if not (door and who in (REPORTING, NOTIFICATIONS))}


def test_the_expectations_cover_every_operation_of_every_service():
    from services.gateway.catalogue import operations

    assert {op.key for op in operations()} | {"gateway.health", "gateway.query_audit"} == set(WHO_MAY)


def check_matrix(clients, operation: str, allowed: set[str]):
    for role in ROLES:
        result = outcome(clients[role], operation)
        if role in allowed:
            # past authorisation: the input is judged (typically InvalidInput for empty arguments), or it runs
            assert not isinstance(result, NotAllowed), f"{role} may {operation} but was refused: {result}"
            assert result is None or isinstance(result, JmdiError), (
                f"{role} calling {operation} with empty arguments: internal error {result!r}"
            )
        else:
            assert isinstance(result, NotAllowed), f"{role} may not {operation}, got {result!r}"


@pytest.mark.parametrize("operation", sorted(WHO_MAY))
def test_the_gateway_lets_each_role_do_what_the_programme_says_and_nothing_else(by_role, operation):
    check_matrix(by_role, operation, expected(operation, door=True))


@pytest.mark.parametrize("operation", sorted(op for op in WHO_MAY if op.split(".")[0] in SERVICES))
def test_each_service_lets_each_role_do_what_the_programme_says_and_nothing_else(by_role_rpc, operation):
    check_matrix(by_role_rpc, operation, expected(operation, door=False))


BAD_TOKENS = (
    "missing",
    "forged",
    "expired",
    "not yet valid",
    "too long-lived",
    "malformed",
    "not a string",
    "unsigned",
    "algorithm confusion",
    "wrong audience",
    "wrong issuer",
    "unknown key id",
    "service token for another service",
    "service key for another service",
)


@pytest.fixture(scope="module")
def bad_tokens(system):
    """Every kind of token the services must refuse, made against this run's real keys."""
    issuer = system.issuer
    staff = now_claims(
        iss=issuer.issuer,
        aud=issuer.audience,
        sub="s-1",
        preferred_username="mallory",
        realm_access={"roles": ["programme_manager", "finance_approver"]},
    )
    public = json.loads(system.keys.issuer_jwks.read_text())["keys"][0]
    reporting = ServiceSigner("reporting", load_private_key(system.keys.service_key("reporting")))
    past, future = datetime.now(timezone.utc) - timedelta(hours=2), datetime.now(timezone.utc) + timedelta(hours=1)
    return {
        "missing": None,
        "forged": StaffIssuer(generate_private_key(), issuer=issuer.issuer).issue("mallory", ["finance_approver"]),
        "expired": issuer.issue("late.user", ["programme_manager"], timedelta(hours=1), now=past),
        "not yet valid": issuer.issue("early.user", ["programme_manager"], timedelta(hours=1), now=future),
        "too long-lived": jwt.encode(
            {**staff, "exp": staff["iat"] + 13 * 3600}, issuer.private_key, "EdDSA", headers={"kid": issuer.kid}
        ),
        "malformed": "this.is-not.a-jwt",
        "not a string": 12345,
        "unsigned": unsigned(issuer.kid, staff),
        "algorithm confusion": hmac_signed(
            {"alg": "HS256", "typ": "JWT", "kid": issuer.kid}, staff, json.dumps(public).encode()
        ),
        "wrong audience": jwt.encode(
            {**staff, "aud": "account"}, issuer.private_key, "EdDSA", headers={"kid": issuer.kid}
        ),
        "wrong issuer": jwt.encode(
            {**staff, "iss": "https://elsewhere/realms/jmdi"}, issuer.private_key, "EdDSA", headers={"kid": issuer.kid}
        ),
        "unknown key id": jwt.encode(staff, issuer.private_key, "EdDSA", headers={"kid": "rotated-away"}),
        # reporting's genuine token for grants, sent elsewhere; and reporting's key speaking for notifications
        "service token for another service": system.service_token("reporting", "grants"),
        "service key for another service": jwt.encode(
            now_claims(timedelta(minutes=5), iss=SERVICE_ISSUER, sub="notifications", aud="reporting"),
            reporting.private_key,
            "EdDSA",
            headers={"kid": reporting.kid},
        ),
    }


PROBES = (
    "calls.list_proposals",
    "grants.get_grant",
    "notifications.list_deliveries",
    "reporting.totals",
    "calls.query_audit",
    "reporting.get_report",
)


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_a_bad_token_is_refused_everywhere(system, bad_tokens, kind):
    token = bad_tokens[kind]
    at_the_door = system.client(None, token=token)
    straight = system.rpc_client(None, token=token)
    for operation in PROBES:
        with pytest.raises(NotAllowed):
            call(at_the_door, operation)
        with pytest.raises(NotAllowed):
            call(straight, operation)


def test_a_service_identity_may_do_what_it_needs_and_nothing_else(system):
    """reporting's own token reads the grants ledger (over the broker: never by the staff door); it is not staff
    and not allowed anything else there."""

    def as_reporting(target):
        return system.service_client("reporting", target)

    assert isinstance(as_reporting("grants").grants.ledger(), dict)
    for operation in ("grants.approve_payment", "grants.list_payments", "grants.query_audit"):
        with pytest.raises(NotAllowed, match="service:reporting .* may not"):
            call(as_reporting("grants"), operation)
    with pytest.raises(NotAllowed, match="wrong audience"):
        as_reporting("grants").reporting.list_reports()


def test_refusals_are_audited_with_the_claimed_user(system, by_role, by_role_rpc, bad_tokens):
    with pytest.raises(NotAllowed):
        by_role["ec_reporter"].grants.approve_payment(payment_id="P-1")
    with pytest.raises(NotAllowed):
        system.client(None, token=bad_tokens["forged"]).grants.approve_payment(payment_id="P-1")
    # refused at the door: in the gateway's trail, and the service never saw them
    refused = by_role["auditor"].gateway.query_audit(outcome="refused")
    approvals = [r for r in refused if r["operation"] == "grants.approve_payment"]
    assert {r["user"] for r in approvals} >= {"ec_reporter.user", "mallory"}
    reporter = next(r for r in approvals if r["user"] == "ec_reporter.user")
    assert reporter["roles"] == ["ec_reporter"] and reporter["outcome"] == "refused"
    assert "may not grants.approve_payment" in reporter["detail"]["reason"]
    assert reporter["detail"]["status"] == 403 and reporter["detail"]["client"] == "127.0.0.1"
    forged = next(r for r in approvals if r["user"] == "mallory")
    assert "invalid token" in forged["detail"]["reason"] and forged["detail"]["status"] == 401
    in_grants = by_role["auditor"].grants.query_audit(outcome="refused")
    assert not [r for r in in_grants if r["operation"] == "grants.approve_payment" and r["user"] == "mallory"]

    # a service refusing by itself (a caller that went round the door) audits in its own trail
    def approvals_refused_by_grants():
        return [
            r
            for r in by_role["auditor"].grants.query_audit(outcome="refused", user="ec_reporter.user")
            if r["operation"] == "grants.approve_payment"
        ]

    before = len(approvals_refused_by_grants())
    with pytest.raises(NotAllowed):
        by_role_rpc["ec_reporter"].grants.approve_payment(payment_id="P-2")
    assert len(approvals_refused_by_grants()) == before + 1
    # `jmdi audit` shows both: only auditors and programme managers read the trails
    with pytest.raises(NotAllowed):
        by_role["assessor"].grants.query_audit()
    with pytest.raises(NotAllowed):
        by_role["assessor"].gateway.query_audit()


def test_every_state_change_leaves_who_what_and_which_event(system):
    pm = system.client("amina.pm", ["programme_manager"])
    auditor = system.client("olga.auditor", ["auditor"])
    pm.calls.load_programme(programme=flows.programme("AUDITED"))
    pm.calls.create_call(**flows.call("AUDIT-2008", "AUDITED"))
    pm.calls.open_call(call_id="AUDIT-2008")
    proposal = pm.calls.submit_proposal(**flows.proposal(1, call_id="AUDIT-2008"))

    trail = auditor.calls.query_audit(entity="call:AUDIT-2008")
    assert [(r["operation"], r["user"], r["roles"], r["outcome"]) for r in trail] == [
        ("calls.create_call", "amina.pm", ["programme_manager"], "done"),
        ("calls.open_call", "amina.pm", ["programme_manager"], "done"),
    ]
    assert trail[1]["detail"]["event_type"] == "call_opened"

    pm.calls.withdraw_proposal(proposal_id=proposal["proposal_id"], reason="the consortium fell apart")
    lifecycle = auditor.calls.query_audit(entity=f"proposal:{proposal['proposal_id']}")
    assert [(r["operation"], r["user"], r["roles"], r["detail"]["event_type"]) for r in lifecycle] == [
        ("calls.submit_proposal", "amina.pm", ["programme_manager"], "proposal_submitted"),
        ("calls.withdraw_proposal", "amina.pm", ["programme_manager"], "proposal_withdrawn"),
    ]
    assert lifecycle[0]["detail"]["data"]["reference"] == proposal["reference"]
    assert lifecycle[1]["detail"]["data"]["reason"] == "the consortium fell apart"

    # a change that emits no event is audited explicitly, in the service that made it
    officer = system.client("farid.officer", ["finance_officer"])
    organisation = officer.grants.register_organisation(
        legal_name="Association Migration et Développement",
        registration_number="MA-2008-001",
        country="MA",
        iban="BE68539007547034",
        signatory="Director",
    )
    registered = auditor.grants.query_audit(entity=f"organisation:{organisation['organisation_id']}")
    assert [(r["operation"], r["user"], r["roles"], r["outcome"]) for r in registered] == [
        ("grants.register_organisation", "farid.officer", ["finance_officer"], "done")
    ]
    # the trail can be read per person too
    by_user = auditor.calls.query_audit(user="amina.pm")
    assert {r["operation"] for r in by_user} >= {
        "calls.load_programme",
        "calls.create_call",
        "calls.open_call",
        "calls.submit_proposal",
    }


# --- what each role sees of personal and bank data (docs/access.md, "Least privilege on data") --------------------
# Full IBANs: those who pay, validate accounts or audit; applicants' e-mail addresses: those who write to them.
SEES_FULL_IBANS = {OFFICER, APPROVER, AUDITOR}
SEES_ADDRESSES = {PM}


def test_each_role_sees_ibans_and_applicants_addresses_only_when_its_work_needs_them(system, by_role):
    pm = by_role["programme_manager"]
    pm.calls.load_programme(programme=flows.programme("PRIVATE"))
    pm.calls.create_call(**flows.call("PRIVATE-2008", "PRIVATE"))
    pm.calls.open_call(call_id="PRIVATE-2008")
    proposal = pm.calls.submit_proposal(**flows.proposal(3, call_id="PRIVATE-2008"))
    addresses = [a["email"] for a in flows.proposal(3, call_id="PRIVATE-2008")["applicants"]]
    account = flows.iban(140014)
    organisation = by_role["finance_officer"].grants.register_organisation(
        legal_name="Association des Jeunes d'Oujda",
        registration_number="MA-PRIV-014",
        country="MA",
        iban=account,
        signatory="Director",
    )
    masked_account = f"{account[:4]} **** **** {account[-4:]}"
    for who, role in TOKEN_ROLE.items():
        if role.startswith("service:"):
            continue
        client = by_role[role]
        if who in WHO_MAY["grants.list_organisations"]:
            seen = {o["organisation_id"]: o["iban"] for o in client.grants.list_organisations(limit=10000)}
            assert seen[organisation["organisation_id"]] == (account if who in SEES_FULL_IBANS else masked_account), who
        if who == ASSESSOR:  # an assessor sees only the proposals assigned to them: none here
            assert client.calls.list_proposals(call_id="PRIVATE-2008") == []
            with pytest.raises(NotFound):
                client.calls.get_proposal(proposal_id=proposal["proposal_id"])
            continue
        full = client.calls.get_proposal(proposal_id=proposal["proposal_id"])
        emails = [a["email"] for a in full["proposal"]["applicants"]]
        if who in SEES_ADDRESSES:
            assert emails == addresses, who
        else:
            assert emails == [f"{e[0]}***@{e.split('@')[1]}" for e in addresses], who
        assert [p["proposal_id"] for p in client.calls.list_proposals(call_id="PRIVATE-2008")] == [
            proposal["proposal_id"]
        ], who


def test_no_e_mail_address_or_iban_reaches_the_service_logs(system, by_role):
    """A flow that mails applicants and registers and validates a bank account, then every service's log (and the
    gateway's), read as an operator reads them: no address, no IBAN in clear."""
    pm = by_role["programme_manager"]
    pm.calls.load_programme(programme=flows.programme("LOGGED"))
    pm.calls.create_call(**flows.call("LOGGED-2008", "LOGGED"))
    pm.calls.open_call(call_id="LOGGED-2008")
    proposal = pm.calls.submit_proposal(**flows.proposal(5, call_id="LOGGED-2008"))
    addresses = [a["email"] for a in flows.proposal(5, call_id="LOGGED-2008")["applicants"]]
    account = flows.iban(150015)
    organisation = by_role["finance_officer"].grants.register_organisation(
        legal_name="Collectif Diaspora Solidaire",
        registration_number="MA-LOG-015",
        country="MA",
        iban=account,
        signatory="Director",
    )
    by_role["finance_approver"].grants.validate_bank_account(
        organisation_id=organisation["organisation_id"], iban=account
    )
    sent = eventually(
        lambda: (lambda d: d if d and all(n["status"] == "sent" for n in d) else None)(
            pm.notifications.list_deliveries(proposal_id=proposal["proposal_id"])
        ),
        60,
        0.3,
        "applicants mailed",
    )
    assert {n["recipient"] for n in sent} <= set(addresses) and sent
    logs = {path.name: path.read_text(errors="replace") for path in system.log_dir.glob("*.log")}
    assert {"calls.log", "grants.log", "notifications.log"} <= set(logs)
    assert "***@example.org" in logs["notifications.log"]  # the delivery is logged, masked
    for name, text in logs.items():
        for secret in (*addresses, account):
            assert secret not in text, f"{secret} in {name}"
