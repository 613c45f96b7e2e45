"""deploy/rabbitmq: the committed definitions equal the generator's output, follow the topology map, and give
each user least-privilege permissions (checked by evaluating the permission regexes like RabbitMQ does)."""

import json
import re
import uuid

import pytest

from services.common.contracts import topology
from services.common.messaging.guard import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE

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


def test_the_committed_definitions_hold_only_the_placeholder_password_the_services_refuse():
    import base64
    from services.common.security.secrecy import weakness
    from tests.deploy.deploy_helpers import load_module

    gd = load_module(DEPLOY / "rabbitmq" / "generate_definitions.py", "jmdi_generate_definitions_p")
    for name in ("definitions.json", "definitions.quorum.json"):
        for user in json.loads((DEPLOY / "rabbitmq" / name).read_text())["users"]:
            salt = base64.b64decode(user["password_hash"])[:4]
            assert gd.password_hash(gd.PLACEHOLDER_PASSWORD, salt) == user["password_hash"], (name, user["name"])
    assert weakness(gd.PLACEHOLDER_PASSWORD) == "a known default"


def test_topology_is_complete():
    names = {q["name"] for q in DEFS["queues"]}
    expected = {q for *_, q in topology.subscriptions()} | {f"rpc-{s}" for s in topology.SERVICES}
    assert names == expected | {DEAD_LETTER_QUEUE}
    assert all(q["durable"] and not q["auto_delete"] for q in DEFS["queues"])
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in DEFS["bindings"]}
    for consumer, producer, event_type, queue in topology.subscriptions():
        assert (f"{producer}.events", queue, event_type) in bindings
    for s in topology.SERVICES:
        assert ("nameko-rpc", f"rpc-{s}", f"{s}.*") in bindings
    assert {x["name"] for x in DEFS["exchanges"]} == {"nameko-rpc", DEAD_LETTER_EXCHANGE} | {
        f"{s}.events" for s in topology.SERVICES
    }
    assert all(
        x["type"] == ("fanout" if x["name"] == DEAD_LETTER_EXCHANGE else "topic") and x["durable"]
        for x in DEFS["exchanges"]
    )
    assert (DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, "") in bindings


def test_every_consumer_queue_dead_letters_what_its_consumer_refuses():
    """services/common/messaging/guard.py rejects malformed messages without requeue: the broker moves them to the bounded
    jmdi.dead-letters queue; the services declare their queues with the same arguments."""
    from services.common.messaging.guard import queue_arguments

    consumers = [q for q in DEFS["queues"] if q["name"] != DEAD_LETTER_QUEUE]
    assert all(
        q["arguments"] == queue_arguments({}) == {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE} for q in consumers
    )
    (letters,) = [q for q in DEFS["queues"] if q["name"] == DEAD_LETTER_QUEUE]
    assert letters["arguments"]["x-max-length"] > 0 and letters["arguments"]["x-max-length-bytes"] > 0
    for service in topology.SERVICES:  # declaring such a queue takes write on the dead-letter exchange
        assert allowed(service, "write", DEAD_LETTER_EXCHANGE)
        assert not allowed(service, "configure", DEAD_LETTER_EXCHANGE)
        assert not allowed(service, "read", DEAD_LETTER_QUEUE)


def test_the_broker_refuses_messages_over_the_size_limit():
    from services.common.messaging.guard import DEFAULT_MAX_MESSAGE_BYTES

    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert f"max_message_size = {DEFAULT_MAX_MESSAGE_BYTES}" in conf
    k8s = (DEPLOY / "k8s" / "rabbitmq.yaml").read_text()
    assert f"max_message_size = {DEFAULT_MAX_MESSAGE_BYTES}" in k8s


def test_quorum_variant_declares_quorum_queues():
    quorum = json.loads((DEPLOY / "rabbitmq" / "definitions.quorum.json").read_text())
    assert all(q["arguments"]["x-queue-type"] == "quorum" for q in quorum["queues"])
    assert all("x-queue-type" not in q["arguments"] for q in DEFS["queues"])


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
    own = {q for c, _, _, q in topology.subscriptions() if c == service} | {
        f"rpc-{service}",
        f"rpc.reply-{service}-{REPLY}",
    }
    others = (
        {q for c, _, _, q in topology.subscriptions() if c != service}
        | {f"rpc-{s}" for s in topology.SERVICES if s != service}
        | {f"rpc.reply-{s}-{REPLY}" for s in topology.SERVICES if s != service}
        | {f"rpc.reply-standalone_rpc_proxy-{REPLY}"}
    )
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


