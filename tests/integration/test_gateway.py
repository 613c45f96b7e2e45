"""The gateway as any HTTP client meets it, on the real services: every error class as problem+json, the limits
(413 unread, 429 per client, timeouts), persistent connections and their bounds, a service that is away, the OpenAPI
document, `jmdi health`.

This module's system is set up to be provoked: small body limits, a short request timeout, a refusal budget of 5
a minute, connections closed after 2 s idle or 5 requests, and one trusted proxy, so each test is its own client by the X-Forwarded-For it sends. reporting is
never started (a service nobody runs)."""

import http.client
import json
import socket
import time
import urllib.request
from urllib.parse import urlsplit

import jwt
import pytest
from openapi_spec_validator import validate
from typer.testing import CliRunner

from jmdi import failures, transport
from jmdi.cli import app
from services.common.values.errors import InvalidInput
from services.common.values.problems import PROBLEM_JSON
from services.gateway.catalogue import operations
from tests.support import flows, malformed
from tests.support.answers import check_answer
from tests.support.infra import eventually
from tests.support.system import System

pytestmark = pytest.mark.integration

LIMITS = {
    "GATEWAY_MAX_BODY_BYTES": "65536",
    "GATEWAY_MAX_BULK_BODY_BYTES": "1048576",
    "GATEWAY_REQUEST_TIMEOUT_SECONDS": "3",
    "GATEWAY_HEALTH_TIMEOUT_SECONDS": "2",
    "GATEWAY_REFUSALS_PER_MINUTE": "5",
    "GATEWAY_REFUSAL_AUDITS_PER_MINUTE": "1000",
    "GATEWAY_TRUSTED_PROXIES": "1",
    "GATEWAY_IDLE_TIMEOUT_SECONDS": "2",
    "GATEWAY_REQUESTS_PER_CONNECTION": "5",
}


@pytest.fixture(scope="module")
def system():
    with System(services=("calls", "grants", "notifications"), extra_env=LIMITS) as running:
        yield running


class Answer:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        self.body = json.loads(raw) if raw else None

    @property
    def content_type(self):
        return self.headers.get("Content-Type", "").split(";")[0]


