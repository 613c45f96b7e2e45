"""R12: oversized messages and a flood of refused calls. 100 messages over MESSAGE_MAX_BYTES straight onto the
services' RPC queues, and 10,000 requests (sizes.flood_calls) with forged tokens through the gateway from `ADDRESSES` client
addresses (behind one trusted proxy, each under its own refusal budget, so that every refusal is a candidate for
the audit trail). With the shipped limits (30 refusals a client a minute, 120 refusal rows a minute): no process's
resident memory goes over the P6 budget (300 MB, sampled throughout), the gateway's audit table grows by at most
120 rows a minute plus one summary row a minute — and so does grants', under 1,000 refused calls straight over the
broker with the same forged token (REFUSAL_AUDITS_PER_MINUTE) — each oversized message is dead-lettered unread, and every service
still answers."""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from services.common.contracts.topology import PROCESSES, SERVICES
from services.common.security.auth import StaffIssuer
from services.common.security.keys import generate_private_key
from tests.support import malformed

from .scenario import scenario
from .testbed import Testbed

LIMIT = 1_048_576  # MESSAGE_MAX_BYTES here (the broker of the tests has no max_message_size)
OVERSIZED = 100
OVERSIZE_BYTES = LIMIT + 512 * 1024
ADDRESSES = 400  # 10,000 / ADDRESSES = 25 refusals each: under the per-client budget of 30
AUDITS_PER_MINUTE = 120
RSS_BUDGET_MB = 300  # benchmarks/workloads.py P6: rss_load_mb <= 300


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self, pids: dict[str, int], every: float = 0.25):
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.peak = {name: 0.0 for name in pids}
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mb(pid))
            time.sleep(self.every)

    def stop(self) -> dict[str, float]:
        self._stop_event.set()
        self.join(5)
        return {name: round(mb, 1) for name, mb in self.peak.items()}


def flood(gateway_url: str, token: str, total: int, threads: int) -> dict[int, int]:
    """`total` refused requests, `threads` keep-alive connections; status -> count."""
    parts = urlsplit(gateway_url)
    body = json.dumps({"payment_id": "P-R12"}).encode()
    counts: dict[int, int] = {}
    lock = threading.Lock()

    def worker(offset: int):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        local = {}
        for n in range(offset, total, threads):
            client = f"198.18.{(n % ADDRESSES) // 250}.{(n % ADDRESSES) % 250 + 1}"
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "X-Forwarded-For": client,
            }
            try:
                conn.request("POST", "/api/v1/grants/approve_payment", body, headers)
                response = conn.getresponse()
                response.read()
                local[response.status] = local.get(response.status, 0) + 1
            except (OSError, http.client.HTTPException):
                local[0] = local.get(0, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.close()
        with lock:
            for status, n in local.items():
                counts[status] = counts.get(status, 0) + n

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return counts


def audit_rows(bed: Testbed, service: str = "gateway") -> int:
    return bed.value(service, "SELECT count(*) FROM audit_log")


def direct_refusals(bed: Testbed, token: str, total: int) -> int:
    """Refused calls straight to grants over the broker (a caller going round the gateway): how many refused."""
    from services.common.values.errors import NotAllowed

    client = bed.system.rpc_client(None, token=token)
    refused = 0
    for _ in range(total):
        try:
            client.grants.approve_payment(payment_id="P-R12")
        except NotAllowed:
            refused += 1
    return refused


@scenario(12, "oversized messages and a flood of refused calls")
def run(outcome, sizes, log, **_):
    flood_size = sizes.flood_calls
    env = {
        "MESSAGE_MAX_BYTES": str(LIMIT),
        "GATEWAY_TRUSTED_PROXIES": "1",
        "GATEWAY_REFUSALS_PER_MINUTE": "30",
        "GATEWAY_REFUSAL_AUDITS_PER_MINUTE": str(AUDITS_PER_MINUTE),
        "REFUSAL_AUDITS_PER_MINUTE": str(AUDITS_PER_MINUTE),
    }
    with Testbed(log, extra_env=env) as bed:
        pids = {name: bed.system.processes[name].proc.pid for name in PROCESSES}
        sampler = RssSampler(pids)
        sampler.start()
        before, before_grants = audit_rows(bed), audit_rows(bed, "grants")
        started = time.monotonic()
        # 100 oversized RPC requests, spread over the four services
        targets = [("nameko-rpc", f"{SERVICES[n % len(SERVICES)]}.health", True) for n in range(OVERSIZED)]
        with malformed.connect(bed.system.amqp_uri) as conn:
            channel = conn.channel()
            channel.confirm_select()
            for exchange, key, rpc in targets:
                malformed.publish_malformed(channel, "too_large", exchange, key, rpc, OVERSIZE_BYTES)
        forger = StaffIssuer(
            generate_private_key(), issuer=bed.system.issuer.issuer, audience=bed.system.issuer.audience
        )
        forged = forger.issue("mallory", ["finance_approver"])
        statuses = flood(bed.system.gateway_url, forged, flood_size, threads=min(8, sizes.threads))
        direct = direct_refusals(bed, forged, flood_size // 10)
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 60
        while malformed.dead_letter_count(bed.system.amqp_uri) < OVERSIZED and time.monotonic() < deadline:
            time.sleep(0.5)
        peak = sampler.stop()
        added = audit_rows(bed) - before
        minutes = math.ceil((time.monotonic() - started) / 60) + 1
        bound = minutes * (AUDITS_PER_MINUTE + 1)
        outcome.check(
            statuses.get(401, 0) + statuses.get(429, 0) == flood_size,
            f"answers to the flood: {statuses} (all must be 401 or 429)",
        )
        outcome.check(added <= bound, f"the audit table grew by {added} rows (bound {bound} for {minutes} min)")
        outcome.check(added >= min(AUDITS_PER_MINUTE, flood_size), f"only {added} refusals audited")
        added_grants = audit_rows(bed, "grants") - before_grants
        outcome.check(direct == flood_size // 10, f"only {direct} of {flood_size // 10} direct calls refused")
        outcome.check(
            min(AUDITS_PER_MINUTE, direct) <= added_grants <= bound,
            f"grants' audit table grew by {added_grants} rows (bound {bound})",
        )
        over = {name: mb for name, mb in peak.items() if mb > RSS_BUDGET_MB}
        outcome.check(not over, f"resident memory over {RSS_BUDGET_MB} MB: {over}")
        letters = malformed.dead_letter_count(bed.system.amqp_uri)
        outcome.check(letters == OVERSIZED, f"{letters} of {OVERSIZED} oversized messages dead-lettered")
        too_large = sum(bed.metric_sum(s, "jmdi_malformed_messages_total") for s in SERVICES)
        outcome.check(too_large == OVERSIZED, f"{too_large} oversized messages counted")
        ops = bed.staff("pm")
        for service in SERVICES:
            outcome.check(getattr(ops, service).health().get("status") == "ok", f"{service} does not answer")
        outcome.check(
            all(bed.system.processes[n].proc.pid == pid and bed.system.processes[n].running for n, pid in pids.items()),
            "a process crashed",
        )
        outcome.figures = {
            "oversized": OVERSIZED,
            "refused": flood_size,
            "direct": direct,
            "req_per_s": round(flood_size / elapsed),
            "audit_rows": added,
            "grants_audit_rows": added_grants,
            "audit_bound": bound,
            "peak_rss_mb": max(peak.values()),
            "rss_budget_mb": RSS_BUDGET_MB,
        }
