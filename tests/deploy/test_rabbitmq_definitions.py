"""deploy/rabbitmq: the committed definitions equal the generator's output, follow the topology map, and give
each user least-privilege permissions (checked by evaluating the permission regexes like RabbitMQ does)."""
import json
import re
import uuid

import pytest

from services.common import topology

from tests.deploy.deploy_helpers import DEPLOY, load_module

gd = load_module(DEPLOY / "rabbitmq" / "generate_definitions.py", "jmdi_generate_definitions")
DEFS = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())


def test_committed_files_equal_generator_output():
    for path, options in gd.COMMITTED.items():
        assert path.read_text() == gd.render(gd.build(**options)), f"{path.name}: run {gd.__file__}"


def test_generator_emits_given_vhost_passwords_and_prefix():
    d = gd.build(vhost="throwaway-1", passwords={"calls": "s3cret"}, user_prefix="t1-")
    assert d["vhosts"] == [{"name": "throwaway-1"}]
    assert {q["vhost"] for q in d["queues"]} | {x["vhost"] for x in d["exchanges"]} == {"throwaway-1"}
    assert {p["vhost"] for p in d["permissions"]} == {"throwaway-1"}
    calls = next(u for u in d["users"] if u["name"] == "t1-calls")
    assert calls["password_hash"] != next(u for u in DEFS["users"] if u["name"] == "calls")["password_hash"]
    with pytest.raises(ValueError):
        gd.build(passwords={"nobody": "x"})


def test_password_hash_format_matches_rabbitmq_sha256():
    import base64
    import hashlib
    h = base64.b64decode(gd.password_hash("pw", b"\x01\x02\x03\x04"))
    assert h[:4] == b"\x01\x02\x03\x04" and h[4:] == hashlib.sha256(b"\x01\x02\x03\x04pw").digest()


def test_no_plaintext_passwords():
    text = (DEPLOY / "rabbitmq" / "definitions.json").read_text()
    assert '"password"' not in text and "dev-password" not in text


def test_topology_is_complete():
    names = {q["name"] for q in DEFS["queues"]}
    expected = {q for *_, q in topology.subscriptions()} | {f"rpc-{s}" for s in topology.SERVICES}
    assert names == expected
    assert all(q["durable"] and not q["auto_delete"] for q in DEFS["queues"])
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in DEFS["bindings"]}
    for consumer, producer, event_type, queue in topology.subscriptions():
        assert (f"{producer}.events", queue, event_type) in bindings
    for s in topology.SERVICES:
        assert ("nameko-rpc", f"rpc-{s}", f"{s}.*") in bindings
    assert {x["name"] for x in DEFS["exchanges"]} == {"nameko-rpc"} | {f"{s}.events" for s in topology.SERVICES}
    assert all(x["type"] == "topic" and x["durable"] for x in DEFS["exchanges"])


def test_quorum_variant_declares_quorum_queues():
    quorum = json.loads((DEPLOY / "rabbitmq" / "definitions.quorum.json").read_text())
    assert all(q["arguments"] == {"x-queue-type": "quorum"} for q in quorum["queues"])
    assert all(q["arguments"] == {} for q in DEFS["queues"])


def perms(user):
    return next(p for p in DEFS["permissions"] if p["user"] == user)


def allowed(user, kind, resource):
    # RabbitMQ matches permission regexes unanchored (re:run); ours carry their own ^...$ anchors.
    return re.search(perms(user)[kind], resource) is not None


REPLY = str(uuid.uuid4())


@pytest.mark.parametrize("service", topology.SERVICES)
def test_service_may_publish_only_to_own_exchange_and_rpc(service):
    assert allowed(service, "write", f"{service}.events")
    assert allowed(service, "write", "nameko-rpc")
    for other in topology.SERVICES:
        if other != service:
            assert not allowed(service, "write", f"{other}.events")
            assert not allowed(service, "configure", f"{other}.events")
    assert not allowed(service, "write", "amq.default") and not allowed(service, "write", "")


@pytest.mark.parametrize("service", topology.SERVICES)
def test_service_consumes_only_its_own_queues(service):
    own = {q for c, _, _, q in topology.subscriptions() if c == service} | {f"rpc-{service}",
                                                                          f"rpc.reply-{service}-{REPLY}"}
    others = ({q for c, _, _, q in topology.subscriptions() if c != service}
              | {f"rpc-{s}" for s in topology.SERVICES if s != service}
              | {f"rpc.reply-{s}-{REPLY}" for s in topology.SERVICES if s != service}
              | {f"rpc.reply-standalone_rpc_proxy-{REPLY}"})
    for q in own:
        assert allowed(service, "read", q) and allowed(service, "write", q) and allowed(service, "configure", q)
    for q in others:
        assert not allowed(service, "read", q), q
        assert not allowed(service, "configure", q), q
        assert not allowed(service, "write", q), q


@pytest.mark.parametrize("service", topology.SERVICES)
def test_service_binds_only_to_exchanges_it_subscribes_to(service):
    subscribed = set(topology.SUBSCRIPTIONS.get(service, {}))
    for producer in topology.SERVICES:
        assert allowed(service, "read", f"{producer}.events") == (producer in subscribed), producer


def test_examples_from_the_brief():
    assert not allowed("calls", "read", "rpc-grants")
    assert not allowed("calls", "read", "evt-calls-call_opened--reporting.on_call_opened")
    assert not allowed("calls", "write", "reporting.events")
    assert allowed("reporting", "read", "evt-grants-tranche_paid--reporting.on_tranche_paid")
    assert not allowed("reporting", "read", "evt-grants-tranche_paid--notifications.on_tranche_paid")
    # anchored: a prefix or suffix trick does not match
    assert not allowed("calls", "write", "calls.events.evil") and not allowed("calls", "write", "xcalls.events")
    assert not allowed("calls", "read", f"rpc.reply-calls-{REPLY}x")


def test_staff_and_monitoring_users():
    assert allowed("jmdi-staff", "write", "nameko-rpc")
    assert allowed("jmdi-staff", "read", f"rpc.reply-standalone_rpc_proxy-{REPLY}")
    for s in topology.SERVICES:
        assert not allowed("jmdi-staff", "write", f"{s}.events")
        assert not allowed("jmdi-staff", "read", f"rpc-{s}")
    mon = perms("jmdi-monitoring")
    assert mon["configure"] == mon["write"] == mon["read"] == "^$"
    tags = {u["name"]: u["tags"] for u in DEFS["users"]}
    assert tags["jmdi-monitoring"] == ["monitoring"]
    assert not any(t for name, t in tags.items() if name != "jmdi-monitoring"), "no administrator tags"
    assert set(tags) == {*topology.SERVICES, "jmdi-staff", "jmdi-monitoring"}


def test_every_permission_regex_is_anchored_and_compiles():
    for p in DEFS["permissions"]:
        for kind in ("configure", "write", "read"):
            assert p[kind].startswith("^") and p[kind].endswith("$")
            re.compile(p[kind])


def test_broker_config_loads_definitions_and_plugins():
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in conf
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
