"""A real Prometheus (Debian's package) with deploy/prometheus's configuration and alert rules, scraping given
targets every second, and the dashboards' panel queries to ask it: what ops see, checked from outside."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.infra import REPO, eventually, free_port

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian package 'prometheus'; .ci/run installs it)"
    return path


@contextlib.contextmanager
def running_prometheus(workdir: Path, targets: dict[str, list[dict]]):
    """Prometheus on a free port with the shipped prometheus.yml and alerts.yml, its file_sd target files
    replaced by `targets` (file name under targets/ -> file_sd entries); yields its base URL once every target
    is up."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", workdir / "alerts.yml")
    (workdir / "targets").mkdir()
    for name in ("jmdi-services.yml", "supervisor.yml", "rabbitmq.yml"):
        (workdir / "targets" / name).write_text(yaml.safe_dump(targets.get(name, [])))
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    expected = sum(len(entry["targets"]) for entries in targets.values() for entry in entries)
    with open(workdir / "log", "wb") as log:
        process = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: get(base + "/-/ready") is not None, 60, 0.5, "prometheus ready")

        def all_up():
            active = get(base + "/api/v1/targets")["data"]["activeTargets"]
            return len(active) == expected and all(t["health"] == "up" for t in active)

        eventually(all_up, 60, 0.5, "targets up")
        yield base
    finally:
        process.terminate()
        process.wait(30)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            return json.loads(body) if body.startswith(b"{") else body
    except Exception:
        return None


def panel_queries(selected=lambda expr: True):
    """Every dashboard panel query (a pytest param named dashboard:panel:refId) for which `selected` holds."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target.get("expr") and selected(target["expr"]):
                    yield pytest.param(target["expr"], id=f"{path.stem}:{panel['title']}:{target.get('refId', '')}")


def instant(base: str, expr: str):
    """The panel's query as Grafana would send it with every dashboard variable set to "all"."""
    query = expr.replace("$__rate_interval", "1m").replace('=~"$service"', '=~".*"').replace('=~"$vhost"', '=~".*"')
    return get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}")


def answers(base: str, expr: str, timeout: float = 30):
    """The panel's data once Prometheus has some (fails naming the query if it never does)."""

    def has_data():
        answer = instant(base, expr)
        return answer if answer and answer["status"] == "success" and answer["data"]["result"] else None

    return eventually(has_data, timeout, 1, f"data for {expr}")


def alerting_rules(base: str) -> list[dict]:
    return [
        rule
        for group in get(base + "/api/v1/rules")["data"]["groups"]
        for rule in group["rules"]
        if rule["type"] == "alerting"
    ]


def firing(base: str) -> dict[str, list[dict]]:
    """Alert name -> the label sets it fires for."""
    alerts: dict[str, list[dict]] = {}
    for alert in get(base + "/api/v1/alerts")["data"]["alerts"]:
        if alert["state"] == "firing":
            alerts.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
    return alerts
