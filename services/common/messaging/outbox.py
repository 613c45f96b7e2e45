"""The outbox relay: publishes committed outbox rows to the service's events exchange, then marks them sent.

Woken right after every commit that wrote events; on PostgreSQL also by `NOTIFY jmdi_outbox`, which a writer
outside the service process (another replica, a repair script, the bench's feeder) sends in the transaction that
wrote the rows. A periodic sweep is the safety net (broker was down, a process died between commit and publish).
On PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED, so several processes of one service never publish the
same row concurrently. The claim marks its rows sent in the same statement, undone unless its transaction commits
after the publish: a crash after publishing and before that COMMIT publishes the rows again later, and consumers'
inboxes absorb that duplicate.

A drain starts no sooner than `drain_gap_seconds` (0.03 s by default) after the last one ended: under a rush, what
commits in that time goes out in the next drain's batch instead of one drain each. A drain has a fixed cost
whatever its size (a transaction and its commit's flush, the broker's confirm and its persisting of the batch): at
one drain per ~7 submissions, about a twentieth of the CPU of a submission rush. An event committed after a quiet
spell still goes out at once.

Published rows stay (for `retention`), and marking one leaves its entry in the partial index of pending rows
until a VACUUM removes it. A bitmap scan of that index (what PostgreSQL's planner picks for `published_at IS
NULL`, estimated rare) visits the heap row of every such entry at every poll: the poll's cost grew with every
event published since the last VACUUM (on a server without autovacuum, with every event ever). A plain index
scan marks an entry whose row is dead to every transaction as dead in the index (LP_DEAD) and skips it from then
on, so the relay's statements on pending rows run with bitmap scans off.
"""

import json
import logging
import select as readiness  # looked up at each call: eventlet's monkey patch may come after this import
import threading
import time
from datetime import timedelta

from sqlalchemy import bindparam, delete, func, select, update

from ..runtime import metrics
from ..storage.db import DatabaseCore, index_scans_only, utcnow
from ..storage.tables import outbox
from ..values.retry import OUTBOX_RELAY
from .crashpoints import crash_point
from .publisher import ConfirmingPublisher, PublishFailed

log = logging.getLogger(__name__)
WAKE_CHANNEL = "jmdi_outbox"  # NOTIFY jmdi_outbox: rows committed by another process go out now, not at the sweep


