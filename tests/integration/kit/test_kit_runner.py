"""Starting and stopping services: the runner (one service) and the supervisor (`make run`), as real processes."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from services.common.contracts.topology import SERVICES
from services.common.launch.runner import NO_BROKER_HINT, broker_problem, redact, service_class
from services.common.security.keys import KeyDirectory
from services.common.security.roles import SERVICE_CALLS
from tests.support.infra import REPO, eventually, free_port
from tests.support.prometheus import answers, firing, panel_queries, running_prometheus

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def amqp_uri(vhost):
    return vhost


def service_env(tmp_path, amqp_uri: str, **extra) -> dict:
    """Each service on SQLite in tmp_path; no public keys set: the supervisor's local mode makes them."""
    env = {
        **os.environ,
        "AMQP_URI": amqp_uri,
        "JMDI_SECRET": "runner-test-" + "s" * 32,
        "PYTHONUNBUFFERED": "1",
        "MAIL_FOLDER": str(tmp_path / "mail"),
        "MAX_WORKERS": "2",
        "JMDI_LOCAL_MODE": "true",
    }  # the test broker's guest login
    for service in SERVICES:
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite:///{tmp_path / (service + '.db')}"
        env[f"{service.upper()}_METRICS_PORT"] = str(free_port())
    return {**env, **extra}


def with_keys(env: dict, tmp_path, service: str) -> dict:
    """What a single service started by the runner needs besides: the issuer's and services' public keys and, if
    it calls others, its own private key (as compose and Kubernetes mount them)."""
    keys = KeyDirectory(tmp_path / "keys")
    keys.ensure(SERVICE_CALLS, issuer=True)
    own = {"JMDI_SERVICE_KEY": str(keys.service_key(service))} if service in SERVICE_CALLS else {}
    return {**env, "JMDI_JWKS": str(keys.issuer_jwks), "JMDI_SERVICE_JWKS": str(keys.services_jwks), **own}


