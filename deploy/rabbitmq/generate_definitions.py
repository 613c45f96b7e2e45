"""Generate RabbitMQ definitions (vhost, users, permissions, exchanges, queues, bindings) from the topology map.

    python deploy/rabbitmq/generate_definitions.py                 # rewrite the committed files
    python deploy/rabbitmq/generate_definitions.py --vhost t1 --user-prefix t1- \
        --password calls=s3cret --queue-type classic --output -   # a throwaway vhost, to stdout

The committed deploy/rabbitmq/definitions.json (compose, classic queues) holds password hashes of the DEVELOPMENT
passwords "<user>-dev-password" (e.g. calls-dev-password). They are public: replace them in any shared or
production broker by regenerating with --password user=secret (or change them with rabbitmqctl change_password).
deploy/rabbitmq/definitions.quorum.json is the same topology with quorum queues and REPLACE_ME placeholder
passwords; it is the template for Kubernetes (see deploy/k8s/README.md).

Permission rules (RabbitMQ checks: configure = declare/delete a queue or exchange; write = publish to an exchange,
or be the destination queue of a binding; read = consume from a queue, or be the source exchange of a binding):
- a service configures only its own queues (rpc-<svc>, its evt-…--<svc>.… queues, its rpc.reply-<svc>-<uuid>
  reply queues), its own <svc>.events exchange and nameko-rpc (nameko always (re)declares the RPC exchange);
- it writes (publishes) only to its own <svc>.events exchange and to nameko-rpc, plus its own queues (binding);
- it reads (consumes) only its own queues, and reads (binds from) nameko-rpc and the exchanges of the services it
  subscribes to.  Foreign event exchanges are therefore NOT configurable: services must run with
  DECLARE_TOPOLOGY=false (nameko DECLARE_EVENT_EXCHANGES: false) against a broker that loaded these definitions.
- jmdi-staff (the CLI's standalone RPC proxy) may only publish RPC requests and use its own reply queues.
- jmdi-monitoring has the `monitoring` tag and access to the vhost with no resource rights.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from services.common import topology  # noqa: E402

DEFAULT_VHOST = "jmdi"
RPC_EXCHANGE = "nameko-rpc"
STAFF_USER = "jmdi-staff"
MONITORING_USER = "jmdi-monitoring"
STAFF_REPLY_PREFIX = "standalone_rpc_proxy"
UUID_RE = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DEV_PASSWORD = "{user}-dev-password"
PLACEHOLDER_PASSWORD = "REPLACE_ME"
RABBITMQ_VERSION = "3.10.8"


def users() -> list[str]:
    return [*topology.SERVICES, STAFF_USER, MONITORING_USER]


def password_hash(password: str, salt: bytes) -> str:
    """rabbit_password_hashing_sha256: base64(salt ++ sha256(salt ++ utf8(password))), 4-byte salt."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def _salt(user: str, password: str) -> bytes:
    # Deterministic so the generated file is reproducible; depends on the password so equal passwords of
    # different users still hash differently.
    return hashlib.sha256(f"jmdi-definitions:{user}:{password}".encode()).digest()[:4]


def _alternation(names) -> str:
    return "^(" + "|".join(names) + ")$"


def consumed_queues(service: str) -> list[str]:
    return [queue for consumer, _, _, queue in topology.subscriptions() if consumer == service]


def subscribed_exchanges(service: str) -> list[str]:
    return [topology.exchange_name(p) for p in topology.SUBSCRIPTIONS.get(service, {})]


def service_permissions(service: str) -> dict[str, str]:
    e = re.escape
    own_queues = [e(f"rpc-{service}"), e(f"rpc.reply-{service}-") + UUID_RE,
                  *(e(q) for q in consumed_queues(service))]
    own_exchange = e(topology.exchange_name(service))
    rpc = e(RPC_EXCHANGE)
    return {
        "configure": _alternation([own_exchange, rpc, *own_queues]),
        "write": _alternation([own_exchange, rpc, *own_queues]),
        "read": _alternation([rpc, *(e(x) for x in subscribed_exchanges(service)), *own_queues]),
    }