class OutboxRelay:
    def __init__(
        self,
        core: DatabaseCore,
        amqp_uri: str,
        batch_size: int = 500,
        sweep_seconds: float = 2.0,
        drain_gap_seconds: float = 0.03,
        retention: timedelta = timedelta(days=7),
        forget_every_seconds: float = 600.0,
    ):
        self.core = core
        self.publisher = ConfirmingPublisher(amqp_uri)
        self.batch_size = batch_size
        # claimed and marked sent in one statement (a crash before the COMMIT undoes the mark); built once
        pending = (
            select(outbox.c.id)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        self._claim = (
            update(outbox)
            .where(outbox.c.id.in_(pending.scalar_subquery()))
            .values(published_at=bindparam("published_at"))
            .returning(
                outbox.c.id,
                outbox.c.exchange,
                outbox.c.routing_key,
                outbox.c.body,
                outbox.c.headers,
                outbox.c.event_id,
                outbox.c.event_type,
            )
        )
        self.sweep_seconds = sweep_seconds
        self.drain_gap_seconds = drain_gap_seconds
        self.retention = retention
        self._wake = threading.Event()
        self.listening = threading.Event()  # set while the PostgreSQL listener holds its LISTEN
        self._stopped = False
        self._last_housekeeping = 0.0
        # the retention DELETE reads the whole table (no index on published_at): rows kept for days need not go
        # the second they expire, so it runs every `forget_every_seconds`, not at every sweep
        self.forget_every_seconds = forget_every_seconds
        self._last_forget: float | None = None

    def wake(self):
        self._wake.set()

    def stop(self):
        self._stopped = True
        self._wake.set()

    def run(self):
        failures = 0
        while not self._stopped:
            try:
                self.drain()
                drained = time.monotonic()
                self._housekeeping()
                failures = 0
            except Exception as exc:  # broker or database away: rows stay pending, try again with backoff
                failures += 1
                log.warning("outbox relay: %s (attempt %d)", exc, failures)
                time.sleep(OUTBOX_RELAY.delay(failures))
                continue
            self._wake.wait(self.sweep_seconds)
            # woken within the gap after the last drain: the commits of the rest of it go in the same batch
            gap = drained + self.drain_gap_seconds - time.monotonic()
            if gap > 0 and not self._stopped:
                time.sleep(gap)
            self._wake.clear()  # after the pause: the drain below takes what the wakes meanwhile announced
        self.publisher.close()

    def listen(self):
        """Wake the relay whenever another process notifies WAKE_CHANNEL (PostgreSQL; elsewhere the sweep alone).
        Runs beside `run`, on a connection of its own (a LISTEN holds it for good), until `stop`."""
        if self.core.engine.dialect.name != "postgresql":
            return
        failures = 0
        while not self._stopped:
            try:
                self._listen()
                return
            except Exception as exc:  # database away or the connection killed: listen again with backoff
                failures += 1
                log.warning("outbox relay listener: %s (attempt %d)", exc, failures)
                self._wake.set()  # what was notified meanwhile is not lost: drain once more
                time.sleep(OUTBOX_RELAY.delay(failures))

    def _listen(self):
        dialect, url = self.core.engine.dialect, self.core.engine.url
        cargs, cparams = dialect.create_connect_args(url)
        conn = dialect.connect(*cargs, **cparams)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"LISTEN {WAKE_CHANNEL}")
            self.listening.set()
            while not self._stopped:
                # the timeout only bounds how long a stop waits; select is green under eventlet's monkey patch
                readable, _, _ = readiness.select([conn], [], [], 1.0)
                if readable:
                    conn.poll()
                    if conn.notifies:
                        conn.notifies.clear()
                        self.wake()
        finally:
            self.listening.clear()
            conn.close()

    def drain(self) -> int:
        """Publish every pending row; return how many were published."""
        published = 0
        while True:
            with self.core.exclusive(), self.core.engine.begin() as conn:
                index_scans_only(conn)
                rows = sorted(
                    conn.execute(self._claim, {"published_at": utcnow()}).all(),
                    key=lambda row: row.id,  # RETURNING keeps no order: published in the order written
                )
                if not rows:
                    return published
                crash_point("outbox.before_publish")
                try:
                    self.publisher.publish_batch(
                        [(r.exchange, r.routing_key, r.body, r.headers, r.event_id, r.event_type) for r in rows]
                    )
                    failure = None
                except PublishFailed as exc:
                    failure = exc
                    # pending again, the attempt counted, and committed: raising inside this block would roll
                    # the count back
                    conn.execute(
                        update(outbox)
                        .where(outbox.c.id.in_([r.id for r in rows]))
                        .values(published_at=None, attempts=outbox.c.attempts + 1)
                    )
                else:
                    crash_point("outbox.after_publish")
            if failure is not None:
                raise failure
            for r in rows:
                metrics.EVENTS_PUBLISHED.labels(self.core.service, r.event_type).inc()
            published += len(rows)
            if len(rows) < self.batch_size:
                return published

    def _housekeeping(self):
        """Refresh the backlog gauges and forget rows published long ago (at most every few seconds)."""
        now = time.monotonic()
        if now - self._last_housekeeping < self.sweep_seconds:
            return
        self._last_housekeeping = now
        forget = self._last_forget is None or now - self._last_forget >= self.forget_every_seconds
        with self.core.exclusive(), self.core.engine.begin() as conn:
            index_scans_only(conn)
            pending, oldest = conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
            ).one()
            if forget:
                conn.execute(delete(outbox).where(outbox.c.published_at < utcnow() - self.retention))
        if forget:
            self._last_forget = now
        metrics.OUTBOX_PENDING.labels(self.core.service).set(pending)
        age = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:  # SQLite returns naive datetimes
                oldest = oldest.replace(tzinfo=utcnow().tzinfo)
            age = max(0.0, (utcnow() - oldest).total_seconds())
        metrics.OUTBOX_OLDEST_AGE.labels(self.core.service).set(age)


def pending_count(core: DatabaseCore) -> int:
    with core.engine.connect() as conn:
        return conn.execute(select(func.count()).where(outbox.c.published_at.is_(None))).scalar_one()


def outbox_bodies(core: DatabaseCore):
    with core.engine.connect() as conn:
        return [json.loads(b) for (b,) in conn.execute(select(outbox.c.body).order_by(outbox.c.id))]
