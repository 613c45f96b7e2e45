"""Generate RabbitMQ definitions (vhost, users, permissions, exchanges, queues, bindings) from the topology map.

    python deploy/rabbitmq/generate_definitions.py                 # rewrite the committed files
    python deploy/rabbitmq/generate_definitions.py --vhost t1 --user-prefix t1- \
        --password calls=s3cret --queue-type classic --output -   # a throwaway vhost, to stdout

The committed deploy/rabbitmq/definitions.json (classic queues) and definitions.quorum.json (quorum queues, the
template for Kubernetes: deploy/k8s/README.md) hold hashes of the placeholder password REPLACE_ME, which the
services refuse (services/common/security/secrecy.py): a broker needs definitions generated with --password user=secret
(docker compose: scripts/compose-secrets does it).

Permission rules. RabbitMQ checks plain permissions on resources (configure = declare/delete a queue or exchange;
write = publish to an exchange, or be the destination queue of a binding; read = consume from a queue, or be the
source exchange of a binding) and, on topic exchanges, TOPIC permissions on routing keys (write: the routing key
of a publish; read: the routing key of a binding). Staff never connect to the broker: they come in through the
gateway, whose broker user is the only one that may publish staff RPC requests.
- a service configures only its own queues (rpc-<svc>, its evt-…--<svc>.… queues, its rpc.reply-<svc>-<uuid>
  reply queues), its own <svc>.events exchange and nameko-rpc (nameko declares the RPC exchange with its queue);
  it publishes only to its own exchange — topic: only its own event types — and to nameko-rpc — topic: only the
  operations roles.SERVICE_CALLS entitles it to, and replies to its callers; it reads only its own queues, binds
  rpc-<svc> to nameko-rpc with `<svc>.*` and its reply queues with their own names (topic read allows exactly
  those), and binds its event queues to the exchanges it subscribes to with the event types it handles.
  Foreign event exchanges are NOT configurable: services run with DECLARE_TOPOLOGY=false against a broker that
  loaded these definitions.
- gateway publishes staff operations only (every `<svc>.<op>` some staff role may call, from roles.MATRIX) and
  reads only its own reply queues, bound by their own names (services.common.service.rpc names reply keys after the
  caller, so nobody can bind to another caller's replies); it declares nothing but those queues.
- nobody else may bind to nameko-rpc or read from it; jmdi-monitoring has the `monitoring` tag and no resource
  rights.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import TypedDict

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from services.common.contracts import topology  # noqa: E402
from services.common.messaging import guard  # noqa: E402
from services.common.security import roles  # noqa: E402

DEFAULT_VHOST = "jmdi"
RPC_EXCHANGE = "nameko-rpc"
GATEWAY_USER = "gateway"
MONITORING_USER = "jmdi-monitoring"
NOTHING = "^$"
UUID_RE = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DEV_PASSWORD = "{user}-dev-password"
PLACEHOLDER_PASSWORD = "REPLACE_ME"
RABBITMQ_VERSION = "3.10.8"


def users() -> list[str]:
    return [*topology.SERVICES, GATEWAY_USER, MONITORING_USER]


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


def reply_queue(principal: str) -> str:
    """services.common.service.rpc: a reply queue's name, which is also its routing key on nameko-rpc."""
    return re.escape(f"rpc.reply-{principal}-") + UUID_RE


def staff_operations() -> list[str]:
    """Every `<service>.<operation>` a staff role may call: what the gateway may publish on nameko-rpc."""
    return sorted(op for op, allowed in roles.MATRIX.items() if allowed & set(roles.STAFF_ROLES))


def callers_of(service: str) -> list[str]:
    """The principals that call `service` over RPC, whose reply keys it may publish."""
    return [
        GATEWAY_USER,
        *(
            caller
            for caller, operations in roles.SERVICE_CALLS.items()
            if any(op.startswith(f"{service}.") for op in operations)
        ),
    ]


def service_permissions(service: str) -> dict[str, str]:
    e = re.escape
    own_queues = [e(f"rpc-{service}"), reply_queue(service), *(e(q) for q in consumed_queues(service))]
    own_exchange = e(topology.exchange_name(service))
    rpc = e(RPC_EXCHANGE)
    # declaring a queue whose dead-letter exchange is jmdi.dead-letter takes write on that exchange (RabbitMQ checks
    # it at declaration); only the broker itself ever routes to it
    return {
        "configure": _alternation([own_exchange, rpc, *own_queues]),
        "write": _alternation([own_exchange, rpc, e(guard.DEAD_LETTER_EXCHANGE), *own_queues]),
        "read": _alternation([rpc, *(e(x) for x in subscribed_exchanges(service)), *own_queues]),
    }


def gateway_permissions() -> dict[str, str]:
    rpc, reply = re.escape(RPC_EXCHANGE), reply_queue(GATEWAY_USER)
    return {"configure": _alternation([reply]), "write": _alternation([rpc, reply]), "read": _alternation([rpc, reply])}


def permissions_for(user: str) -> dict[str, str]:
    if user in topology.SERVICES:
        return service_permissions(user)
    if user == GATEWAY_USER:
        return gateway_permissions()
    if user == MONITORING_USER:
        return {"configure": NOTHING, "write": NOTHING, "read": NOTHING}
    raise KeyError(user)