def send(
    system,
    method,
    path,
    body=None,
    token=None,
    client="198.51.100.1",
    content_type="application/json",
    headers=None,
    chunked=False,
) -> Answer:
    """One raw HTTP request to the gateway, as `client` (X-Forwarded-For, which the gateway trusts here)."""
    url = urlsplit(system.gateway_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    sent = {"X-Forwarded-For": client, **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        if content_type:
            sent["Content-Type"] = content_type
    try:
        if chunked:
            chunks = [body[i : i + 8192] for i in range(0, len(body), 8192)]
            conn.request(method, path, body=iter(chunks), headers=sent, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())  # headers: case-insensitive
    finally:
        conn.close()


def op(system, operation, body=None, **kwargs) -> Answer:
    """A request to an operation; a 200 answer must be what the document declares for it."""
    service, name = operation.split(".")
    answer = send(system, "POST", f"/api/v1/{service}/{name}", body, **kwargs)
    if answer.status == 200:
        check_answer(operation, answer.body)
    return answer


@pytest.fixture(scope="module")
def pm(system):
    return system.token("maria.pm", ["programme_manager"])


def problem(answer: Answer, status: int, code: str) -> dict:
    assert answer.status == status, (answer.status, answer.body)
    assert answer.content_type == PROBLEM_JSON
    body = answer.body
    assert body["status"] == status and body["code"] == code and body["title"]
    assert body["type"].startswith("tag:jmdi,2026:problem:")
    assert answer.headers.get("X-Correlation-Id")
    return body


# --- every error class -------------------------------------------------------------------------------------------
def test_typed_errors_are_problems_with_their_fields(system, pm):
    invalid = problem(
        op(system, "calls.create_call", {"call_id": "", "windows": "many"}, token=pm), 422, "invalid_input"
    )
    assert {"call_id", "windows", "programme_id", "title", "deadline"} <= set(invalid["errors"])
    missing = problem(op(system, "calls.get_call", {"call_id": "NO-SUCH-CALL"}, token=pm), 404, "not_found")
    assert (missing["entity"], missing["key"]) == ("call", "NO-SUCH-CALL")
    op(system, "calls.load_programme", {"programme": flows.programme("GATE")}, token=pm)
    assert op(system, "calls.create_call", flows.call("GATE-2008", "GATE"), token=pm).status == 200
    assert op(system, "calls.open_call", {"call_id": "GATE-2008"}, token=pm).status == 200
    again = problem(op(system, "calls.open_call", {"call_id": "GATE-2008"}, token=pm), 409, "conflict")
    assert again["rule"].startswith("call.") and isinstance(again["details"], list) and again["detail"]


def test_a_422_lists_the_first_50_fields_and_counts_the_rest(system, pm):
    body = {f"u{n}": 0 for n in range(5000)}  # 50 kB (the body limit here: 64 kB)
    answer = op(system, "calls.create_call", body, token=pm)
    refused = problem(answer, 422, "invalid_input")
    assert list(refused["errors"]) == [f"u{n}" for n in range(50)]
    assert refused["errors_omitted"] == 4950
    assert len(answer.raw) < 10_000
    with pytest.raises(InvalidInput) as back:  # and a client gets the count back
        system.client("maria.pm", ["programme_manager"]).calls.create_call(**body)
    assert back.value.omitted == 4950


def test_who_is_asking_401_and_what_they_may_do_403(system):
    anonymous = problem(op(system, "calls.list_calls", {}, client="198.51.100.2"), 401, "unauthenticated")
    assert "no identity" in anonymous["detail"]
    forged = jwt.encode(
        {"sub": "mallory", "roles": ["programme_manager"], "iss": "jmdi", "exp": 4102444800},
        "not-the-secret-" + "z" * 32,
        algorithm="HS256",
    )
    answer = op(system, "calls.list_calls", {}, token=forged, client="198.51.100.2")
    assert problem(answer, 401, "unauthenticated")["detail"].startswith("invalid token")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    reporter = system.token("ec.reporter", ["ec_reporter"])
    refused = problem(
        op(system, "calls.open_call", {"call_id": "X"}, token=reporter, client="198.51.100.2"), 403, "not_allowed"
    )
    assert refused["detail"] == "ec.reporter (ec_reporter) may not calls.open_call"
    # a service identity is no staff member: the gateway knows no service key
    service = system.service_token("reporting", "grants")
    assert (
        "unknown key id"
        in problem(
            op(system, "grants.ledger", {"programme_id": "GATE"}, token=service, client="198.51.100.2"),
            401,
            "unauthenticated",
        )["detail"]
    )
    # the audit rows tell a proven subject (the role refused) from a claimed one (the token did not verify)
    rows = [
        r
        for r in system.client("olga.auditor", ["auditor"]).gateway.query_audit(outcome="refused")
        if r["detail"].get("client") == "198.51.100.2"
    ]
    assert {(r["user"], r["detail"]["status"], r["detail"]["subject_verified"]) for r in rows} >= {
        ("mallory", 401, False),
        ("ec.reporter", 403, True),
    }


def test_requests_that_are_not_json_objects_are_4xx_problems(system, pm):
    assert problem(op(system, "calls.get_call", b'{"call_id": ', token=pm), 400, "invalid_input")["errors"]["_body"]
    problem(op(system, "calls.get_call", b'{"call_id": NaN}', token=pm), 400, "invalid_input")
    problem(op(system, "calls.get_call", b"\xff\xfe", token=pm), 400, "invalid_input")
    problem(op(system, "calls.get_call", b"[" * 30_000, token=pm), 400, "invalid_input")  # nested past any stack
    for not_an_object in ([{"call_id": "X"}], "X", 42, None):
        problem(op(system, "calls.get_call", json.dumps(not_an_object).encode(), token=pm), 422, "invalid_input")
    problem(
        op(system, "calls.get_call", b"call_id=X", token=pm, content_type="application/x-www-form-urlencoded"),
        415,
        "invalid_input",
    )
    # an empty body is no arguments
    assert op(system, "calls.list_calls", b"", token=pm, content_type=None).status == 200


def test_unknown_paths_and_methods_are_problems(system, pm):
    problem(op(system, "calls.no_such_operation", {}, token=pm), 404, "unknown_operation")
    problem(op(system, "ledger.get_grant", {}, token=pm), 404, "unknown_operation")
    problem(send(system, "GET", "/admin", token=pm), 404, "unknown_operation")
    wrong_method = problem(send(system, "GET", "/api/v1/calls/list_calls", token=pm), 405, "invalid_input")
    assert "POST" in wrong_method["detail"]
    assert send(system, "PUT", "/api/v1/openapi.json").headers["Allow"] == "GET, HEAD"


def test_an_internal_failure_tells_nothing_but_its_correlation_id(system, pm):
    with system.db("calls").begin() as conn:  # the calls service loses a table under its feet
        conn.exec_driver_sql("ALTER TABLE calls RENAME TO calls_away")
    try:
        answer = op(system, "calls.get_call", {"call_id": "GATE-2008"}, token=pm)
    finally:
        with system.db("calls").begin() as conn:
            conn.exec_driver_sql("ALTER TABLE calls_away RENAME TO calls")
    body = problem(answer, 500, "internal_error")
    assert set(body) == {"type", "title", "status", "code", "correlation_id", "instance"}
    assert "calls" not in json.dumps({k: v for k, v in body.items() if k not in ("instance", "correlation_id")})
    assert body["correlation_id"] == answer.headers["X-Correlation-Id"]
    assert body["correlation_id"] in (system.log_dir / "gateway.log").read_text()


# --- limits ------------------------------------------------------------------------------------------------------
def rpc_requests_seen(system, service: str, method: str) -> float:
    with urllib.request.urlopen(system.metrics_url(service), timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("jmdi_rpc_requests_total{") and f'method="{method}"' in line
    )


def test_a_body_too_large_is_refused_unread_and_never_reaches_the_service(system, pm):
    seen = rpc_requests_seen(system, "calls", "submit_proposal")
    huge = {**flows.proposal(1, call_id="GATE-2008"), "summary": "x" * 100_000}
    declared = problem(op(system, "calls.submit_proposal", huge, token=pm, client="198.51.100.3"), 413, "invalid_input")
    assert "65536" in declared["detail"]
    # no Content-Length to go by: the gateway stops reading at the limit
    problem(
        op(system, "calls.submit_proposal", huge, token=pm, client="198.51.100.3", chunked=True), 413, "invalid_input"
    )
    # refused before the token was even looked at
    problem(op(system, "calls.submit_proposal", huge, client="198.51.100.3"), 413, "invalid_input")
    assert rpc_requests_seen(system, "calls", "submit_proposal") == seen
    # a small one goes through, to prove the counter counts
    op(system, "calls.submit_proposal", flows.proposal(2, call_id="GATE-2008"), token=pm)
    assert rpc_requests_seen(system, "calls", "submit_proposal") == seen + 1
    # the exclusion list is a bulk import: its own, larger limit
    rows = "\n".join(f"Organisation {n},REG-{n:06d},listed" for n in range(4000))
    assert len(rows) > 65536
    loaded = op(
        system,
        "calls.load_exclusion_list",
        {"csv": "name,registration_number,reason\n" + rows, "source": "EDES extract"},
        token=pm,
    )
    assert loaded.status == 200, loaded.body


# --- persistent connections --------------------------------------------------------------------------------------
def raw_request(
    path: str, body: bytes = b"", token: str | None = None, client: str = "198.51.100.9", length: int | None = None
) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\nX-Forwarded-For: {client}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body) if length is None else length}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode() + body


