"""Forwarding one admitted request to the service that owns the operation, as a nameko RPC, with a deadline.

nameko's in-service RpcProxy waits for a reply forever; the gateway cannot. `ServiceCaller` publishes the
request exactly as RpcProxy does (exchange `nameko-rpc`, routing key `<service>.<operation>`), its replies coming
to `rpc.reply-gateway-<uuid>` bound by that same name (the kit's NamedReplyListener: the broker's topic
permissions let the gateway bind nothing else), carrying the caller's own token in the context data
(`authorization`), so the service checks the role matrix itself. Then it waits at most the
operation's timeout:
- no queue bound for the service (never started): ServiceUnavailable (503) at once;
- the broker unreachable: ServiceUnavailable (503);
- no reply in time: NoAnswer (504). The request message expires in the queue at the same deadline, so a request
  the gateway gave up on is not run later by a service that comes back; one already running may still finish.
The service's typed errors come back as themselves; anything else is an internal failure (500).

Requests are published by the kit's `Producers` (kept from one request to the next, services/common/messaging/
producers.py), with publisher confirms and `mandatory` as nameko's Publisher, and transient.
"""

from __future__ import annotations

import logging
import uuid

import eventlet
from kombu.entity import TRANSIENT_DELIVERY_MODE
from kombu.exceptions import ChannelError, OperationalError
from nameko.amqp.publish import UndeliverableMessage
from nameko.exceptions import RemoteError, deserialize
from nameko.extensions import DependencyProvider
from nameko.messaging import HeaderEncoder
from nameko.rpc import get_rpc_exchange

from services.common.messaging.producers import Producers
from services.common.service.rpc import NamedReplyListener
from services.common.values.problems import NoAnswer, ServiceUnavailable, SystemFailure

log = logging.getLogger(__name__)

# a broker that does not take the message within a few seconds is as good as away for a person waiting
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 1}


class ServiceCaller(DependencyProvider, HeaderEncoder):
    reply_listener = NamedReplyListener()

    def setup(self):
        config = self.container.config
        self.exchange = get_rpc_exchange(config)
        self.producers = Producers(config["AMQP_URI"], config.get("AMQP_SSL"))

    def stop(self):
        self.producers.close()

    def kill(self):
        self.producers.close()

    def get_dependency(self, worker_ctx):
        return Forwarder(self, worker_ctx)

    def call(self, worker_ctx, service: str, operation: str, payload: dict, token: str, timeout: float):
        correlation_id = str(uuid.uuid4())
        reply_event = self.reply_listener.get_reply_event(correlation_id)
        headers = self.get_message_headers(worker_ctx)
        headers[self._get_header_name("authorization")] = token
        try:
            self._publish(
                {"args": [payload], "kwargs": {}},
                routing_key=f"{service}.{operation}",
                reply_to=self.reply_listener.routing_key,
                correlation_id=correlation_id,
                headers=headers,
                expiration=timeout,
            )
        except UndeliverableMessage:
            self._forget(correlation_id)
            raise ServiceUnavailable(f"the {service} service is not running (nothing receives its requests)") from None
        except (OperationalError, OSError) as exc:
            self._forget(correlation_id)
            log.warning("broker unreachable forwarding %s.%s: %s", service, operation, exc)
            raise ServiceUnavailable("the message broker does not answer") from None
        body = None
        with eventlet.Timeout(timeout, False):
            body = reply_event.wait()
        if body is None:
            self._forget(correlation_id)
            raise NoAnswer(f"the {service} service did not answer within {timeout:g} s")
        error = body.get("error")
        if error:
            raised = deserialize(error)
            if isinstance(raised, RemoteError):
                log.error("%s.%s failed: %s", service, operation, raised)
                raise SystemFailure() from None
            raise raised
        return body.get("result")

    def _publish(self, body: dict, **properties):
        """As nameko's Publisher (mandatory, confirmed, retried by PUBLISH_RETRY), but transient: a request lives
        at most its timeout and its reply queue goes with the gateway's connection, so writing it to the broker's
        disk (nameko's persistent default) bought nothing and cost RabbitMQ a sixth of its CPU per submission."""
        try:
            with self.producers.acquire() as producer:
                producer.publish(
                    body,
                    exchange=self.exchange,
                    delivery_mode=TRANSIENT_DELIVERY_MODE,
                    mandatory=True,
                    serializer="json",
                    retry=True,
                    retry_policy=PUBLISH_RETRY,
                    **properties,
                )
        except ChannelError as exc:
            if "NO_ROUTE" in str(exc):
                raise UndeliverableMessage() from None
            raise

    def _forget(self, correlation_id: str):
        # nameko's ReplyListener keeps a waiter per request until its reply comes; one that will never come
        # (or come too late) must not stay behind
        self.reply_listener._reply_events.pop(correlation_id, None)


class Forwarder:
    """What a gateway worker sees: `call(service, operation, payload, token, timeout)`."""

    def __init__(self, caller: ServiceCaller, worker_ctx):
        self._caller, self._worker_ctx = caller, worker_ctx

    def call(self, service: str, operation: str, payload: dict, token: str, timeout: float):
        return self._caller.call(self._worker_ctx, service, operation, payload, token, timeout)
