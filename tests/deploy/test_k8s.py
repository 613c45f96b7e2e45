"""deploy/k8s: every manifest passes `kubernetes-validate --strict` against a pinned Kubernetes version, the
generated manifests are in sync, and the services are deployed as designed."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.common import topology
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
    assert {"namespace.yaml", "config.yaml", "secret.yaml", "services.yaml", "rabbitmq.yaml",
            "rabbitmq-definitions.yaml", "postgres.yaml"} <= names


def test_kubernetes_validate_strict():
    result = subprocess.run([kubernetes_validate(), "--strict", "--kubernetes-version", KUBERNETES_VERSION,
                             "--quiet", *map(str, MANIFESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_unknown_fields(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: jmdi, colour: blue}\n")
    result = subprocess.run([kubernetes_validate(), "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode != 0


def test_generated_manifests_in_sync():
    gen = load_module(K8S / "generate.py", "jmdi_k8s_generate")
    for name, build in gen.FILES.items():
        assert (K8S / name).read_text() == build(), f"{name} out of date: run deploy/k8s/generate.py"


def find(kind, name):
    return next(d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("service", topology.SERVICES)
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
    for secret_var in ("AMQP_URI", f"{service.upper()}_DATABASE_URL", "JMDI_SECRET"):
        assert env[secret_var]["valueFrom"]["secretKeyRef"]["name"] == "jmdi-secrets"
    assert [p["name"] for p in container["ports"]] == ["metrics"]
    (init,) = pod["initContainers"]
    assert init["command"][:4] == ["python", "-m", "services.common.runner", service]
    svc = find("Service", service)
    assert svc["spec"]["ports"][0]["name"] == "metrics"
    assert svc["spec"]["ports"][0]["port"] == container["ports"][0]["containerPort"]


def test_secret_holds_placeholders_only():
    secret = find("Secret", "jmdi-secrets")
    for key, value in secret["stringData"].items():
        assert "REPLACE_ME" in value, key
    config = find("ConfigMap", "jmdi-config")
    assert config["data"]["DECLARE_TOPOLOGY"] == "false"
    # every secret key the manifests reference exists
    refs = {e["valueFrom"]["secretKeyRef"]["key"] for d in DOCS if d["kind"] in ("Deployment", "StatefulSet")
            for c in d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"].get("initContainers", [])
            for e in c.get("env", []) if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
            and e["valueFrom"]["secretKeyRef"]["name"] == "jmdi-secrets"}
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