def test_gateway_and_monitoring_users():
    assert allowed("gateway", "write", "nameko-rpc") and allowed("gateway", "read", "nameko-rpc")
    assert allowed("gateway", "read", f"rpc.reply-gateway-{REPLY}")
    assert not allowed("gateway", "configure", "nameko-rpc"), "the gateway declares (or deletes) no exchange"
    for s in topology.SERVICES:
        assert not allowed("gateway", "write", f"{s}.events") and not allowed("gateway", "read", f"{s}.events")
        assert not allowed("gateway", "read", f"rpc-{s}") and not allowed("gateway", "configure", f"rpc-{s}")
        assert not allowed("gateway", "read", f"rpc.reply-{s}-{REPLY}")
    mon = perms("jmdi-monitoring")
    assert mon["configure"] == mon["write"] == mon["read"] == "^$"
    tags = {u["name"]: u["tags"] for u in DEFS["users"]}
    assert tags["jmdi-monitoring"] == ["monitoring"]
    assert not any(t for name, t in tags.items() if name != "jmdi-monitoring"), "no administrator tags"
    assert set(tags) == {*topology.SERVICES, "gateway", "jmdi-monitoring"}, "no staff user on the broker"


def topic_allowed(user, exchange, kind, routing_key):
    """RabbitMQ's rule: without a topic permission for (user, exchange) every routing key is allowed."""
    rules = [t for t in DEFS["topic_permissions"] if t["user"] == user and t["exchange"] == exchange]
    return not rules or any(re.search(rule[kind], routing_key) for rule in rules)


def test_every_principal_that_reaches_nameko_rpc_is_limited_by_routing_key():
    for p in DEFS["permissions"]:
        if re.search(p["read"], "nameko-rpc") or re.search(p["write"], "nameko-rpc"):
            assert [t for t in DEFS["topic_permissions"] if t["user"] == p["user"] and t["exchange"] == "nameko-rpc"]


def test_no_one_but_a_service_can_bind_to_read_rpc_requests():
    requests = ("#", "*.*", "grants.*", "grants.approve_payment", "calls.#", f"rpc.reply-gateway-{REPLY}")
    for user in ("gateway", "jmdi-monitoring"):
        for key in requests[:-1]:
            assert not (allowed(user, "read", "nameko-rpc") and topic_allowed(user, "nameko-rpc", "read", key)), (
                user,
                key,
            )
    for service in topology.SERVICES:
        assert topic_allowed(service, "nameko-rpc", "read", f"{service}.*")
        for key in ("#", "*.*", *(f"{o}.*" for o in topology.SERVICES if o != service), f"rpc.reply-gateway-{REPLY}"):
            assert not topic_allowed(service, "nameko-rpc", "read", key), (service, key)


def test_the_gateway_publishes_staff_operations_only():
    assert topic_allowed("gateway", "nameko-rpc", "write", "grants.approve_payment")
    assert topic_allowed("gateway", "nameko-rpc", "write", "calls.submit_proposal")
    for key in ("grants.nonexistent", "grants.approve_payment.x", f"rpc.reply-reporting-{REPLY}", "grants.*"):
        assert not topic_allowed("gateway", "nameko-rpc", "write", key), key


def test_a_service_publishes_only_its_entitled_calls_and_replies_to_its_callers():
    assert topic_allowed("reporting", "nameko-rpc", "write", "grants.ledger")
    assert topic_allowed("notifications", "nameko-rpc", "write", "reporting.get_report")
    for service in topology.SERVICES:
        for key in ("grants.approve_payment", "calls.open_call", "reporting.rebuild_projections"):
            assert not topic_allowed(service, "nameko-rpc", "write", key), (service, key)
        assert topic_allowed(service, "nameko-rpc", "write", f"rpc.reply-gateway-{REPLY}")
    assert topic_allowed("grants", "nameko-rpc", "write", f"rpc.reply-reporting-{REPLY}")
    assert not topic_allowed("calls", "nameko-rpc", "write", f"rpc.reply-reporting-{REPLY}")
    assert not topic_allowed("grants", "nameko-rpc", "write", f"rpc.reply-notifications-{REPLY}")


@pytest.mark.parametrize("service", topology.SERVICES)
def test_a_service_publishes_only_its_own_event_types_and_binds_only_what_it_handles(service):
    exchange = f"{service}.events"
    for event_type in topology.PRODUCED[service]:
        assert topic_allowed(service, exchange, "write", event_type)
    for other, event_types in topology.PRODUCED.items():
        if other != service:
            assert not any(topic_allowed(service, exchange, "write", t) for t in event_types), other
    for producer, handled in topology.SUBSCRIPTIONS.get(service, {}).items():
        for event_type in topology.PRODUCED[producer]:
            assert topic_allowed(service, f"{producer}.events", "read", event_type) == (event_type in handled)
        assert not topic_allowed(service, f"{producer}.events", "read", "#")


def test_every_permission_regex_is_anchored_and_compiles():
    for p in DEFS["permissions"] + DEFS["topic_permissions"]:
        for kind in ("configure", "write", "read"):
            if kind in p:
                assert p[kind].startswith("^") and p[kind].endswith("$")
                re.compile(p[kind])


def test_broker_config_loads_definitions_and_plugins():
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in conf
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
