"""What ops see: every service's /metrics is valid Prometheus, and every dashboard panel and alert rule answers
from a real Prometheus (Debian's package) scraping the running services after a realistic flow."""
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from services.common.topology import SERVICES
from tests.support import flows
from tests.support.bus import publish
from tests.support.infra import REPO, eventually, free_port
from tests.support.scenario import pay, rank

pytestmark = pytest.mark.integration

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian package 'prometheus'; .ci/run installs it)"
    return path


def scrape(system, service: str) -> str:
    with urllib.request.urlopen(system.metrics_url(service), timeout=10) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def flow(system):
    """Proposals, awards, payments, a duplicate delivery: enough traffic for every panel to have data."""
    pm = system.client("maria.pm", ["programme_manager"])
    committee = system.client("steering.committee", ["committee"])
    pm.calls.load_programme(programme=flows.programme())
    pm.calls.create_call(**flows.call())
    pm.calls.open_call(call_id="JMDI-2008")
    proposals = [pm.calls.submit_proposal(**flows.proposal(n)) for n in range(8)]
    eventually(lambda: system.count_rows("grants", "proposals") == len(proposals), 60)
    rank(system, proposals)
    grants = [committee.grants.award_grant(proposal_id=p["proposal_id"], amount_eur="100000.00",
                                           decision_reference="SC-2009-01", decision_date="2009-06-15")
              for p in proposals[:4]]
    pay_first_tranches(system, grants)
    # a duplicate delivery, so the inbox-duplicates series moves
    with system.db("calls").connect() as conn:
        from sqlalchemy import text
        body = json.loads(conn.execute(text("SELECT body FROM outbox ORDER BY id DESC LIMIT 1")).scalar())
    publish(system.amqp_uri, body)
    with pytest.raises(Exception):
        pm.calls.submit_proposal(**{**flows.proposal(99), "ec_amount_requested_eur": "-1"})
    # (rankings stand in for the evaluation here and are published straight onto the bus: hence >=)
    eventually(lambda: system.inbox_count("reporting") >= system.outbox_events("calls") + system.outbox_events("grants"),
               60, message="reporting caught up")
    return grants


def pay_first_tranches(system, grants):
    for n, grant in enumerate(grants):
        # pre-financing: 80% of the first year's budget
        pay(system, grant_id=grant["grant_id"], idempotency_key=f"obs-{n}", tranche_number=1,
            amount_eur="40000.00", value_date="2009-07-01", bank_reference=f"BNK-{n}",
            annual_budgets=["50000.00", "50000.00"])


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_of_every_service_pass_promtool(system, flow, service):
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=scrape(system, service),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_labels_are_bounded(system, flow):
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    for service in SERVICES:
        series = [line for line in scrape(system, service).splitlines() if line.startswith("jmdi_")]
        assert 0 < len(series) < 3000
        for line in series:
            labels = line.split("{", 1)[1].rsplit("}", 1)[0] if "{" in line else ""
            assert not uuid.search(labels) and "JMDI-" not in labels, f"an id became a label value: {line}"


@pytest.fixture(scope="module")
def prometheus(system, flow, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", workdir / "alerts.yml")
    (workdir / "targets").mkdir()
    (workdir / "targets" / "jmdi-services.yml").write_text(yaml.safe_dump([
        {"targets": [f"127.0.0.1:{system.env[s.upper() + '_METRICS_PORT']}"], "labels": {"service": s}}
        for s in SERVICES]))
    (workdir / "targets" / "rabbitmq.yml").write_text(yaml.safe_dump([
        {"targets": ["127.0.0.1:15692"], "labels": {"service": "rabbitmq"}}]))
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=open(workdir / "log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _get(base + "/-/ready") is not None, 60, 0.5, "prometheus ready")
        eventually(lambda: all(t["health"] == "up" for t in _get(base + "/api/v1/targets")["data"]["activeTargets"])
                   and len(_get(base + "/api/v1/targets")["data"]["activeTargets"]) == 5, 60, 0.5, "targets up")
        # keep traffic going across a few scrapes, so rates over the last minute are non-zero
        for n in range(3):
            pay_first_tranches(system, flow) if n == 0 else None
            reporter = system.client("ec.reporter", ["ec_reporter"])
            reporter.reporting.totals()
            reporter.reporting.budget_report(format="json")
            time.sleep(2)
        yield base
    finally:
        process.terminate()
        process.wait(30)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            return json.loads(body) if body.startswith(b"{") else body
    except Exception:
        return None


def panel_queries():
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield pytest.param(target["expr"], id=f"{path.stem}:{panel['title']}:{target.get('refId', '')}")


def instant(base: str, expr: str):
    query = (expr.replace("$__rate_interval", "1m").replace('=~"$service"', '=~".*"')
             .replace('=~"$vhost"', '=~".*"'))
    return _get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}")


@pytest.mark.parametrize("expr", list(panel_queries()))
def test_every_dashboard_panel_returns_data(prometheus, expr):
    answer = eventually(lambda: (lambda a: a if a and a["status"] == "success" and a["data"]["result"] else None)(
        instant(prometheus, expr)), 30, 1, f"data for {expr}")
    assert answer["data"]["result"]


def test_alert_rules_load_and_none_fires_on_a_healthy_system(prometheus):
    rules = _get(prometheus + "/api/v1/rules")["data"]["groups"]
    alerts = [r for g in rules for r in g["rules"] if r["type"] == "alerting"]
    assert len(alerts) >= 9
    assert all(r["health"] == "ok" for r in alerts), [r for r in alerts if r["health"] != "ok"]
    assert [r["name"] for r in alerts if r["state"] == "firing"] == []
