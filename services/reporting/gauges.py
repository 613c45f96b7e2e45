"""Financial gauges for the Grafana finance dashboard: the headline totals (all programmes, now), by SQL.

Every replica exports the same figures (they come from the shared database): dashboards over several replicas
should aggregate them with max by (window), not sum.
"""

import threading
import time
from datetime import datetime, timezone

from prometheus_client import Gauge, Histogram


COMMITTED = Gauge("jmdi_committed_eur", "EUR committed (awards, as amended) by call window", ["window"])
DISBURSED = Gauge("jmdi_disbursed_eur", "EUR disbursed (tranches paid) by call window", ["window"])
ALLOCATION = Gauge("jmdi_window_allocation_eur", "EUR allocated to each call window", ["window"])
COUNTRY_COMMITTED = Gauge("jmdi_country_committed_eur", "EUR committed by target country", ["country"])
COUNTRY_DISBURSED = Gauge("jmdi_country_disbursed_eur", "EUR disbursed by target country", ["country"])
PROJECTION_LAG = Gauge(
    "jmdi_projection_lag_seconds", "Seconds between the last applied event's occurrence and its application"
)
RECONCILIATION_DIFFERENCES = Gauge(
    "jmdi_reconciliation_differences", "Differences the last reconciliation with the grants ledger found"
)
GENERATION_DURATION = Histogram(
    "jmdi_report_generation_duration_seconds",
    "Time to build and render a report",
    ["format"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)

_lock = threading.Lock()
_refreshed: dict = {"seq": None, "at": 0.0}  # the events seq the gauges show, and when they were set
MAX_AGE_SECONDS = 60  # recompute at least this often even without new events (a rebuild, a repair)


def projection_applied(occurred_at: datetime, now: datetime | None = None):
    now = now or datetime.now(timezone.utc)
    PROJECTION_LAG.set(max(0.0, (now - occurred_at).total_seconds()))


def stale(last_seq) -> bool:
    return _refreshed["seq"] != last_seq or time.monotonic() - _refreshed["at"] > MAX_AGE_SECONDS


def set_financial(totals=None, last_seq=None):
    """Replace the financial gauges by the headline totals (queries.HeadlineTotals; None: no series yet)."""
    with _lock:
        for gauge in (COMMITTED, DISBURSED, ALLOCATION, COUNTRY_COMMITTED, COUNTRY_DISBURSED):
            gauge.clear()  # a window or country that disappeared (rebuild, decline) must not linger
        if totals is not None:
            for window, (allocation, committed, disbursed) in totals.windows.items():
                COMMITTED.labels(window).set(float(committed))
                DISBURSED.labels(window).set(float(disbursed))
                ALLOCATION.labels(window).set(float(allocation))
            for country, (committed, disbursed) in totals.countries.items():
                COUNTRY_COMMITTED.labels(country).set(float(committed))
                COUNTRY_DISBURSED.labels(country).set(float(disbursed))
        _refreshed.update(seq=last_seq, at=time.monotonic())