def staff_permissions() -> dict[str, str]:
    reply = re.escape(f"rpc.reply-{STAFF_REPLY_PREFIX}-") + UUID_RE
    rpc = re.escape(RPC_EXCHANGE)
    return {"configure": _alternation([rpc, reply]), "write": _alternation([rpc, reply]),
            "read": _alternation([rpc, reply])}


def permissions_for(user: str) -> dict[str, str]:
    if user in topology.SERVICES:
        return service_permissions(user)
    if user == STAFF_USER:
        return staff_permissions()
    if user == MONITORING_USER:
        return {"configure": "^$", "write": "^$", "read": "^$"}
    raise KeyError(user)


def _queue(name: str, vhost: str, queue_type: str) -> dict:
    arguments = {"x-queue-type": "quorum"} if queue_type == "quorum" else {}
    return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": arguments}


def build(vhost: str = DEFAULT_VHOST, passwords: dict[str, str] | None = None, user_prefix: str = "",
          queue_type: str = "classic", default_password: str = DEV_PASSWORD) -> dict:
    """Definitions for `vhost`. passwords maps unprefixed user name -> password; missing users get
    default_password (formatted with the unprefixed user name)."""
    if queue_type not in ("classic", "quorum"):
        raise ValueError(queue_type)
    passwords = passwords or {}
    unknown = set(passwords) - set(users())
    if unknown:
        raise ValueError(f"unknown users: {sorted(unknown)}")

    user_defs, permission_defs = [], []
    for user in users():
        password = passwords.get(user, default_password.format(user=user))
        name = user_prefix + user
        user_defs.append({
            "name": name,
            "password_hash": password_hash(password, _salt(name, password)),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": ["monitoring"] if user == MONITORING_USER else [],
            "limits": {},
        })
        permission_defs.append({"user": name, "vhost": vhost, **permissions_for(user)})

    exchanges = [{"name": RPC_EXCHANGE, "vhost": vhost, "type": "topic", "durable": True,
                  "auto_delete": False, "internal": False, "arguments": {}}]
    exchanges += [{"name": topology.exchange_name(s), "vhost": vhost, "type": "topic", "durable": True,
                   "auto_delete": False, "internal": False, "arguments": {}} for s in topology.SERVICES]

    queues = [_queue(f"rpc-{s}", vhost, queue_type) for s in topology.SERVICES]
    bindings = [{"source": RPC_EXCHANGE, "vhost": vhost, "destination": f"rpc-{s}", "destination_type": "queue",
                 "routing_key": f"{s}.*", "arguments": {}} for s in topology.SERVICES]
    for consumer, producer, event_type, queue in topology.subscriptions():
        queues.append(_queue(queue, vhost, queue_type))
        bindings.append({"source": topology.exchange_name(producer), "vhost": vhost, "destination": queue,
                         "destination_type": "queue", "routing_key": event_type, "arguments": {}})

    return {
        "rabbit_version": RABBITMQ_VERSION,
        "rabbitmq_version": RABBITMQ_VERSION,
        "users": user_defs,
        "vhosts": [{"name": vhost}],
        "permissions": permission_defs,
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [],
        "policies": [],
        "queues": queues,
        "exchanges": exchanges,
        "bindings": bindings,
    }


def render(definitions: dict) -> str:
    return json.dumps(definitions, indent=2, sort_keys=False) + "\n"


HERE = Path(__file__).resolve().parent
COMMITTED = {
    HERE / "definitions.json": dict(queue_type="classic"),
    HERE / "definitions.quorum.json": dict(queue_type="quorum", default_password=PLACEHOLDER_PASSWORD),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vhost")
    parser.add_argument("--user-prefix", default="")
    parser.add_argument("--password", action="append", default=[], metavar="USER=PASSWORD")
    parser.add_argument("--queue-type", choices=("classic", "quorum"), default="classic")
    parser.add_argument("--output", help="file, or - for stdout")
    args = parser.parse_args(argv)
    if args.vhost is None and args.output is None and not args.password and not args.user_prefix:
        for path, options in COMMITTED.items():
            path.write_text(render(build(**options)))
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    passwords = dict(item.split("=", 1) for item in args.password)
    text = render(build(vhost=args.vhost or DEFAULT_VHOST, passwords=passwords, user_prefix=args.user_prefix,
                        queue_type=args.queue_type))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
