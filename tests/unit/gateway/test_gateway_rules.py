"""The gateway's rules without a running system: budgets, who the client is, problems and back, the bounded audit
of refusals, and the HTTP client's failures."""

import json
import socket
import threading
import warnings

import pytest
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

from jmdi.transport import Gateway, GatewayUnreachable  # noqa: E402
from services.common.storage.db import DatabaseCore  # noqa: E402
from services.common.values.errors import Conflict, InvalidInput, NotAllowed, NotFound, SetupProblem  # noqa: E402
from services.common.values.problems import (  # noqa: E402
    BadRequest,
    NoAnswer,
    RequestTimeout,
    ServiceUnavailable,
    SystemFailure,
    TooManyRefusals,
    Unauthenticated,
    UnknownOperation,
    error_from_problem,
    problem_of,
)
from services.common.storage.tables import audit_log  # noqa: E402
from services.gateway.limits import Budget, Limits, client_of  # noqa: E402
from services.gateway.repository import RefusalAudit  # noqa: E402
from services.gateway.views import PROBLEM  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- budgets ------------------------------------------------------------------------------------------------------
def test_a_budget_refuses_past_its_limit_until_the_window_is_over():
    clock = Clock()
    budget = Budget(3, window=60, clock=clock)
    assert [budget.spend("a") for _ in range(3)] == [1, 2, 3]
    assert budget.exhausted("a") is None
    assert budget.spend("a") == 4
    assert budget.exhausted("a") == 60 and budget.exhausted("b") is None
    clock.now += 45.5
    assert budget.exhausted("a") == 15
    clock.now += 15
    assert budget.exhausted("a") is None and budget.spend("a") == 1


def test_a_budget_remembers_a_bounded_number_of_clients():
    budget = Budget(1, max_keys=100, clock=Clock())
    for n in range(1000):
        budget.spend(f"10.0.{n // 256}.{n % 256}")
        budget.spend(f"10.0.{n // 256}.{n % 256}")
    assert len(budget._used) == 100
    assert budget.exhausted("10.0.3.231") is not None  # the most recent are remembered


def request(headers=None, remote="192.0.2.10"):
    return Request(EnvironBuilder(headers=headers or {}, environ_base={"REMOTE_ADDR": remote}).get_environ())


def test_the_client_is_the_peer_unless_a_trusted_proxy_says_otherwise():
    forwarded = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}  # the client wrote the first, the Ingress the last
    assert client_of(request(forwarded), trusted_proxies=0) == "192.0.2.10"
    assert client_of(request(forwarded), trusted_proxies=1) == "203.0.113.9"
    assert client_of(request(forwarded), trusted_proxies=2) == "6.6.6.6"
    assert client_of(request({"X-Forwarded-For": "203.0.113.9"}), trusted_proxies=2) == "192.0.2.10"
    assert client_of(request(), trusted_proxies=1) == "192.0.2.10"


