"""The kit on its own, against a real database (SQLite and PostgreSQL) and the real broker: a fresh database per
test, a fresh vhost per module, and a ledger of tranches paid with NO uniqueness on it — so an event applied
twice shows as two rows, which no constraint would have stopped."""

import json
import threading
from datetime import date
from decimal import Decimal

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import Column, MetaData, Numeric, String, Table, func, insert, select

from services.common.contracts.events import make_event
from services.common.messaging import crashpoints
from services.common.storage.db import DatabaseCore
from services.common.storage.tables import Id, kit_metadata
from tests.support.infra import Broker, Postgres, run_id

effects_metadata = MetaData()
# the consumer's own change: one row per tranche it was told of; deliberately no unique key
tranche_ledger = Table(
    "tranche_ledger",
    effects_metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("payment_id", String(60), nullable=False),
    Column("amount", Numeric(14, 2), nullable=False),
)


class SimulatedCrash(BaseException):
    """What a crash point raises in a test process instead of ending it (nothing after it runs)."""


@pytest.fixture
def crash_at(monkeypatch, tmp_path):
    """Arm crash points in this process: they raise SimulatedCrash, once each."""

    def arm(*points):
        monkeypatch.setenv("JMDI_TEST_MODE", "true")
        monkeypatch.setenv("JMDI_TEST_CRASH_AT", ",".join(points))
        monkeypatch.setenv("JMDI_TEST_CRASH_MARKERS", str(tmp_path))

        def crash():
            raise SimulatedCrash()

        monkeypatch.setattr(crashpoints, "crash", crash)

    return arm


class Databases:
    """make(service) -> a DatabaseCore with the kit's tables and the tranche ledger; all dropped afterwards."""

    def __init__(self, kind: str, folder):
        self.kind, self.folder, self.made = kind, folder, []

    def __call__(self, service: str) -> DatabaseCore:
        if self.kind == "sqlite":
            core, name = DatabaseCore(f"sqlite:///{self.folder / (service + '.db')}", service), None
        else:
            name = f"jmdi_kit_{run_id()}_{service}"
            core = DatabaseCore(Postgres().create_database(name), service)
        kit_metadata.create_all(core.engine)
        effects_metadata.create_all(core.engine)
        self.made.append((core, name))
        return core

    def drop(self):
        for core, name in self.made:
            core.dispose()
            if name:
                Postgres().drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path):
    made = Databases(request.param, tmp_path)
    yield made
    made.drop()


@pytest.fixture
def pg_databases(tmp_path):
    """PostgreSQL only, for races: SQLite serialises writers in-process, so two writers never overlap there."""
    made = Databases("postgresql", tmp_path)
    yield made
    made.drop()


@pytest.fixture(scope="module")
def vhost():
    broker = Broker()
    name = f"jmdi-kit-{run_id()}"
    uri = broker.create_vhost(name)
    yield uri
    broker.delete_vhost(name)


@pytest.fixture
def queue(vhost):
    """A consumer's queue on grants.events for tranche_paid (fresh per test)."""
    name = f"consumer-{run_id()}"
    bound_queue(vhost, name)
    yield name
    delete_queue(vhost, name)


def tranche_data(n: int, amount: str = "96000.00") -> dict:
    return {
        "payment_id": f"pay-{n}",
        "grant_id": f"grant-{n}",
        "reference": f"JMDI-2009-{n:04d}",
        "tranche_number": 1,
        "amount_eur": Decimal(amount),
        "value_date": date(2009, 10, 6),
        "bank_reference": f"BNK-{n}",
        "approved_by": "farid.finance",
    }


def tranche_paid(n: int, amount: str = "96000.00"):
    return make_event("tranche_paid", tranche_data(n, amount), producer="grants")


def record_tranche(event, uow):
    """The consumer's change: one ledger row per tranche_paid applied."""
    uow.session.execute(
        insert(tranche_ledger).values(
            event_id=event.event_id, payment_id=event.data["payment_id"], amount=event.data["amount_eur"]
        )
    )


def ledger_rows(core) -> dict:
    """event_id -> rows in the ledger (any value above 1 is a double application)."""
    with core.engine.connect() as conn:
        rows = conn.execute(select(tranche_ledger.c.event_id, func.count()).group_by(tranche_ledger.c.event_id))
        return {event_id: n for event_id, n in rows}


def ledger_total(core) -> Decimal:
    with core.engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.sum(tranche_ledger.c.amount), 0))).scalar_one()


def bound_queue(
    uri: str, name: str, routing_key: str = "tranche_paid", exchange: str = "grants.events", **arguments
) -> Queue:
    """Declare a durable queue bound to a producer's exchange (as the topology does for a consumer)."""
    queue = Queue(
        name,
        exchange=Exchange(exchange, type="topic", durable=True),
        routing_key=routing_key,
        durable=True,
        auto_delete=False,
        queue_arguments=arguments or None,
    )
    with Connection(uri) as conn:
        queue(conn.channel()).declare()
    return queue


def delete_queue(uri: str, name: str):
    with Connection(uri) as conn:
        conn.channel().queue_delete(name)


def drain_queue(uri: str, name: str) -> list[dict]:
    """Take every message waiting in a queue (acked): their bodies, in order."""
    bodies = []
    with Connection(uri) as conn:
        channel = conn.channel()
        while True:
            message = channel.basic_get(name, no_ack=True)
            if message is None:
                return bodies
            bodies.append(json.loads(message.body))


class Gate:
    """Holds the first `parties` threads that reach it until all of them are there, then lets everyone through:
    makes an overlap certain, not likely."""

    def __init__(self, parties: int = 2):
        self.barrier = threading.Barrier(parties, timeout=30)
        self.lock = threading.Lock()
        self.arrived = 0

    def __call__(self, *_args):
        with self.lock:
            self.arrived += 1
            held = self.arrived <= self.barrier.parties
        if held:
            self.barrier.wait()


def run_together(*jobs) -> list:
    """Run each job in its own thread at the same time; their results in order (an exception is re-raised)."""
    results = [None] * len(jobs)

    def run(i):
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # handed to the test below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