def start(args, env, log):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def end(proc):
    """Whatever happened in the test, the supervisor (and through it its children) is stopped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(proc, text: str, log_path, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log_path.read_text(errors="replace"):
            return
        assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not logged in {timeout}s:\n{log_path.read_text(errors='replace')[-3000:]}")


def test_passwords_never_reach_a_log_line():
    assert redact("amqp://jmdi-calls:s3cret@rabbit:5672/jmdi") == "amqp://jmdi-calls:***@rabbit:5672/jmdi"
    assert redact("sqlite:///var/calls.db") == "sqlite:///var/calls.db"
    several = "amqp://u:p1@a:5672/v;amqp://u:p2@b:5673/v"  # a failover list: every node's password hidden
    assert redact(several) == "amqp://u:***@a:5672/v;amqp://u:***@b:5673/v"


def test_the_broker_is_reachable_or_the_reason_is_given(amqp_uri):
    assert broker_problem(amqp_uri) is None
    problem = broker_problem(f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    assert problem.kind == "unreachable" and NO_BROKER_HINT in str(problem)


def test_each_service_name_finds_its_service_class():
    for service in SERVICES:
        assert service_class(service).name == service
    with pytest.raises(ModuleNotFoundError):
        service_class("payroll")


def test_migrate_only_creates_the_services_tables_and_exits(tmp_path, amqp_uri):
    env = with_keys(service_env(tmp_path, amqp_uri), tmp_path, "grants")
    done = subprocess.run(
        [sys.executable, "-m", "services.common.launch.runner", "grants", "--migrate-only"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "grants.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"grants", "payments", "outbox", "inbox", "dead_letters", "leases", "audit_log"} <= tables


def test_without_a_broker_the_runner_and_the_supervisor_say_how_to_get_one(tmp_path):
    env = service_env(tmp_path, f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    runner = subprocess.run(
        [sys.executable, "-m", "services.common.launch.runner", "calls", "--no-migrate", "--broker-wait", "0"],
        cwd=REPO,
        env=with_keys(env, tmp_path, "calls"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert runner.returncode == 2 and NO_BROKER_HINT in runner.stderr and "guest:***@" in runner.stderr
    supervisor = subprocess.run(
        [sys.executable, "-m", "services.common.launch.supervisor"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert supervisor.returncode == 2 and NO_BROKER_HINT in supervisor.stderr


def test_a_running_service_stops_cleanly_on_sigterm(tmp_path, amqp_uri):
    log_path = tmp_path / "calls.log"
    with open(log_path, "wb") as log:
        proc = start(
            ["services.common.launch.runner", "calls"],
            with_keys(service_env(tmp_path, amqp_uri), tmp_path, "calls"),
            log,
        )
    try:
        wait_for(proc, "calls started", log_path)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        end(proc)
    assert "calls stopping" in log_path.read_text()


def test_the_supervisor_runs_the_four_services_and_stops_them_all(tmp_path, amqp_uri):
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "wb") as log:
        proc = start(["services.common.launch.supervisor"], service_env(tmp_path, amqp_uri), log)
    try:
        for service in SERVICES:
            wait_for(proc, f"{service} started", log_path, timeout=180)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
    finally:
        end(proc)
    text = log_path.read_text()
    assert all(f"{service} stopping" in text for service in SERVICES)


def start_with_grants_crashing(tmp_path, amqp_uri):
    """The supervisor with grants unable to open its database (a folder that does not exist): grants exits again
    and again; returns the supervisor, its /metrics port and its log."""
    port = free_port()
    env = service_env(
        tmp_path,
        amqp_uri,
        GRANTS_DATABASE_URL=f"sqlite:///{tmp_path / 'missing' / 'grants.db'}",
        SUPERVISOR_METRICS_PORT=str(port),
    )
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "wb") as log:
        return start(["services.common.launch.supervisor"], env, log), port, log_path


def test_the_supervisor_restarts_a_crashing_service_with_backoff_and_keeps_the_others(tmp_path, amqp_uri):
    # the supervisor restarts grants after 1 s, 2 s, 4 s ..., says so, counts it on its /metrics, and the others
    # keep serving
    proc, port, log_path = start_with_grants_crashing(tmp_path, amqp_uri)
    try:
        wait_for(proc, "LOCAL MODE", log_path)
        wait_for(proc, "grants exited with status 1 (crash 3 in a row); restarting it in 4 s", log_path, 180)
        wait_for(proc, "calls started", log_path, 180)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert (
            'jmdi_process_restarts_total{process="grants"} 2.0' in metrics
            or 'jmdi_process_restarts_total{process="grants"} 3.0' in metrics
        ), metrics
        assert 'jmdi_process_up{process="calls"} 1.0' in metrics
        # a process never restarted has its series at 0 (so Prometheus sees its first restart as an increase)
        assert 'jmdi_process_restarts_total{process="calls"} 0.0' in metrics
        assert 'jmdi_process_crashes_in_a_row{process="calls"} 0.0' in metrics
        assert proc.poll() is None, "the supervisor keeps running"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
    finally:
        end(proc)
    text = log_path.read_text()
    assert "grants: restarting (crash 2 in a row)" in text, text[-3000:]
    assert "calls stopping" in text  # calls ran throughout and was stopped with the rest


@pytest.fixture(scope="module")
def crash_loop_seen_by_prometheus(tmp_path_factory, amqp_uri):
    """The crash loop above as ops see it: Prometheus scraping the supervisor as deploy/prometheus does."""
    tmp_path = tmp_path_factory.mktemp("crash-loop")
    proc, port, log_path = start_with_grants_crashing(tmp_path, amqp_uri)
    try:
        wait_for(proc, "LOCAL MODE", log_path)
        (tmp_path / "prometheus").mkdir()
        targets = {"supervisor.yml": [{"targets": [f"127.0.0.1:{port}"], "labels": {"service": "supervisor"}}]}
        with running_prometheus(tmp_path / "prometheus", targets) as prometheus:
            yield prometheus
    finally:
        end(proc)


@pytest.mark.parametrize("expr", list(panel_queries(lambda expr: "jmdi_process_" in expr)))
def test_the_supervisor_panels_show_every_process(crash_loop_seen_by_prometheus, expr):
    series = answers(crash_loop_seen_by_prometheus, expr, timeout=60)["data"]["result"]
    assert {s["metric"]["process"] for s in series} >= {"grants", "calls"}, series


def test_a_crash_loop_raises_the_restart_alert_for_that_process_only(crash_loop_seen_by_prometheus):
    alerts = eventually(
        lambda: (lambda a: a if "ProcessRestartingRepeatedly" in a else None)(firing(crash_loop_seen_by_prometheus)),
        90,
        1,
        "ProcessRestartingRepeatedly firing",
    )
    assert [a["process"] for a in alerts["ProcessRestartingRepeatedly"]] == ["grants"]
