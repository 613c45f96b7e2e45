"""The database of a nameko service: a unit of work for each worker, and the outbox relay running beside it.

nameko replies to an RPC (and acks an event) *before* dependency providers see the worker's result, so a
commit in `worker_result` could confirm a change that then fails to commit. The kit's entrypoint wrappers
(`operation`, `handles`) therefore commit inside the worker; the provider only rolls back what a worker left.
"""

from nameko.extensions import DependencyProvider

from ..messaging.inbox import refresh_dead_letter_gauge
from ..messaging.outbox import OutboxRelay
from ..storage.db import DatabaseCore, UnitOfWork


class Database(DependencyProvider):
    """Gives each worker a UnitOfWork on the service database and runs the outbox relay beside the service."""

    def setup(self):
        config = self.container.config
        self.core = DatabaseCore(
            config["DATABASE_URL"], self.container.service_name, pool_size=int(config.get("max_workers", 10)) + 2
        )
        self.relay = OutboxRelay(
            self.core,
            config["AMQP_URI"],
            sweep_seconds=float(config.get("OUTBOX_SWEEP_SECONDS", 2)),
            drain_gap_seconds=float(config.get("OUTBOX_DRAIN_GAP_SECONDS", 0.03)),
        )
        self.core.on_commit_with_events.append(self.relay.wake)

    def start(self):
        refresh_dead_letter_gauge(self.core)  # letters held from before a restart still alert
        self.container.spawn_managed_thread(self.relay.run, identifier="outbox-relay")
        self.container.spawn_managed_thread(self.relay.listen, identifier="outbox-listener")

    def stop(self):
        self.relay.stop()
        self.core.dispose()

    def kill(self):
        self.relay.stop()

    def get_dependency(self, worker_ctx):
        correlation = "/".join(worker_ctx.call_id_stack) if worker_ctx.call_id_stack else None
        return self.core.unit_of_work(operation=worker_ctx.entrypoint.method_name, correlation_id=correlation)

    def worker_teardown(self, worker_ctx):
        # whatever a failed or refused worker left uncommitted is undone here
        uow = getattr(worker_ctx.service, self.attr_name, None)
        if isinstance(uow, UnitOfWork):
            uow.rollback()
