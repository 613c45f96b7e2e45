"""deploy/k8s: every manifest passes `kubernetes-validate --strict` against a pinned Kubernetes version, the
generated manifests are in sync, and the services are deployed as designed."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.common.contracts import topology
from tests.deploy.deploy_helpers import DEPLOY, REPO, load_module

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"
MANIFESTS = sorted(K8S.glob("*.yaml"))
DOCS = [d for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d]


def kubernetes_validate() -> str:
    exe = Path(sys.executable).with_name("kubernetes-validate")
    found = str(exe) if exe.exists() else shutil.which("kubernetes-validate")
    assert found, "kubernetes-validate is not installed (pip install kubernetes-validate)"
    return found


def test_manifests_exist():
    names = {p.name for p in MANIFESTS}
    assert {
        "namespace.yaml",
        "config.yaml",
        "secret.yaml",
        "services.yaml",
        "rabbitmq.yaml",
        "rabbitmq-definitions.yaml",
        "postgres.yaml",
    } <= names


def test_kubernetes_validate_strict():
    result = subprocess.run(
        [
            kubernetes_validate(),
            "--strict",
            "--kubernetes-version",
            KUBERNETES_VERSION,
            "--quiet",
            *map(str, MANIFESTS),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_unknown_fields(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: jmdi, colour: blue}\n")
    result = subprocess.run(
        [kubernetes_validate(), "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_generated_manifests_in_sync():
    gen = load_module(K8S / "generate.py", "jmdi_k8s_generate")
    for name, build in gen.FILES.items():
        assert (K8S / name).read_text() == build(), f"{name} out of date: run deploy/k8s/generate.py"


def find(kind, name):
    return next(d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("service", topology.PROCESSES)
def test_service_deployment(service):
    dep = find("Deployment", service)
    spec = dep["spec"]
    if service in ("calls", "grants", "reporting"):
        assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/metrics"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {"configMapRef": {"name": "jmdi-config"}} in container["envFrom"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SERVICE"]["value"] == service
    for secret_var in ("AMQP_URI", f"{service.upper()}_DATABASE_URL"):
        assert env[secret_var]["valueFrom"]["secretKeyRef"]["name"] == "jmdi-secrets"
    (init,) = pod["initContainers"]
    assert init["command"][:4] == ["python", "-m", "services.common.launch.runner", service]
    svc = find("Service", service)
    # only the gateway listens for anything but Prometheus
    expected = ["http", "metrics"] if service == "gateway" else ["metrics"]
    assert [p["name"] for p in container["ports"]] == [p["name"] for p in svc["spec"]["ports"]] == expected
    assert [p["port"] for p in svc["spec"]["ports"]] == [p["containerPort"] for p in container["ports"]]


def test_staff_come_in_through_the_gateway_only():
    ingresses = [d for d in DOCS if d["kind"] == "Ingress"]
    assert [i["metadata"]["name"] for i in ingresses] == ["gateway"]
    (path,) = ingresses[0]["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
    assert ingresses[0]["spec"]["tls"]
    assert not [d for d in DOCS if d["kind"] == "Service" and d["spec"].get("type") in ("NodePort", "LoadBalancer")]
    policies = {d["metadata"]["name"]: d["spec"] for d in DOCS if d["kind"] == "NetworkPolicy"}
    services = policies["jmdi-services"]
    assert set(services["podSelector"]["matchExpressions"][0]["values"]) == set(topology.SERVICES)
    assert [p["port"] for rule in services["ingress"] for p in rule["ports"]] == ["metrics"]
    gateway_ports = [p["port"] for rule in policies["gateway"]["ingress"] for p in rule["ports"]]
    assert gateway_ports == ["http", "metrics"]
    env = {
        e["name"]: e.get("value")
        for e in find("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["GATEWAY_TRUSTED_PROXIES"] == "1"


@pytest.mark.parametrize("service", topology.SERVICES)
def test_each_service_holds_public_keys_and_only_its_own_private_key(service):
    from services.common.security.roles import SERVICE_CALLS

    pod = find("Deployment", service)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == ({f"jmdi-key-{service}"} if service in SERVICE_CALLS else set())
    assert {"name": "service-jwks", "configMap": {"name": "jmdi-service-jwks"}} in pod["volumes"]
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"] in ("service-key", "service-jwks"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert ("JMDI_SERVICE_KEY" in env) == (service in SERVICE_CALLS)
    config = find("ConfigMap", "jmdi-config")["data"]
    assert config["JMDI_JWKS"].startswith("https://") and config["JMDI_JWKS"].endswith("/protocol/openid-connect/certs")
    assert config["JMDI_JWKS"].startswith(config["JMDI_ISSUER"]) and config["EVENT_PRODUCER_CHECK"] == "true"
    assert not any("JMDI_SECRET" in str(d) for d in DOCS), "no shared signing secret anywhere"


def test_secret_holds_placeholders_only():
    secret = find("Secret", "jmdi-secrets")
    for key, value in secret["stringData"].items():
        assert "REPLACE_ME" in value, key
    config = find("ConfigMap", "jmdi-config")
    assert config["data"]["DECLARE_TOPOLOGY"] == "false"
    # every secret key the manifests reference exists
    refs = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for d in DOCS
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"].get("initContainers", [])
        for e in c.get("env", [])
        if "valueFrom" in e
        and "secretKeyRef" in e["valueFrom"]
        and e["valueFrom"]["secretKeyRef"]["name"] == "jmdi-secrets"
    }
    assert refs <= set(secret["stringData"])


def test_rabbitmq_cluster():
    sts = find("StatefulSet", "rabbitmq")
    assert sts["spec"]["replicas"] == 3
    conf = find("ConfigMap", "rabbitmq-config")["data"]
    assert "rabbitmq_prometheus" in conf["enabled_plugins"]
    assert "definitions.local.path = /etc/rabbitmq/definitions/definitions.json" in conf["rabbitmq.conf"]
    defs = yaml.safe_load((K8S / "rabbitmq-definitions.yaml").read_text())["stringData"]["definitions.json"]
    assert defs == (DEPLOY / "rabbitmq" / "definitions.quorum.json").read_text()
    assert '"x-queue-type": "quorum"' in defs


def test_postgres_init_script_matches_compose_one():
    init = find("ConfigMap", "postgres-init")["data"]["10-init-databases.sh"]
    assert init == (REPO / "deploy" / "postgres" / "init-databases.sh").read_text()
