"""docker-compose.yml validates against the Compose specification schema (read from the shared standards, never
copied into the repo) and wires the system as designed; Dockerfile and .dockerignore follow the rules."""
import json
import re

import jsonschema
import pytest
import yaml

from services.common import topology
from tests.deploy.deploy_helpers import REPO

SCHEMA = REPO / ".." / "shared" / "standards" / "compose-spec" / "compose-spec.json"
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
PORTS = {"calls": 8001, "grants": 8002, "notifications": 8003, "reporting": 8004}


def test_compose_validates_against_compose_spec():
    assert SCHEMA.exists(), f"compose schema not found at {SCHEMA.resolve()}"
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(COMPOSE), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_all_components_present():
    assert set(COMPOSE["services"]) >= {"rabbitmq", "postgres", "prometheus", "grafana", "mailpit", *PORTS}


@pytest.mark.parametrize("service", topology.SERVICES)
def test_application_service(service):
    svc = COMPOSE["services"][service]
    assert svc["build"]["context"] == "." and svc["image"] == "jmdi/services:dev"
    for dep in ("rabbitmq", "postgres"):
        assert svc["depends_on"][dep]["condition"] == "service_healthy"
    env = svc["environment"]
    assert env["SERVICE"] == service and env["METRICS_PORT"] == str(PORTS[service])
    assert env["AMQP_URI"].startswith(f"amqp://{service}:") and env["AMQP_URI"].endswith("@rabbitmq:5672/jmdi")
    db_vars = [k for k in env if k.endswith("_DATABASE_URL")]
    assert db_vars == [f"{service.upper()}_DATABASE_URL"], "a service gets only its own database"
    assert env[db_vars[0]].startswith("postgresql+psycopg2://")
    assert env["DECLARE_TOPOLOGY"] == "false" and env["LOG_FORMAT"] == "json"
    for key in ("JMDI_SECRET", "SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_FROM", "EC_REPORT_RECIPIENTS",
                "MAX_WORKERS", "SMTP_USER", "SMTP_PASSWORD"):
        assert key in env, key
    assert f"{PORTS[service]}:{PORTS[service]}" in svc["ports"]
    assert f"127.0.0.1:{PORTS[service]}/metrics" in " ".join(svc["healthcheck"]["test"])


def test_infrastructure_healthchecks_and_mounts():
    s = COMPOSE["services"]
    assert s["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert "pg_isready" in " ".join(s["postgres"]["healthcheck"]["test"])
    rabbit_mounts = " ".join(s["rabbitmq"]["volumes"])
    for f in ("rabbitmq.conf", "enabled_plugins", "definitions.json"):
        assert f"./deploy/rabbitmq/{f}:" in rabbit_mounts
    assert any("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/" in v for v in s["postgres"]["volumes"])
    assert any(v.startswith("./deploy/prometheus/prometheus.compose.yml:") for v in s["prometheus"]["volumes"])
    assert any(v.startswith("./deploy/prometheus/alerts.yml:") for v in s["prometheus"]["volumes"])
    assert any(v.startswith("./deploy/grafana/provisioning:") for v in s["grafana"]["volumes"])
    assert any(v.startswith("./deploy/grafana/dashboards:") for v in s["grafana"]["volumes"])
    for service in s.values():
        for v in service.get("volumes", []):
            if isinstance(v, str) and v.startswith("./"):
                assert (REPO / v.split(":")[0]).exists(), v


def test_compose_amqp_passwords_match_definitions():
    from tests.deploy.deploy_helpers import DEPLOY, load_module
    gd = load_module(DEPLOY / "rabbitmq" / "generate_definitions.py", "jmdi_generate_definitions_c")
    defs = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    hashes = {u["name"]: u["password_hash"] for u in defs["users"]}
    for service in topology.SERVICES:
        uri = COMPOSE["services"][service]["environment"]["AMQP_URI"]
        default = re.search(r":\$\{\w+:-([^}]+)\}@", uri).group(1)
        salt = __import__("base64").b64decode(hashes[service])[:4]
        assert gd.password_hash(default, salt) == hashes[service], service


def test_dockerfile():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r"^USER (?!root|0\b)", text, re.M), "runs as a non-root user"
    assert re.search(r"^EXPOSE 8001 8002 8003 8004$", text, re.M)
    assert re.search(r'^CMD .*python -m services\.common\.runner "\$\{SERVICE\}"', text, re.M)


def test_dockerignore_keeps_secrets_and_venv_out():
    lines = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".env"} <= lines
    assert "services" not in lines and "pyproject.toml" not in lines