# --- problems -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error,status",
    [
        (InvalidInput({"amount_eur": ["Not a valid number."], "applicants": {"0": {"email": ["bad"]}}}), 422),
        (InvalidInput({f"k{n}": ["Unknown field."] for n in range(60)}), 422),
        (NotFound("grant", "G-1"), 404),
        (Conflict("award.window_allocation_exceeded", "over the window", [{"rule": "x", "available": "1.00"}]), 409),
        (Unauthenticated("token expired"), 401),
        (NotAllowed("ec.reporter (ec_reporter) may not calls.open_call"), 403),
        (TooManyRefusals("too many refused requests", 17), 429),
        (BadRequest({"_body": ["is larger than the limit of 10 bytes"]}, "too large", 413), 413),
        (UnknownOperation("/api/v1/calls/nothing"), 404),
        (RequestTimeout("the request body did not arrive within 2 s (7 bytes received)"), 408),
        (ServiceUnavailable("the grants service is not running"), 503),
        (NoAnswer("the grants service did not answer within 60 s"), 504),
    ],
)
def test_each_error_is_a_problem_and_comes_back_as_itself(error, status):
    got, body, headers = problem_of(error, "gateway.forward.c1")
    assert got == status and body["status"] == status and body["code"]
    back = error_from_problem(got, body)
    assert type(back) is type(error)
    assert str(back) == str(error)
    for field in ("errors", "omitted", "entity", "key", "rule", "details", "retry_after"):
        assert getattr(back, field, None) == getattr(error, field, None)
    if status == 429:
        assert headers == {"Retry-After": "17"}
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "error",
    [
        InvalidInput({"amount_eur": ["Not a valid number."]}),
        InvalidInput({f"k{n}": ["Unknown field."] for n in range(60)}),
        NotFound("grant", "G-1"),
        Conflict("award.window_allocation_exceeded", "over the window", [{"rule": "x"}]),
        Unauthenticated("token expired"),
        NotAllowed("may not"),
        TooManyRefusals("too many refused requests", 17),
        BadRequest({"_body": ["not JSON"]}, "not JSON"),
        UnknownOperation("/api/v1/calls/nothing"),
        RequestTimeout("the request body did not arrive within 2 s"),
        SetupProblem("the IATI schema is missing under STANDARDS_DIR", "install it"),
        ServiceUnavailable("the grants service is not running"),
        NoAnswer("no answer"),
        ZeroDivisionError("internal"),
    ],
)
def test_each_problem_is_what_the_openapi_document_describes(error):
    # a staff tool validating answers against the document must accept every problem the gateway sends
    _, body, _ = problem_of(error, "gateway.forward.c3")
    assert body["code"] in PROBLEM["properties"]["code"]["enum"]
    assert set(body) <= set(PROBLEM["properties"]), set(body) - set(PROBLEM["properties"])


def test_an_invalid_input_reports_its_first_50_fields_and_counts_the_rest():
    errors = {"a": ["bad"], "nested": {str(n): {"email": ["bad"]} for n in range(60)}, "z": ["bad"]}
    error = InvalidInput(errors)
    assert error.errors["a"] == ["bad"] and "z" not in error.errors
    assert len(error.errors["nested"]) == 49 and error.omitted == 12  # 10 nested and "z"
    assert error.message.endswith("; and 12 more fields")
    status, body, _ = problem_of(error, "c")
    assert body["errors_omitted"] == 12 and len(json.dumps(body)) < 5000
    assert "errors_omitted" not in problem_of(InvalidInput({"a": ["bad"]}), "c")[1]


def test_a_body_has_the_idle_timeout_or_longer_at_the_least_rate_to_arrive():
    limits = Limits.from_config({"IDLE_TIMEOUT_SECONDS": "15"})
    assert limits.body_deadline(200, 1 << 20) == 15  # a small body: the idle timeout
    assert limits.body_deadline(1_000_000, 1 << 20) == 100  # 1 MB at 10 kB/s
    assert limits.body_deadline(None, 1 << 20) == (1 << 20) / 10_000  # chunked: as large as the limit
    assert limits.body_deadline(50 << 20, 1 << 20) == (1 << 20) / 10_000  # never more than the limit's time


def test_an_internal_failure_reveals_only_its_correlation_id():
    status, body, _ = problem_of(ZeroDivisionError("secret table name in here"), "gateway.forward.c2")
    assert status == 500
    assert set(body) == {"type", "title", "status", "code", "correlation_id"}
    assert "secret" not in str(body)
    back = error_from_problem(500, body)
    assert type(back) is SystemFailure and back.correlation_id == "gateway.forward.c2"


def test_what_is_not_a_problem_is_still_told_apart():
    assert isinstance(error_from_problem(502, None), SystemFailure)  # a proxy's HTML page
    assert isinstance(error_from_problem(400, {"title": "Bad Request"}), InvalidInput)
    assert isinstance(error_from_problem(413, None), InvalidInput)


