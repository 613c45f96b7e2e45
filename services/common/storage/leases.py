"""Timers that run once across replicas: a lease row in the service's database decides who runs a tick.

Whoever holds an unexpired lease (or takes over an expired one) runs the job; the others skip the tick. The
jobs themselves stay idempotent (e.g. closing a call locks its row and checks its state), so a lease lost
mid-run can never make a job act twice.

Replicas' clocks may differ: a lease is taken over only CLOCK_SKEW_MARGIN after it expired by the taker's clock,
so a replica whose clock runs ahead by less than that never takes a lease its holder still renews.
"""

import functools
import os
import socket
from datetime import timedelta

from nameko.timer import timer
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from .db import DatabaseCore, utcnow
from .tables import leases

HOLDER = f"{socket.gethostname()}:{os.getpid()}"
CLOCK_SKEW_MARGIN = timedelta(seconds=5)


def acquire_lease(core: DatabaseCore, name: str, ttl_seconds: float, holder: str = HOLDER, now=None) -> bool:
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    try:
        with core.exclusive(), core.engine.begin() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name).with_for_update()).first()
            if row is None:
                conn.execute(insert(leases).values(name=name, holder=holder, expires_at=expires))
                return True
            current_expiry = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
            if row.holder != holder and current_expiry + CLOCK_SKEW_MARGIN > now:
                return False
            conn.execute(update(leases).where(leases.c.name == name).values(holder=holder, expires_at=expires))
            return True
    except IntegrityError:  # another replica inserted the lease first
        return False


def exclusive_timer(interval: float, ttl: float | None = None):
    """A nameko timer whose body runs in one replica per tick: `fn(self)` runs with the worker's unit of work
    (`self.db`), which is committed afterwards like an operation's."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self):
            if not acquire_lease(self.db.core, f"{self.name}.{fn.__name__}", ttl or max(interval * 3, 10)):
                return None
            self.db.actor = f"system:{self.name}.{fn.__name__}"  # events caused by the clock, not a person
            try:
                result = fn(self)
                self.db.commit()
            except BaseException:
                self.db.rollback()
                raise
            return result

        return timer(interval=interval)(wrapper)

    return decorator
