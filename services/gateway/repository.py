"""The audit trail of requests refused at the door (no token, a token that does not verify, a role that may not,
a body too large), in the gateway's own database (`audit_log`, the same table every service keeps, so
`jmdi audit` reads it like the others).

Bounded: each client is throttled after GATEWAY_REFUSALS_PER_MINUTE refusals (one more row says so), and the
whole gateway writes at most GATEWAY_REFUSAL_AUDITS_PER_MINUTE refusal rows a minute; what is not written
individually is counted, and the count written as one row once the minute is over, so a flood leaves a
trace of its size, not one row per request.

Every row says whether its subject was proven: `detail.subject_verified` is true only when the token verified (a
role refused, 403); a missing, forged or expired token (401), a body too large or a throttled client are recorded
with the user the token CLAIMS — evidence of who tried, never proof.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import insert

from services.common.service.entrypoints import claimed_identity
from services.common.storage.db import DatabaseCore, utcnow
from services.common.storage.tables import audit_log

from . import metrics
from .limits import Budget

log = logging.getLogger(__name__)
ALL = "*"


class RefusalAudit:
    def __init__(self, core: DatabaseCore, rows_per_minute: int, clock=None):
        self.core = core
        self.budget = Budget(rows_per_minute, 60.0, max_keys=1, **({"clock": clock} if clock else {}))
        self._suppressed = 0
        self._lock = threading.Lock()

    def record(
        self, operation: str, reason: str, token, client: str, correlation_id: str | None, status: int, identity=None
    ):
        """One `refused` row, unless the minute's budget is spent (then it is counted for the summary row)."""
        with self._lock:
            flush = self._suppressed if self.budget.exhausted(ALL) is None and self._suppressed else 0
            within = self.budget.spend(ALL) <= self.budget.limit
            if flush:
                self._suppressed = 0
            if not within:
                self._suppressed += 1
                metrics.REFUSAL_AUDITS_SUPPRESSED.inc()
        rows = []
        if flush:
            rows.append(
                self._row(
                    "gateway.door",
                    None,
                    [],
                    {
                        "reason": f"{flush} more refusal(s) in the previous minute were not audited one by one "
                        "(audit budget spent)",
                        "suppressed": flush,
                    },
                    None,
                )
            )
        if within:
            claimed_user, claimed_roles = claimed_identity(token)
            user, roles = (
                (identity.user, list(identity.roles)) if identity is not None else (claimed_user, claimed_roles)
            )
            rows.append(
                self._row(
                    operation,
                    user,
                    roles,
                    {
                        "reason": reason,
                        "claimed_user": claimed_user,
                        "subject_verified": identity is not None,
                        "client": client,
                        "status": status,
                    },
                    correlation_id,
                )
            )
        self._write(rows)

    def _row(self, operation, user, roles, detail, correlation_id) -> dict:
        return dict(
            at=utcnow(),
            user=user,
            roles=roles,
            operation=operation,
            outcome="refused",
            entity=None,
            detail=detail,
            correlation_id=correlation_id,
        )

    def _write(self, rows: list[dict]):
        if not rows:
            return
        try:
            with self.core.exclusive(), self.core.engine.begin() as conn:
                conn.execute(insert(audit_log), rows)
        except Exception:  # the refusal stands even when its audit row cannot be written; the log keeps it
            log.exception("could not audit %d refusal(s): %s", len(rows), rows)