# --- the bounded audit of refusals ----------------------------------------------------------------------------------
@pytest.fixture
def core(tmp_path):
    core = DatabaseCore(f"sqlite:///{tmp_path / 'gateway.db'}", "gateway")
    audit_log.create(core.engine)
    yield core
    core.dispose()


def rows(core):
    with core.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]


def test_refusals_past_the_minutes_budget_are_counted_then_summarised(core):
    clock = Clock()
    audit = RefusalAudit(core, rows_per_minute=3, clock=clock)
    for n in range(10):
        audit.record("grants.approve_payment", "invalid token", None, f"10.0.0.{n}", None, 401)
    assert len(rows(core)) == 3
    clock.now += 61
    audit.record("calls.open_call", "may not", None, "10.0.0.99", None, 403)
    written = rows(core)
    assert len(written) == 5
    summary = written[3]
    assert summary["operation"] == "gateway.door" and summary["detail"]["suppressed"] == 7
    assert written[4]["operation"] == "calls.open_call" and written[4]["detail"]["client"] == "10.0.0.99"
    with core.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() == 5


def test_refusal_rows_say_whether_their_subject_was_verified(core):
    import jwt
    from services.common.security.auth import Identity

    forged = jwt.encode(
        {"preferred_username": "maria.pm", "realm_access": {"roles": ["finance_approver"]}},
        "not-the-issuer-key-" + "k" * 32,
        algorithm="HS256",
    )
    audit = RefusalAudit(core, rows_per_minute=10)
    audit.record("grants.approve_payment", "invalid token: bad signature", forged, "10.0.0.1", None, 401)
    verified = Identity(user="ec.reporter", roles=("ec_reporter",), expires_at=None)
    audit.record("grants.approve_payment", "ec_reporter may not", forged, "10.0.0.2", None, 403, verified)
    unverified_row, verified_row = rows(core)
    assert unverified_row["user"] == "maria.pm" and unverified_row["detail"]["subject_verified"] is False
    assert unverified_row["detail"]["claimed_user"] == "maria.pm"
    assert verified_row["user"] == "ec.reporter" and verified_row["roles"] == ["ec_reporter"]
    assert verified_row["detail"]["subject_verified"] is True


def test_a_forged_tokens_escape_sequences_never_reach_the_audit_trail(core):
    import jwt

    forged = jwt.encode(
        {
            "preferred_username": "\x1b[2J\x1b]0;owned\x07claire\nfinance",
            "realm_access": {"roles": ["auditor\x1b[31m"]},
        },
        "not-the-issuer-key-" + "k" * 32,
        algorithm="HS256",
    )
    audit = RefusalAudit(core, rows_per_minute=10)
    audit.record("grants.list_payments", "invalid token: bad signature", forged, "10.0.0.1", None, 401)
    (row,) = rows(core)
    # what `jmdi audit` prints to an auditor's terminal: the claim as text, no escape sequence, one line
    assert row["user"] == row["detail"]["claimed_user"] == "[2J]0;ownedclaire finance"
    assert row["roles"] == ["auditor[31m"]


# --- the HTTP client ------------------------------------------------------------------------------------------------
def test_the_client_says_which_gateway_does_not_answer():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(GatewayUnreachable, match=f"the gateway at http://127.0.0.1:{port} does not answer"):
        Gateway(f"http://127.0.0.1:{port}", timeout=5).call("calls", "list_calls", {}, "token")


def test_the_client_gives_up_on_a_gateway_that_accepts_but_never_answers():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held = []
    thread = threading.Thread(target=lambda: held.append(server.accept()), daemon=True)
    thread.start()
    try:
        with pytest.raises(NoAnswer, match="did not answer within 0.3 s"):
            Gateway(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.3).call("calls", "list_calls")
    finally:
        for conn, _ in held:
            conn.close()
        server.close()
