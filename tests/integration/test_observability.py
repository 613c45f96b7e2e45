"""What ops see: every service's /metrics is valid Prometheus, and every dashboard panel and alert rule answers
from a real Prometheus (Debian's package) scraping the running services after a realistic flow."""

import json
import re
import subprocess
import time
import urllib.request

import pytest

from services.common.contracts.topology import PROCESSES
from services.common.values.errors import NotAllowed
from tests.support import flows, malformed
from tests.support.bus import publish
from tests.support.infra import eventually
from tests.support.prometheus import alerting_rules, answers, firing, panel_queries, running_prometheus, tool
from tests.support.scenario import pay, rank

pytestmark = pytest.mark.integration


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
    grants = [
        committee.grants.award_grant(
            proposal_id=p["proposal_id"], amount_eur="100000.00", decision_reference="SC-2009-01"
        )
        for p in proposals[:4]
    ]
    pay_first_tranches(system, grants)
    # a duplicate delivery, so the inbox-duplicates series moves
    with system.db("calls").connect() as conn:
        from sqlalchemy import text

        body = json.loads(conn.execute(text("SELECT body FROM outbox ORDER BY id DESC LIMIT 1")).scalar())
    publish(system.amqp_uri, body)
    with pytest.raises(Exception):
        pm.calls.submit_proposal(**{**flows.proposal(99), "ec_amount_requested_eur": "-1"})
    # (rankings stand in for the evaluation here and are published straight onto the bus: hence >=)
    eventually(
        lambda: system.inbox_count("reporting") >= system.outbox_events("calls") + system.outbox_events("grants"),
        60,
        message="reporting caught up",
    )
    return grants


def pay_first_tranches(system, grants):
    for n, grant in enumerate(grants):
        # pre-financing: 80% of the first year's budget
        pay(
            system,
            grant_id=grant["grant_id"],
            idempotency_key=f"obs-{n}",
            tranche_number=1,
            amount_eur="40000.00",
            value_date=None,
            bank_reference=f"BNK-{n}",
            annual_budgets=["50000.00", "50000.00"],
        )


@pytest.mark.parametrize("service", PROCESSES)
def test_metrics_of_every_service_pass_promtool(system, flow, service):
    result = subprocess.run(
        [tool("promtool"), "check", "metrics"],
        input=scrape(system, service),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_labels_are_bounded(system, flow):
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    for service in PROCESSES:
        series = [line for line in scrape(system, service).splitlines() if line.startswith("jmdi_")]
        assert 0 < len(series) < 3000
        for line in series:
            labels = line.split("{", 1)[1].rsplit("}", 1)[0] if "{" in line else ""
            assert not uuid.search(labels) and "JMDI-" not in labels, f"an id became a label value: {line}"


# The panels that only have data when something went wrong: a refused message (below), a restarted process
# (make run's supervisor: tests/integration/kit/test_kit_runner.py scrapes it while it restarts a crashing service)
INCIDENT_METRICS = ("jmdi_malformed_messages_total",)
SUPERVISOR_METRICS = ("jmdi_process_",)


def on_a_healthy_system(expr: str) -> bool:
    return not any(name in expr for name in INCIDENT_METRICS + SUPERVISOR_METRICS)


def on_an_incident(expr: str) -> bool:
    return any(name in expr for name in INCIDENT_METRICS)


@pytest.fixture(scope="module")
def prometheus(system, flow, tmp_path_factory):
    targets = {
        "jmdi-services.yml": [
            {"targets": [f"127.0.0.1:{system.env[s.upper() + '_METRICS_PORT']}"], "labels": {"service": s}}
            for s in PROCESSES
        ],
        "rabbitmq.yml": [{"targets": ["127.0.0.1:15692"], "labels": {"service": "rabbitmq"}}],
    }
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), targets) as base:
        # keep traffic going across a few scrapes, so rates over the last minute are non-zero
        for n in range(3):
            pay_first_tranches(system, flow) if n == 0 else None
            reporter = system.client("ec.reporter", ["ec_reporter"])
            reporter.reporting.totals()
            reporter.reporting.budget_report(format="json")
            with pytest.raises(NotAllowed):  # refused at the door: the gateway's refusal series moves
                system.client(None).grants.ledger(programme_id="JMDI")
            time.sleep(2)
        yield base


@pytest.mark.parametrize("expr", list(panel_queries(on_a_healthy_system)))
def test_every_dashboard_panel_returns_data(prometheus, expr):
    assert answers(prometheus, expr)["data"]["result"]


def test_alert_rules_load_and_none_fires_on_a_healthy_system(prometheus):
    alerts = alerting_rules(prometheus)
    assert len(alerts) >= 9
    assert all(r["health"] == "ok" for r in alerts), [r for r in alerts if r["health"] != "ok"]
    assert [r["name"] for r in alerts if r["state"] == "firing"] == []


@pytest.fixture(scope="module")
def malformed_message(system, prometheus):
    """After the healthy checks above: one message without a content type, published straight onto grants' RPC
    queue as a broken client would."""
    return malformed.send_all(system.amqp_uri, [("nameko-rpc", "grants.ledger", True)], 0, ["no_content_type"])


@pytest.mark.parametrize("expr", list(panel_queries(on_an_incident)))
def test_the_incident_panels_show_a_refused_message(prometheus, malformed_message, expr):
    series = answers(prometheus, expr, timeout=60)["data"]["result"]
    assert any(
        s["metric"].get("service") == "grants" and s["metric"].get("reason") == "no_content_type" for s in series
    ), series


def test_a_refused_message_raises_the_malformed_messages_alert(prometheus, malformed_message):
    alerts = eventually(
        lambda: (lambda a: a if "MalformedMessages" in a else None)(firing(prometheus)),
        60,
        1,
        "MalformedMessages firing",
    )
    assert {"service": "grants", "reason": "no_content_type"}.items() <= alerts["MalformedMessages"][0].items()
    # the refused message waits in the dead-letter queue: that alert may fire too, nothing else
    assert set(alerts) <= {"MalformedMessages", "DeadLetterQueueGrowing"}, alerts
