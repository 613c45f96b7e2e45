"""deploy/grafana: the committed dashboards equal generate.py's output, every panel uses the pinned datasource,
every PromQL query parses (promtool), and every metric name in dashboards and alert rules is a documented JMDI
metric, a RabbitMQ (rabbitmq_prometheus 3.10) metric or `up`."""

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.deploy_helpers import DEPLOY, load_module
from tests.deploy.metric_names import KNOWN, metric_names

GRAFANA = DEPLOY / "grafana"
gen = load_module(GRAFANA / "generate.py", "jmdi_grafana_generate")
DASHBOARDS = {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def exprs():
    for name, d in DASHBOARDS.items():
        for p in panels(d):
            for t in p.get("targets", []):
                yield f"{name}: {p['title']}", t["expr"]


def test_dashboards_in_sync_with_generator():
    rendered = gen.render()
    assert set(rendered) == set(DASHBOARDS), "dashboards/ holds exactly the generated files"
    for name, text in rendered.items():
        assert (GRAFANA / "dashboards" / name).read_text() == text, f"{name}: run deploy/grafana/generate.py"


def test_expected_dashboards_and_panels():
    assert set(DASHBOARDS) == {"service-health.json", "rabbitmq.json", "programme-finance.json"}
    assert len({d["uid"] for d in DASHBOARDS.values()}) == 3
    text = json.dumps(DASHBOARDS["service-health.json"])
    for needle in (
        "jmdi_rpc_requests_total",
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        "jmdi_events_handled_total",
        "jmdi_workers_busy",
        "jmdi_workers_max",
        "jmdi_outbox_pending",
        "jmdi_outbox_oldest_pending_age_seconds",
        "jmdi_dead_letters",
        "jmdi_projection_lag_seconds",
        "jmdi_service_start_time_seconds",
        "jmdi_gateway_requests_total",
        "jmdi_gateway_request_duration_seconds_bucket",
        "jmdi_gateway_refusals_total",
        "jmdi_malformed_messages_total",
        "jmdi_process_restarts_total",
    ):
        assert needle in text, needle
    text = json.dumps(DASHBOARDS["rabbitmq.json"])
    for needle in (
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked",
        "rabbitmq_queue_consumers",
        "rabbitmq_channel_messages_published_total",
        "rabbitmq_channel_messages_delivered_total",
        'queue=\\"jmdi.dead-letters\\"',
    ):
        assert needle in text, needle
    text = json.dumps(DASHBOARDS["programme-finance.json"])
    for needle in (
        "jmdi_committed_eur",
        "jmdi_window_allocation_eur",
        "jmdi_disbursed_eur",
        "jmdi_country_committed_eur",
        "jmdi_country_disbursed_eur",
    ):
        assert needle in text, needle


def test_every_panel_and_target_uses_the_pinned_datasource():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == "jmdi-prometheus" == gen.DATASOURCE_UID
    for name, d in DASHBOARDS.items():
        for p in panels(d):
            if p["type"] == "row":
                continue
            assert p["datasource"] == {"type": "prometheus", "uid": "jmdi-prometheus"}, (name, p["title"])
            assert p["targets"], (name, p["title"])
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "jmdi-prometheus", (name, p["title"])
        for var in d["templating"]["list"]:
            if var["type"] == "query":
                assert var["datasource"]["uid"] == "jmdi-prometheus"


def test_panel_ids_unique_and_inside_grid():
    for name, d in DASHBOARDS.items():
        ids = [p["id"] for p in panels(d)]
        assert len(ids) == len(set(ids)), name
        for p in panels(d):
            assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, (name, p["title"])


def test_provider_points_at_mounted_dashboards():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "jmdi.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


def test_metric_name_extraction():
    assert metric_names('sum by (service) (rate(jmdi_rpc_requests_total{outcome="error"}[5m])) > 0.05') == {
        "jmdi_rpc_requests_total"
    }
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(foo_bucket[$__rate_interval])))") == {"foo_bucket"}


def test_dashboard_metrics_are_documented():
    unknown = {(where, m) for where, e in exprs() for m in metric_names(e) if m not in KNOWN}
    assert not unknown, sorted(unknown)


def test_alert_rule_metrics_are_documented():
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    unknown = {(r["alert"], m) for g in groups for r in g["rules"] for m in metric_names(r["expr"]) if m not in KNOWN}
    assert not unknown, sorted(unknown)


def test_dashboard_queries_parse(tmp_path):
    """Turn every panel query into a recording rule (Grafana variables substituted) and let promtool parse it."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found on PATH: install it (apt-get install -y prometheus)", pytrace=False)
    rules = []
    for i, (_, expr) in enumerate(exprs()):
        expr = expr.replace("$__rate_interval", "5m")
        expr = re.sub(r"\$\w+", ".*", expr)
        rules.append({"record": f"jmdi:dashboard_query_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([exe, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
