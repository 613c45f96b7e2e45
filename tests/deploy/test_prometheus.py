"""deploy/prometheus: promtool accepts both configs and the rules, the alert unit tests pass, every required
alert exists with severity/summary/description and is covered by a firing and a not-firing unit test.
promtool is required: CI installs Debian's `prometheus` package; without it these tests FAIL (never skip)."""

import shutil
import subprocess

import pytest
import yaml

from tests.deploy.deploy_helpers import DEPLOY

PROM = DEPLOY / "prometheus"
REQUIRED_ALERTS = {
    "ServiceDown",
    "OutboxBacklogGrowing",
    "OutboxOldestPendingTooOld",
    "DeadLettersHeld",
    "RpcErrorRatioHigh",
    "ProjectionLagHigh",
    "NotificationFailures",
    "ReconciliationDifference",
    "QueueDepthGrowing",
    "MalformedMessages",
    "ProcessRestartingRepeatedly",
    "DeadLetterQueueGrowing",
}


def promtool(*args):
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool not found on PATH: install it (apt-get install -y prometheus) — these checks must not be skipped",
            pytrace=False,
        )
    return subprocess.run([exe, *args], cwd=PROM, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_check_config(config):
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def rules():
    return [r for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"] for r in g["rules"]]


def test_required_alerts_have_severity_and_guidance():
    alerts = {r["alert"]: r for r in rules()}
    assert REQUIRED_ALERTS <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"].strip(), name
        assert len(rule["annotations"]["description"]) > 150, f"{name}: say what it means and what to do"


def test_every_alert_has_firing_and_quiet_unit_tests():
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    firing, quiet = set(), set()
    for t in tests:
        for case in t["alert_rule_test"]:
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {r["alert"] for r in rules()}
    assert alerts <= firing, f"no firing test for {alerts - firing}"
    assert alerts <= quiet, f"no not-firing test for {alerts - quiet}"


def _without_discovery(path):
    cfg = yaml.safe_load((PROM / path).read_text())
    for job in cfg["scrape_configs"]:
        for key in ("file_sd_configs", "dns_sd_configs", "static_configs", "relabel_configs"):
            job.pop(key, None)
    return cfg


def test_compose_variant_differs_only_in_discovery():
    assert _without_discovery("prometheus.yml") == _without_discovery("prometheus.compose.yml")


def test_scrape_targets():
    cfg = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"
    assert jobs["jmdi"]["metrics_path"] == "/metrics"
    services = yaml.safe_load((PROM / "targets" / "jmdi-services.yml").read_text())
    assert {g["labels"]["service"]: g["targets"] for g in services} == {
        "calls": ["localhost:8001"],
        "grants": ["localhost:8002"],
        "notifications": ["localhost:8003"],
        "reporting": ["localhost:8004"],
        "gateway": ["localhost:8005"],
    }
    assert yaml.safe_load((PROM / "targets" / "rabbitmq.yml").read_text())[0]["targets"] == ["localhost:15692"]
    # `make run`'s supervisor (restarts of crashed services), in the jmdi job of the host config only
    supervisor = yaml.safe_load((PROM / "targets" / "supervisor.yml").read_text())
    assert supervisor == [{"targets": ["localhost:8006"], "labels": {"service": "supervisor"}}]
    assert jobs["jmdi"]["file_sd_configs"][0]["files"] == ["targets/jmdi-services.yml", "targets/supervisor.yml"]
    compose = yaml.safe_load((PROM / "prometheus.compose.yml").read_text())
    dns = {tuple(c["names"]): c["port"] for j in compose["scrape_configs"] for c in j["dns_sd_configs"]}
    assert dns == {
        ("calls",): 8001,
        ("grants",): 8002,
        ("notifications",): 8003,
        ("reporting",): 8004,
        ("gateway",): 8005,
        ("rabbitmq",): 15692,
    }