def read_answer(stream) -> tuple[int, dict]:
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    stream.read(int(headers.get("content-length", 0)))
    return status, headers


def closed_within(sock, seconds: float) -> float:
    """Seconds until the gateway closed the connection (end of file or reset); fails after `seconds`."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def connect(system) -> socket.socket:
    url = urlsplit(system.gateway_url)
    return socket.create_connection((url.hostname, url.port), timeout=10)


def test_one_connection_carries_requests_up_to_its_cap(system, pm):
    with connect(system) as sock, sock.makefile("rb") as stream:
        for n in range(1, 6):
            sock.sendall(raw_request("/api/v1/calls/list_calls", b"{}", pm))
            status, headers = read_answer(stream)
            assert status == 200
            # the fifth and last says so, and the gateway closes the connection
            assert headers["connection"] == ("close" if n == 5 else "keep-alive")
            assert headers.get("keep-alive") == (None if n == 5 else "timeout=2")
        assert closed_within(sock, 5) < 1


def test_a_body_refused_unread_closes_the_connection_without_reading_the_rest(system, pm):
    with connect(system) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request("/api/v1/calls/list_calls", b"{}", pm))
        assert read_answer(stream)[0] == 200
        # 100,000 bytes announced, 1,000 sent: draining the rest would wait for the client
        sock.sendall(raw_request("/api/v1/calls/submit_proposal", b"x" * 1000, pm, length=100_000))
        status, headers = read_answer(stream)
        assert status == 413 and headers["connection"] == "close"
        assert closed_within(sock, 5) < 1
    with connect(system) as sock, sock.makefile("rb") as stream:  # refused before the body was read: the same
        sock.sendall(raw_request("/api/v1/calls/list_calls", b"{}", "not-a-token", client="198.51.100.10"))
        status, headers = read_answer(stream)
        assert status == 401 and headers["connection"] == "close"
        assert closed_within(sock, 5) < 1


def test_an_idle_connection_is_closed_after_the_idle_timeout(system, pm):
    with connect(system) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request("/api/v1/calls/list_calls", b"{}", pm))
        assert read_answer(stream)[0] == 200
        assert 1.5 < closed_within(sock, 10) < 5
    with connect(system) as sock:  # a client that connects and never sends a request: the same
        assert 1.5 < closed_within(sock, 10) < 5


def test_a_client_trickling_its_request_head_is_closed_like_an_idle_one(system, pm):
    # slowloris: a byte every 0.4 s never leaves a read waiting as long as the idle timeout (2 s) or the socket
    # timeout (30 s), yet the head is never complete
    head = raw_request("/api/v1/calls/list_calls", b"{}", pm)
    with connect(system) as sock:
        sock.settimeout(0.4)
        started = time.monotonic()
        for byte in head[: len(head) // 2]:
            try:
                sock.sendall(bytes([byte]))
                assert sock.recv(1) == b"", "the gateway answered a request it has not received"
                break  # closed
            except TimeoutError:
                continue  # still open
            except (BrokenPipeError, ConnectionResetError):
                break
            finally:
                assert time.monotonic() - started < 6, "the connection is still open, its head still incomplete"
        assert time.monotonic() - started < 4


def test_a_client_trickling_its_body_gets_408_within_the_body_deadline_and_is_closed(system, pm):
    # a valid token, a head sent at once, then a byte every 0.4 s: no read waits as long as the socket timeout
    # (30 s), yet the body (200 bytes: the deadline is the idle timeout, 2 s) is never complete
    body = json.dumps({"status": "x" * 180}).encode()
    with connect(system) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request("/api/v1/calls/list_calls", b"", pm, length=len(body)))
        sock.settimeout(0.4)
        started = time.monotonic()
        answered = False
        for byte in body[:-1]:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1, socket.MSG_PEEK):
                    answered = True
                    break
            except TimeoutError:
                continue  # still reading
            except (BrokenPipeError, ConnectionResetError):
                break
            finally:
                assert time.monotonic() - started < 6, "the body is still being read past its deadline"
        assert answered, "the gateway closed the connection without an answer"
        assert 1.5 < time.monotonic() - started < 4
        sock.settimeout(5)
        status, headers = read_answer(stream)
        assert status == 408 and headers["connection"] == "close"
        assert headers["content-type"].startswith(PROBLEM_JSON)
        assert closed_within(sock, 5) < 1
    # a body sent at once, on a new connection, is read as ever
    with connect(system) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw_request("/api/v1/calls/list_calls", b"{}", pm))
        assert read_answer(stream)[0] == 200


def test_the_client_reuses_its_connection_and_sends_again_after_an_idle_close(system, pm, monkeypatch):
    client = system.client("maria.pm", ["programme_manager"])
    gateway = client.transport
    for _ in range(4):
        client.calls.list_calls()
    assert len(gateway._open) == 1
    first = gateway._local.connection
    # idle past the gateway's timeout, with the client's own checks off: the request is written to a connection
    # the gateway has closed, and sent again on a new one — once, the gateway having answered nothing
    monkeypatch.setattr(transport._Connection, "dropped", lambda self: False)
    time.sleep(2.5)
    seen = rpc_requests_seen(system, "calls", "submit_proposal")
    client.calls.submit_proposal(flows.proposal(3, call_id="GATE-2008"))
    assert gateway._local.connection is not first and len(gateway._open) == 1
    assert rpc_requests_seen(system, "calls", "submit_proposal") == seen + 1
    monkeypatch.undo()
    time.sleep(2.5)  # with them: the closed connection is not written to
    second = gateway._local.connection
    client.calls.list_calls()
    assert gateway._local.connection is not second


def test_connections_beyond_the_cap_wait_until_one_closes():
    # a gateway alone, 3 connections at most, and an idle timeout long enough to hold them through the test
    limits = {"GATEWAY_MAX_CONNECTIONS": "3", "GATEWAY_IDLE_TIMEOUT_SECONDS": "30"}
    document = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: gateway\r\nConnection: keep-alive\r\n\r\n"
    with System(services=(), extra_env=limits) as alone:
        for client in alone.clients:  # the readiness probe's persistent connection
            client.close()
        held = [connect(alone) for _ in range(3)]
        try:
            for sock in held:  # each served, then kept open
                with sock.makefile("rb") as stream:
                    sock.sendall(document)
                    assert read_answer(stream)[0] == 200
            with connect(alone) as fourth, fourth.makefile("rb") as stream:
                fourth.sendall(document)  # connected (the listen backlog) but not served
                fourth.settimeout(3)
                with pytest.raises(TimeoutError):
                    fourth.recv(1, socket.MSG_PEEK)
                held.pop().close()
                fourth.settimeout(5)
                started = time.monotonic()
                assert read_answer(stream)[0] == 200
                assert time.monotonic() - started < 2
        finally:
            for sock in held:
                sock.close()


def test_a_client_refused_too_often_is_throttled_and_its_refusals_audited_boundedly(system, pm):
    auditor = system.client("olga.auditor", ["auditor"])
    before = len(auditor.gateway.query_audit(outcome="refused"))
    mallory = "203.0.113.66"
    for _ in range(6):  # the budget is 5; the sixth refusal tips the client over
        problem(op(system, "grants.approve_payment", {"payment_id": "P-1"}, client=mallory), 401, "unauthenticated")
    throttled = problem(op(system, "calls.list_calls", {}, token=pm, client=mallory), 429, "too_many_refusals")
    assert 1 <= int(throttled["retry_after"]) <= 60 and throttled["retry_after"] == int(
        op(system, "calls.list_calls", {}, token=pm, client=mallory).headers["Retry-After"]
    )
    for _ in range(20):
        assert op(system, "grants.approve_payment", {}, client=mallory).status == 429
    # another client is not affected
    assert op(system, "calls.list_calls", {}, token=pm, client="203.0.113.67").status == 200
    rows = auditor.gateway.query_audit(outcome="refused")[before:]
    from_mallory = [r for r in rows if r["detail"].get("client") == mallory]
    assert len(from_mallory) == 6  # five refusals one by one, then one row saying it is throttled
    assert "client throttled" in from_mallory[-1]["detail"]["reason"]
    assert all(r["detail"]["subject_verified"] is False for r in from_mallory), "no token: nobody proven"


def test_a_service_that_nobody_runs_is_503_at_once(system, pm):
    body = problem(op(system, "reporting.totals", {}, token=pm), 503, "service_unavailable")
    assert "reporting service is not running" in body["detail"]


def test_no_answer_in_time_is_504_and_the_abandoned_request_is_never_run(system, pm):
    system.processes["calls"].stop()
    try:
        late = problem(op(system, "calls.create_call", flows.call("LATE-2008", "GATE"), token=pm), 504, "timeout")
        assert "did not answer within 3 s" in late["detail"]
        health = system.client("ops.pm", ["programme_manager"]).gateway.health()
        assert {h["service"]: h["status"] for h in health} == {
            "gateway": "ok",
            "calls": "timeout",
            "grants": "ok",
            "notifications": "ok",
            "reporting": "service_unavailable",
        }
        result = CliRunner().invoke(
            app,
            ["health"],
            env={
                "JMDI_URL": system.gateway_url,
                "JMDI_ISSUER_KEY": "",
                "JMDI_TOKEN": pm,
                "AMQP_URI": "amqp://nobody@127.0.0.1:1/",
            },
        )
        assert result.exit_code == failures.SYSTEM_FAILURE
        assert "not answering: calls, reporting" in result.stderr
        # the abandoned requests expire in the queue at their deadline, before anything could run them
        eventually(
            lambda: system.broker.queues(system.vhost)["rpc-calls"]["messages"] == 0,
            30,
            0.5,
            "abandoned requests expired",
        )
        # ... into the dead letters as `expired`, and transient: a request was never written to the broker's disk
        abandoned = eventually(
            lambda: [m for m in malformed.dead_letters_peeked(system.amqp_uri) if m[0] == "calls.create_call"],
            30,
            0.5,
            "the abandoned request among the dead letters",
        )
        assert [(reason, mode) for _, reason, mode in abandoned] == [("expired", 1)]
    finally:
        system.start("calls")
        system.wait_ready("calls")
    # the call the abandoned request would have created does not exist
    assert problem(op(system, "calls.get_call", {"call_id": "LATE-2008"}, token=pm), 404, "not_found")
    assert system.scalar("calls", "SELECT count(*) FROM calls WHERE id = 'LATE-2008'") == 0


# --- the document ------------------------------------------------------------------------------------------------
def test_the_openapi_document_is_valid_and_describes_every_operation_from_its_schema(system):
    answer = send(system, "GET", "/api/v1/openapi.json")
    assert answer.status == 200 and answer.content_type == "application/json"
    document = answer.body
    validate(document)  # OpenAPI 3.1
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for each in operations():
        post = document["paths"][f"/api/v1/{each.service}/{each.name}"]["post"]
        assert post["operationId"] == each.key and post["x-roles"] == sorted(each.staff_roles)
        assert post["responses"]["422"] == {"$ref": "#/components/responses/422"}
        assert post["responses"]["405"] == {"$ref": "#/components/responses/405"}
        fields = each.schema.fields
        if fields:
            ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            component = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
            assert set(component["properties"]) == {f.data_key or name for name, f in fields.items()}
            assert set(component.get("required", [])) == {
                f.data_key or name for name, f in fields.items() if f.required
            }
        answer = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer, f"{each.key} answers an empty schema"
    award = document["components"]["schemas"]["grants.AwardGrant"]["properties"]["amount_eur"]
    assert "string" in award["type"] and "number" not in award["type"]  # money is never a float
    assert "405" in document["paths"]["/api/v1/openapi.json"]["get"]["responses"]
    assert "Allow" in document["components"]["responses"]["405"]["headers"]
    problem_doc = document["components"]["responses"]["409"]["content"][PROBLEM_JSON]["schema"]
    assert problem_doc == {"$ref": "#/components/schemas/Problem"}


def test_the_gateway_answers_again_after_the_broker_drops_its_connections(system, pm):
    from urllib.parse import quote

    broker = system.broker
    connections = broker.api("GET", f"vhosts/{quote(system.vhost, safe='')}/connections")
    assert connections

    def reply_queues():
        return {name for name in broker.queues(system.vhost) if name.startswith("rpc.reply-gateway-")}

    before = reply_queues()
    assert len(before) == 1
    for connection in connections:  # every connection of the run: the gateway's and the services'
        broker.api("DELETE", f"connections/{quote(connection['name'], safe='')}")
    answered = eventually(
        lambda: op(system, "calls.get_call", {"call_id": "GATE-2008"}, token=pm).status == 200,
        60,
        0.5,
        "an answer through the gateway after the broker dropped every connection",
    )
    assert answered
    # its replies came to a fresh reply queue (on a cluster the old name's record can outlive a dead node), and
    # the old one went with its connection
    after = reply_queues()
    assert len(after) == 1 and after != before, (before, after)
