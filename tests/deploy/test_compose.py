"""docker-compose.yml validates against the Compose specification schema (the published file, shipped beside this
test: compose-spec/README.md) and wires the system as designed; Dockerfile and .dockerignore follow the rules."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from services.common.contracts import topology
from services.common.security.roles import SERVICE_CALLS
from tests.deploy.deploy_helpers import REPO

SCHEMA = Path(__file__).parent / "compose-spec" / "compose-spec.json"
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
PORTS = {"calls": 8001, "grants": 8002, "notifications": 8003, "reporting": 8004, "gateway": 8005}


def test_compose_validates_against_compose_spec():
    assert SCHEMA.exists(), f"compose schema not found at {SCHEMA.resolve()}"
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(COMPOSE), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_all_components_present():
    assert set(COMPOSE["services"]) >= {"rabbitmq", "postgres", "prometheus", "grafana", "mailpit", *PORTS}


@pytest.mark.parametrize("service", topology.PROCESSES)
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
    assert env["LOG_FORMAT"] == "json" and "MAX_WORKERS" in env and env["DECLARE_TOPOLOGY"] == "false"
    assert env["JMDI_JWKS"] == "/run/jmdi/jwks/issuer.jwks.json"
    assert svc["depends_on"]["keys"]["condition"] == "service_completed_successfully"
    mounts = svc["volumes"]
    assert "jwks:/run/jmdi/jwks:ro" in mounts
    own_key = [m for m in mounts if m.endswith(":/run/jmdi/key:ro")]
    assert own_key == ([f"{service}-key:/run/jmdi/key:ro"] if service in SERVICE_CALLS else [])
    assert ("JMDI_SERVICE_KEY" in env) == (service in SERVICE_CALLS)
    if service == "gateway":
        # the staff's only port; it holds no SMTP credentials and no private key
        assert svc["ports"] == ["8000:8000"] and env["GATEWAY_PORT"] == "8000"
        assert not [k for k in env if k.startswith("SMTP_")]
    else:
        assert "ports" not in svc, "a service publishes no port: staff go through the gateway"
        for key in (
            "JMDI_SERVICE_JWKS",
            "EVENT_PRODUCER_CHECK",
            "SMTP_HOST",
            "SMTP_PORT",
            "SMTP_STARTTLS",
            "SMTP_FROM",
            "EC_REPORT_RECIPIENTS",
            "SMTP_USER",
            "SMTP_PASSWORD",
        ):
            assert key in env, key
    assert f"127.0.0.1:{PORTS[service]}/metrics" in " ".join(svc["healthcheck"]["test"])


def test_infrastructure_ports_are_for_operators_on_the_host_only():
    for name in ("rabbitmq", "postgres", "prometheus", "grafana", "mailpit"):
        for mapping in COMPOSE["services"][name].get("ports", []):
            assert mapping.startswith("127.0.0.1:"), (name, mapping)
    assert "JMDI_SECRET" not in (REPO / "docker-compose.yml").read_text()


def test_the_keys_are_made_once_each_in_its_own_volume():
    keys = COMPOSE["services"]["keys"]
    assert keys["command"][:5] == ["python", "-m", "services.common.security.keys", "init", "/keys"]
    assert set(keys["volumes"]) == {
        "issuer-key:/keys/issuer",
        "jwks:/keys/jwks",
        *(f"{s}-key:/keys/{s}" for s in SERVICE_CALLS),
    }
    mounted = {
        v.split(":")[0]
        for svc in COMPOSE["services"].values()
        if svc is not keys
        for v in svc.get("volumes", [])
        if isinstance(v, str)
    }
    assert "issuer-key" not in mounted, "no service holds the staff token issuer's key"


def test_infrastructure_healthchecks_and_mounts():
    s = COMPOSE["services"]
    assert s["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert "pg_isready" in " ".join(s["postgres"]["healthcheck"]["test"])
    rabbit_mounts = " ".join(s["rabbitmq"]["volumes"])
    for f in ("rabbitmq.conf", "enabled_plugins"):
        assert f"./deploy/rabbitmq/{f}:" in rabbit_mounts
    assert (
        "${JMDI_RABBITMQ_DEFINITIONS:?run scripts/compose-secrets first}:/etc/rabbitmq/definitions.json:ro"
        in rabbit_mounts
    )
    assert any(
        "./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/" in v for v in s["postgres"]["volumes"]
    )
    assert any(v.startswith("./deploy/prometheus/prometheus.compose.yml:") for v in s["prometheus"]["volumes"])
    assert any(v.startswith("./deploy/prometheus/alerts.yml:") for v in s["prometheus"]["volumes"])
    assert any(v.startswith("./deploy/grafana/provisioning:") for v in s["grafana"]["volumes"])
    assert any(v.startswith("./deploy/grafana/dashboards:") for v in s["grafana"]["volumes"])
    for service in s.values():
        for v in service.get("volumes", []):
            if isinstance(v, str) and v.startswith("./"):
                assert (REPO / v.split(":")[0]).exists(), v


def test_compose_ships_no_usable_default_secret():
    text = (REPO / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{\w*(PASSWORD|SECRET|KEY)\w*:-", text), "a secret with a default"
    required = set(re.findall(r"\$\{(\w*PASSWORD\w*):\?", text))
    assert {f"{s.upper()}_AMQP_PASSWORD" for s in topology.PROCESSES} <= required
    assert {f"{s.upper()}_DB_PASSWORD" for s in topology.PROCESSES} | {
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    } <= required
    assert "${JMDI_RABBITMQ_DEFINITIONS:?" in text, "the broker's users come from this machine's definitions"
    for script in (REPO / "deploy" / "postgres" / "init-databases.sh", REPO / "deploy" / "k8s" / "postgres.yaml"):
        assert "dev-password" not in script.read_text()


def test_compose_secrets_writes_strong_passwords_and_matching_broker_definitions(tmp_path):
    import subprocess
    import sys
    from services.common.security.secrecy import weakness
    from tests.deploy.deploy_helpers import DEPLOY, load_module

    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compose-secrets"), "--directory", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    env_file = tmp_path / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if not line.startswith("#"))
    text = (REPO / "docker-compose.yml").read_text()
    for name in set(re.findall(r"\$\{(\w+):\?", text)):
        assert name in values, name
    for name, value in values.items():
        if name.endswith("_PASSWORD"):
            assert weakness(value) is None, name
    gd = load_module(DEPLOY / "rabbitmq" / "generate_definitions.py", "jmdi_generate_definitions_c")
    defs = json.loads(Path(values["JMDI_RABBITMQ_DEFINITIONS"]).read_text())
    hashes = {u["name"]: u["password_hash"] for u in defs["users"]}
    for service in topology.PROCESSES:
        salt = __import__("base64").b64decode(hashes[service])[:4]
        assert gd.password_hash(values[f"{service.upper()}_AMQP_PASSWORD"], salt) == hashes[service], service
    again = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compose-secrets"), "--directory", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "keeping its secrets" in again.stdout and env_file.read_text().count("=") == len(values) + 0


def test_dockerfile():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r"^USER (?!root|0\b)", text, re.M), "runs as a non-root user"
    assert re.search(r"^EXPOSE 8000 8001 8002 8003 8004 8005$", text, re.M)
    assert re.search(r'^CMD .*python -m services\.common\.launch\.runner "\$\{SERVICE\}"', text, re.M)


def test_dockerignore_keeps_secrets_and_venv_out():
    lines = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".env"} <= lines
    assert "services" not in lines and "pyproject.toml" not in lines


def test_compose_secrets_passwords_pass_the_services_check_whatever_characters_they_happen_to_hold():
    """The services estimate a secret's strength from its length and the character classes it shows, so a random
    password must pass even when chance leaves classes out: 43 characters of letters alone (a 32-byte token with no
    digit, '-' or '_', about 1 in 7,500) read as 245 bits and are refused; 64 characters pass even in one case."""
    import importlib.machinery
    import importlib.util
    import string
    from services.common.security.secrecy import weakness

    loader = importlib.machinery.SourceFileLoader("jmdi_compose_secrets", str(REPO / "scripts" / "compose-secrets"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert weakness((string.ascii_letters * 2)[:43]) is not None
    made = module.password()
    assert len(made) == 64 and weakness(made) is None
    assert weakness((string.ascii_lowercase * 3)[:64]) is None  # the fewest classes such a password can show
