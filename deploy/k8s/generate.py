"""Generate the repetitive Kubernetes manifests: services.yaml (a Deployment, a Service and a
PodDisruptionBudget per JMDI service and the gateway; the gateway's Ingress, the staff's only way in; network
policies that let nothing but the gateway's API port be reached from outside the namespace) and rabbitmq-definitions.yaml (the broker definitions with quorum
queues, as a Secret, from deploy/rabbitmq/generate_definitions.py with REPLACE_ME placeholder passwords).

    .venv/bin/python deploy/k8s/generate.py            # rewrite both files
    .venv/bin/python deploy/k8s/generate.py --check    # exit 1 if a committed file is out of date

For a real cluster, regenerate the definitions Secret with real passwords and apply it from your secret store:
    .venv/bin/python deploy/rabbitmq/generate_definitions.py --queue-type quorum \
        --password calls=... --password grants=... ... --output definitions.json
    kubectl -n jmdi create secret generic rabbitmq-definitions --from-file=definitions.json \
        --dry-run=client -o yaml | kubectl apply -f -
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))

from services.common.security.roles import SERVICE_CALLS  # noqa: E402

KEY_DIR = "/etc/jmdi/key"  # the service's own private key (only services that call another service)
JWKS_DIR = "/etc/jmdi/jwks"  # the services' public keys
IMAGE = "registry.example.org/jmdi/services:1.0.0"  # pin the image you built from the repo's Dockerfile

SERVICES = {  # name: (metrics port, replicas, resources)
    "calls": (8001, 2, {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}),
    "grants": (8002, 2, {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}),
    "notifications": (
        8003,
        1,
        {"requests": {"cpu": "50m", "memory": "192Mi"}, "limits": {"cpu": "500m", "memory": "384Mi"}},
    ),
    "reporting": (8004, 2, {"requests": {"cpu": "200m", "memory": "384Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}),
    "gateway": (8005, 2, {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}),
}
API_PORT = 8000  # the gateway's staff API
STAFF_HOST = "jmdi.example.org"  # the name staff use; its TLS certificate is the Secret jmdi-staff-tls


def _labels(service: str) -> dict:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/part-of": "jmdi",
        "app.kubernetes.io/component": "service",
    }


def _env(service: str, port: int) -> list[dict]:
    upper = service.upper()

    def secret(name, key):
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": "jmdi-secrets", "key": key}}}

    env = [
        {"name": "SERVICE", "value": service},
        {"name": "METRICS_PORT", "value": str(port)},
        secret("AMQP_URI", f"{upper}_AMQP_URI"),
        secret(f"{upper}_DATABASE_URL", f"{upper}_DATABASE_URL"),
    ]
    if service in SERVICE_CALLS:
        env.append({"name": "JMDI_SERVICE_KEY", "value": f"{KEY_DIR}/service.pem"})
    if service == "notifications":
        env += [secret("SMTP_USER", "SMTP_USER"), secret("SMTP_PASSWORD", "SMTP_PASSWORD")]
    if service == "gateway":
        # behind the Ingress controller: the client address is the one it appends to X-Forwarded-For
        env += [{"name": "GATEWAY_PORT", "value": str(API_PORT)}, {"name": "GATEWAY_TRUSTED_PROXIES", "value": "1"}]
    return env


def deployment(service: str, port: int, replicas: int, resources: dict) -> dict:
    labels = _labels(service)
    security = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    probe_get = {"path": "/metrics", "port": "metrics"}
    container = {
        "name": service,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": [],  # the image's CMD runs `python -m services.common.launch.runner $SERVICE`
        "ports": ([{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}] if service == "gateway" else [])
        + [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "jmdi-config"}}],
        "env": _env(service, port),
        "resources": resources,
        "startupProbe": {"httpGet": probe_get, "periodSeconds": 5, "failureThreshold": 36},
        "readinessProbe": {"httpGet": probe_get, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {"httpGet": probe_get, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3},
        "securityContext": security,
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "service-jwks", "mountPath": JWKS_DIR, "readOnly": True},
            *([{"name": "service-key", "mountPath": KEY_DIR, "readOnly": True}] if service in SERVICE_CALLS else []),
        ],
    }
    del container["args"]
    migrate = {
        "name": "migrate",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        # Applies this service's Alembic migrations and exits. Replicas starting together each run it: the
        # runner serialises migrations with a PostgreSQL advisory lock.
        "command": ["python", "-m", "services.common.launch.runner", service, "--migrate-only"],
        "envFrom": [{"configMapRef": {"name": "jmdi-config"}}],
        "env": _env(service, port),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": security,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": service, "namespace": "jmdi", "labels": labels},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "initContainers": [migrate],
                    "containers": [container],
                    "volumes": _volumes(service),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": service}},
                        }
                    ],
                },
            },
        },
    }


def _volumes(service: str) -> list[dict]:
    """Public keys for every service; a private key only for a service that calls another, readable by its
    user (group fsGroup) alone."""
    volumes = [{"name": "tmp", "emptyDir": {}}, {"name": "service-jwks", "configMap": {"name": "jmdi-service-jwks"}}]
    if service in SERVICE_CALLS:
        volumes.append({"name": "service-key", "secret": {"secretName": f"jmdi-key-{service}", "defaultMode": 0o440}})
    return volumes


def service_object(service: str, port: int) -> dict:
    ports = [{"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}]
    if service == "gateway":
        ports.insert(0, {"name": "http", "port": API_PORT, "targetPort": "http", "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "namespace": "jmdi", "labels": _labels(service)},
        "spec": {"selector": {"app.kubernetes.io/name": service}, "ports": ports},
    }


def ingress() -> dict:
    """Staff reach the system here, over TLS, and nowhere else."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "gateway",
            "namespace": "jmdi",
            "labels": _labels("gateway"),
            "annotations": {
                "nginx.ingress.kubernetes.io/proxy-body-size": "16m",
                "nginx.ingress.kubernetes.io/proxy-read-timeout": "900",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": [STAFF_HOST], "secretName": "jmdi-staff-tls"}],
            "rules": [
                {
                    "host": STAFF_HOST,
                    "http": {
                        "paths": [
                            {
                                "path": "/api/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "gateway", "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def network_policies() -> list[dict]:
    """From outside the namespace only the Ingress controller (to the gateway's API port) and Prometheus (to
    /metrics ports) get in; inside it, the services talk over the broker."""

    def policy(name, selector, rules):
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "jmdi", "labels": {"app.kubernetes.io/part-of": "jmdi"}},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": rules},
        }

    from_namespace = lambda ns: {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}  # noqa
    metrics = {"from": [from_namespace("monitoring")], "ports": [{"port": "metrics", "protocol": "TCP"}]}
    services = {
        "matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": [s for s in SERVICES if s != "gateway"]}
        ]
    }
    return [
        policy("jmdi-services", services, [metrics]),
        policy(
            "gateway",
            {"matchLabels": {"app.kubernetes.io/name": "gateway"}},
            [{"from": [from_namespace("ingress-nginx")], "ports": [{"port": "http", "protocol": "TCP"}]}, metrics],
        ),
    ]


def pdb(service: str) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": service, "namespace": "jmdi", "labels": _labels(service)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": service}}},
    }