def topic_permissions_for(user: str) -> list[dict]:
    """(exchange, write, read) routing-key rules on every topic exchange the user's plain permissions reach."""
    e = re.escape
    if user == GATEWAY_USER:
        return [
            {
                "exchange": RPC_EXCHANGE,
                "write": _alternation(map(e, staff_operations())),
                "read": _alternation([reply_queue(GATEWAY_USER)]),
            }
        ]
    if user not in topology.SERVICES:
        return []
    calls = roles.SERVICE_CALLS.get(user, ())
    replies = e("rpc.reply-") + "(" + "|".join(map(e, callers_of(user))) + ")-" + UUID_RE
    rpc_write = [*(e(op) for op in calls), replies]
    rpc_read = [e(f"{user}.*"), *([reply_queue(user)] if calls else [])]
    rules = [
        {"exchange": RPC_EXCHANGE, "write": _alternation(rpc_write), "read": _alternation(rpc_read)},
        {
            "exchange": topology.exchange_name(user),
            "write": _alternation(map(e, topology.PRODUCED[user])),
            "read": NOTHING,
        },
    ]
    for producer, event_types in topology.SUBSCRIPTIONS.get(user, {}).items():
        rules.append(
            {"exchange": topology.exchange_name(producer), "write": NOTHING, "read": _alternation(map(e, event_types))}
        )
    return rules


def _queue(name: str, vhost: str, queue_type: str) -> dict:
    """A consumer queue, with the arguments the services declare it with (services/common/messaging/guard.py)."""
    arguments = guard.queue_arguments({"EVENT_QUEUE_TYPE": queue_type})
    return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": arguments}


def _dead_letter_queue(vhost: str, queue_type: str) -> dict:
    return {
        "name": guard.DEAD_LETTER_QUEUE,
        "vhost": vhost,
        "durable": True,
        "auto_delete": False,
        "arguments": guard.dead_letter_queue_arguments({"EVENT_QUEUE_TYPE": queue_type}),
    }


def build(
    vhost: str = DEFAULT_VHOST,
    passwords: dict[str, str] | None = None,
    user_prefix: str = "",
    queue_type: str = "classic",
    default_password: str = DEV_PASSWORD,
) -> dict:
    """Definitions for `vhost`. passwords maps unprefixed user name -> password; missing users get
    default_password (formatted with the unprefixed user name)."""
    if queue_type not in ("classic", "quorum"):
        raise ValueError(queue_type)
    passwords = passwords or {}
    unknown = set(passwords) - set(users())
    if unknown:
        raise ValueError(f"unknown users: {sorted(unknown)}")

    user_defs, permission_defs, topic_defs = [], [], []
    for user in users():
        password = passwords.get(user, default_password.format(user=user))
        name = user_prefix + user
        user_defs.append(
            {
                "name": name,
                "password_hash": password_hash(password, _salt(name, password)),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["monitoring"] if user == MONITORING_USER else [],
                "limits": {},
            }
        )
        permission_defs.append({"user": name, "vhost": vhost, **permissions_for(user)})
        topic_defs += [{"user": name, "vhost": vhost, **rule} for rule in topic_permissions_for(user)]

    exchanges = [
        {
            "name": RPC_EXCHANGE,
            "vhost": vhost,
            "type": "topic",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
    ]
    exchanges += [
        {
            "name": topology.exchange_name(s),
            "vhost": vhost,
            "type": "topic",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for s in topology.SERVICES
    ]
    exchanges.append(
        {
            "name": guard.DEAD_LETTER_EXCHANGE,
            "vhost": vhost,
            "type": "fanout",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
    )

    queues = [_queue(f"rpc-{s}", vhost, queue_type) for s in topology.SERVICES]
    bindings = [
        {
            "source": RPC_EXCHANGE,
            "vhost": vhost,
            "destination": f"rpc-{s}",
            "destination_type": "queue",
            "routing_key": f"{s}.*",
            "arguments": {},
        }
        for s in topology.SERVICES
    ]
    # malformed messages (services/common/messaging/guard.py) are rejected without requeue and land here
    queues.append(_dead_letter_queue(vhost, queue_type))
    bindings.append(
        {
            "source": guard.DEAD_LETTER_EXCHANGE,
            "vhost": vhost,
            "destination": guard.DEAD_LETTER_QUEUE,
            "destination_type": "queue",
            "routing_key": "",
            "arguments": {},
        }
    )
    for consumer, producer, event_type, queue in topology.subscriptions():
        queues.append(_queue(queue, vhost, queue_type))
        bindings.append(
            {
                "source": topology.exchange_name(producer),
                "vhost": vhost,
                "destination": queue,
                "destination_type": "queue",
                "routing_key": event_type,
                "arguments": {},
            }
        )

    return {
        "rabbit_version": RABBITMQ_VERSION,
        "rabbitmq_version": RABBITMQ_VERSION,
        "users": user_defs,
        "vhosts": [{"name": vhost}],
        "permissions": permission_defs,
        "topic_permissions": topic_defs,
        "parameters": [],
        "global_parameters": [],
        "policies": [],
        "queues": queues,
        "exchanges": exchanges,
        "bindings": bindings,
    }


def render(definitions: dict) -> str:
    return json.dumps(definitions, indent=2, sort_keys=False) + "\n"


class Committed(TypedDict):
    """build()'s arguments for a committed file."""

    queue_type: str
    default_password: str


HERE = Path(__file__).resolve().parent
COMMITTED: dict[Path, Committed] = {
    HERE / "definitions.json": {"queue_type": "classic", "default_password": PLACEHOLDER_PASSWORD},
    HERE / "definitions.quorum.json": {"queue_type": "quorum", "default_password": PLACEHOLDER_PASSWORD},
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
    text = render(
        build(
            vhost=args.vhost or DEFAULT_VHOST,
            passwords=passwords,
            user_prefix=args.user_prefix,
            queue_type=args.queue_type,
        )
    )
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
