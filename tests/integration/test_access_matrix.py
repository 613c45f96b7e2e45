"""Identities and roles on every RPC, against the real services: the whole role matrix, bad tokens, the audit trail."""
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from services.common.auth import ROLES, issue_token
from services.common.errors import JmdiError, NotAllowed
from services.common.roles import MATRIX
from tests.support import flows
from tests.support.system import TEST_SECRET

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def by_role(system):
    """One client per role, each user named after the role (so refusals can be found in the audit trail)."""
    return {role: system.client(f"{role}.user", [role]) for role in ROLES}


def call(client, operation: str, **arguments):
    service, name = operation.split(".", 1)
    return getattr(getattr(client, service), name)(**arguments)


def outcome(client, operation: str):
    """The exception an RPC with empty arguments raises (None when it succeeds)."""
    try:
        call(client, operation)
    except Exception as exc:  # classified by the test
        return exc
    return None


@pytest.mark.parametrize("operation", sorted(MATRIX))
def test_the_role_matrix_is_enforced_before_any_validation(by_role, operation):
    allowed = MATRIX[operation]
    for role in ROLES:
        result = outcome(by_role[role], operation)
        if role in allowed:
            # past authorisation: the input is judged (typically InvalidInput for empty arguments), or it runs
            assert not isinstance(result, NotAllowed), f"{role} may {operation} but was refused: {result}"
            assert result is None or isinstance(result, JmdiError), \
                f"{role} calling {operation} with empty arguments: internal error {result!r}"
        else:
            assert isinstance(result, NotAllowed), f"{role} may not {operation}, got {result!r}"


def _expired_token():
    return issue_token(TEST_SECRET, "late.user", ["programme_manager"],
                       now=datetime.now(timezone.utc) - timedelta(hours=2), ttl=timedelta(hours=1))


BAD_TOKENS = {
    "missing": None,
    "forged": issue_token("not-the-secret-" + "z" * 32, "mallory", ["programme_manager", "finance_approver"]),
    "expired": _expired_token(),
    "malformed": "this.is-not.a-jwt",
    "not a string": 12345,
    "unsigned": jwt.encode({"sub": "mallory", "roles": ["programme_manager"], "iss": "jmdi",
                            "exp": int((datetime.now(timezone.utc) + timedelta(hours=1)).timestamp())},
                           key=None, algorithm="none"),
    "no roles": jwt.encode({"sub": "mallory", "iss": "jmdi",
                            "exp": int((datetime.now(timezone.utc) + timedelta(hours=1)).timestamp())},
                           TEST_SECRET, algorithm="HS256"),
    "another issuer": jwt.encode({"sub": "mallory", "roles": ["programme_manager"], "iss": "elsewhere",
                                  "exp": int((datetime.now(timezone.utc) + timedelta(hours=1)).timestamp())},
                                 TEST_SECRET, algorithm="HS256"),
}
PROBES = ("calls.list_proposals", "grants.get_grant", "notifications.list_deliveries", "reporting.totals",
          "calls.query_audit")


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_a_bad_token_is_refused_everywhere(system, kind):
    client = system.client(None, token=BAD_TOKENS[kind]) if BAD_TOKENS[kind] is not None else system.client(None)
    for operation in PROBES:
        with pytest.raises(NotAllowed):
            call(client, operation)


def test_refusals_are_audited_with_the_claimed_user(system, by_role):
    with pytest.raises(NotAllowed):
        by_role["ec_reporter"].grants.approve_payment(payment_id="P-1")
    with pytest.raises(NotAllowed):
        system.client(None, token=BAD_TOKENS["forged"]).grants.approve_payment(payment_id="P-1")
    refused = by_role["auditor"].grants.query_audit(outcome="refused")
    approvals = [r for r in refused if r["operation"] == "grants.approve_payment"]
    assert {r["user"] for r in approvals} >= {"ec_reporter.user", "mallory"}
    reporter = next(r for r in approvals if r["user"] == "ec_reporter.user")
    assert reporter["roles"] == ["ec_reporter"] and reporter["outcome"] == "refused"
    assert "may not grants.approve_payment" in reporter["detail"]["reason"]
    forged = next(r for r in approvals if r["user"] == "mallory")
    assert "invalid token" in forged["detail"]["reason"]
    # only auditors and programme managers read the trail
    with pytest.raises(NotAllowed):
        by_role["assessor"].grants.query_audit()


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
        ("calls.open_call", "amina.pm", ["programme_manager"], "done")]
    assert trail[1]["detail"]["event_type"] == "call_opened"

    pm.calls.withdraw_proposal(proposal_id=proposal["proposal_id"], reason="the consortium fell apart")
    lifecycle = auditor.calls.query_audit(entity=f"proposal:{proposal['proposal_id']}")
    assert [(r["operation"], r["user"], r["roles"], r["detail"]["event_type"]) for r in lifecycle] == [
        ("calls.submit_proposal", "amina.pm", ["programme_manager"], "proposal_submitted"),
        ("calls.withdraw_proposal", "amina.pm", ["programme_manager"], "proposal_withdrawn")]
    assert lifecycle[0]["detail"]["data"]["reference"] == proposal["reference"]
    assert lifecycle[1]["detail"]["data"]["reason"] == "the consortium fell apart"

    # a change that emits no event is audited explicitly, in the service that made it
    officer = system.client("farid.officer", ["finance_officer"])
    organisation = officer.grants.register_organisation(
        legal_name="Association Migration et Développement", registration_number="MA-2008-001", country="MA",
        iban="BE68539007547034", signatory="Director")
    registered = auditor.grants.query_audit(entity=f"organisation:{organisation['organisation_id']}")
    assert [(r["operation"], r["user"], r["roles"], r["outcome"]) for r in registered] == [
        ("grants.register_organisation", "farid.officer", ["finance_officer"], "done")]
    # the trail can be read per person too
    by_user = auditor.calls.query_audit(user="amina.pm")
    assert {r["operation"] for r in by_user} >= {"calls.load_programme", "calls.create_call", "calls.open_call",
                                                 "calls.submit_proposal"}
