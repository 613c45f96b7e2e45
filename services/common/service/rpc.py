"""RPC on the broker with replies routed by the caller's name, and calls from one service to another as itself.

nameko routes a reply by the request's `reply_to`, which it makes a bare UUID: whoever may bind to nameko-rpc could
bind a queue to another caller's reply key (learnt from a request it received) and read its replies. Here the
reply routing key is the reply queue's own name, `rpc.reply-<caller>-<uuid>`, so the broker's topic permissions
let each principal bind only its own replies and publish replies only to its callers
(deploy/rabbitmq/generate_definitions.py). Every RPC client of the system uses one of these:

- `ServiceClient("grants")`: a dependency calling another service's operations as this service — each worker's
  calls carry a fresh short-lived token signed with the service's own key (audience: the callee);
  `client.call("ledger", timeout, programme_id=...)` waits at most `timeout` seconds (NoAnswerInTime after).
- `NamedReplyListener`: the reply listener behind it, for any other in-service caller (the gateway's ServiceCaller,
  which forwards the staff member's own token).
- `ClusterClient(config, caller, token)`: nameko's standalone cluster proxy with such a reply queue, for code
  outside a nameko container (tools, tests).
"""

import uuid

import eventlet
from kombu import Exchange, Queue
from nameko.constants import RPC_EXCHANGE_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TTL, MethodProxy, ReplyListener, ServiceProxy
from nameko.standalone.rpc import ClusterRpcProxy, SingleThreadedReplyListener, StandaloneProxyBase

from ..messaging.guard import GuardedQueueConsumer
from ..runtime.config import as_bool
from ..security.auth import ServiceSigner


def reply_routing_key(caller: str, unique: uuid.UUID) -> str:
    """The reply queue's name, which is also its routing key on nameko-rpc."""
    return RPC_REPLY_QUEUE_TEMPLATE.format(caller, unique)


def _listen_on_named_queue(listener):
    config = listener.container.config
    name = reply_routing_key(listener.container.service_name, uuid.uuid4())
    # with broker definitions the exchange exists, and a least-privilege user may not (re)declare it
    exchange = Exchange(
        config.get(RPC_EXCHANGE_CONFIG_KEY, "nameko-rpc"),
        durable=True,
        type="topic",
        no_declare=not as_bool(config.get("DECLARE_TOPOLOGY", True)),
    )
    listener.routing_key = name
    # transient: on a cluster, a durable reply queue whose node died could not be declared again anywhere (404
    # "home node down") and would stop the whole consumer of the process; a transient one goes with its node and
    # is declared afresh on the node the listener reconnects to
    listener.queue = Queue(
        name,
        exchange=exchange,
        routing_key=name,
        durable=False,
        auto_delete=True,
        queue_arguments={"x-expires": RPC_REPLY_QUEUE_TTL},
    )
    listener.renew_reply_queue = lambda: _renew_reply_queue(listener)
    listener.queue_consumer.register_provider(listener)


def _renew_reply_queue(listener):
    """A new reply queue name after the connection was lost (GuardedQueueConsumer calls it on every reconnect).
    On a cluster the old queue's record outlives its dead node for a while: declaring the same name again raced
    its removal (Queue.bind 404 NOT_FOUND right after the declare), and a reply queue left unconsumed expires
    (x-expires), so later replies were routed nowhere and every caller waited to its timeout. A fresh name has
    no history. Replies to requests sent before the loss are lost either way (the queue went with the
    connection: auto-delete); callers read `routing_key` when they publish, so new requests use the new name."""
    name = reply_routing_key(listener.container.service_name, uuid.uuid4())
    queue = listener.queue
    listener.queue = Queue(
        name,
        exchange=queue.exchange,
        routing_key=name,
        durable=False,
        auto_delete=True,
        queue_arguments=dict(queue.queue_arguments or {}),
    )
    listener.routing_key = name
    return name


class NamedReplyListener(ReplyListener):
    """Behind the message guard (services/common/messaging/guard.py): a malformed reply is dropped, logged and
    counted. Replies come without acknowledgements: a reply is for this process alone, and its queue goes with
    the connection, so an ack would only cost a frame each way."""

    queue_consumer = GuardedQueueConsumer()
    no_ack = True

    def setup(self):
        _listen_on_named_queue(self)


class _StandaloneNamedReplyListener(SingleThreadedReplyListener):
    def setup(self):
        _listen_on_named_queue(self)


class ClusterClient(ClusterRpcProxy):
    """`ClusterClient(config, "gateway", context_data={"authorization": token}).start().grants.list_grants()`."""

    def __init__(self, config: dict, caller: str, context_data=None, timeout=None):
        self.ServiceContainer = type(
            "NamedContainer", (StandaloneProxyBase.ServiceContainer,), {"service_name": caller}
        )
        super().__init__(
            config, context_data=context_data, timeout=timeout, reply_listener_cls=_StandaloneNamedReplyListener
        )


class _WithToken:
    """The worker context as an outgoing call sees it: the same, with the token the call must carry."""

    def __init__(self, worker_ctx, token: str):
        self._worker_ctx = worker_ctx
        self._token = token

    def __getattr__(self, name):
        return getattr(self._worker_ctx, name)

    @property
    def context_data(self):
        data = self._worker_ctx.context_data  # a copy: the worker's own context keeps its token
        data["authorization"] = self._token
        return data


class NoAnswerInTime(Exception):
    """The other service did not answer within the caller's timeout (it may still complete the call)."""


class _SignedServiceProxy(ServiceProxy):
    """Each method call signs a fresh token, so a long-running worker never calls with an expired one."""

    def __init__(self, worker_ctx, target, reply_listener, signer: ServiceSigner):
        super().__init__(worker_ctx, target, reply_listener)
        self.signer = signer

    def __getattr__(self, name):
        as_service = _WithToken(self.worker_ctx, self.signer.token_for(self.service_name))
        return MethodProxy(as_service, self.service_name, name, self.reply_listener, **self.options)

    def call(self, operation: str, timeout: float, **arguments):
        """`operation(**arguments)`, waiting at most `timeout` seconds for the answer (nameko's in-service proxy
        has no timeout of its own); the callee's typed errors are raised as they are."""
        reply = getattr(self, operation).call_async(**arguments)
        with eventlet.Timeout(timeout, False):
            return reply.result()
        raise NoAnswerInTime(f"{self.service_name}.{operation} did not answer within {timeout:g} s")


class ServiceClient(DependencyProvider):
    """Calls `target`'s operations as this service (role `service:<name>`; roles.SERVICE_CALLS says which), with
    a timeout through `.call(operation, timeout, **arguments)`."""

    rpc_reply_listener = NamedReplyListener()

    def __init__(self, target: str):
        self.target = target

    def setup(self):
        self.signer = ServiceSigner.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return _SignedServiceProxy(worker_ctx, self.target, self.rpc_reply_listener, self.signer)