def services_yaml() -> str:
    docs = []
    for name, (port, replicas, resources) in SERVICES.items():
        docs += [deployment(name, port, replicas, resources), service_object(name, port), pdb(name)]
    docs += [ingress(), *network_policies()]
    return "# GENERATED by deploy/k8s/generate.py — edit that script, not this file.\n" + yaml.safe_dump_all(
        docs, sort_keys=False, width=120
    )


def _definitions_module():
    spec = importlib.util.spec_from_file_location(
        "generate_definitions", HERE.parent / "rabbitmq" / "generate_definitions.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError("deploy/rabbitmq/generate_definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def definitions_yaml() -> str:
    gd = _definitions_module()
    text = gd.render(gd.build(queue_type="quorum", default_password=gd.PLACEHOLDER_PASSWORD))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "rabbitmq-definitions",
            "namespace": "jmdi",
            "labels": {"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/part-of": "jmdi"},
        },
        "type": "Opaque",
        "stringData": {"definitions.json": text},
    }
    return (
        "# GENERATED by deploy/k8s/generate.py. PLACEHOLDER passwords (REPLACE_ME): regenerate with real ones,\n"
        "# see the docstring of deploy/k8s/generate.py. Quorum queues: the services must declare their queues\n"
        "# with x-queue-type=quorum (RabbitMQ 3.10 refuses a redeclaration without it).\n"
        + yaml.safe_dump(secret, sort_keys=False, width=120)
    )


FILES = {"services.yaml": services_yaml, "rabbitmq-definitions.yaml": definitions_yaml}


def main(argv: list[str]) -> int:
    stale = []
    for name, build in FILES.items():
        text = build()
        if "--check" in argv:
            if not (HERE / name).exists() or (HERE / name).read_text() != text:
                stale.append(name)
        else:
            (HERE / name).write_text(text)
            print(f"wrote {HERE / name}")
    if stale:
        print("out of date: " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
