"""The workload: many parallel staff clients running the programme's life cycle through the real RPCs.

A flow runs in batches. Each batch is one call: the programme manager creates and opens it, proposals are
submitted, the call's windows are ranked, the committee awards the ranked proposals, finance registers each lead
organisation and validates its account, the contract is signed, and the first tranche is requested and approved
(four eyes: two finance people). Every request is retried until it gets an answer, with the same idempotency key
or the same content, so faults never make the flow apply something twice; a retry that meets "already done"
(the earlier attempt was applied but its reply was lost) counts as done.

Ranking: the calls service has no ranking RPCs yet; until it does, the suite publishes each window's
ranking_published as the calls service would (recorded as produced by the suite, see Testbed.inject).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import yaml

from services.common.runtime.config import SERVICES_DIR
from services.common.values.errors import NotFound
from tests.support import flows
from tests.support.bus import event_body

from .evidence import ClientRecord
from .staff import NO_ANSWER, Caller, classify, error_name
from .testbed import STAFF, Testbed

WINDOWS = flows.WINDOWS
COUNTRIES = ("MA", "SN", "GE", "ML", "TN", "PH")  # target countries (all eligible in flows.programme)
AMOUNT = Decimal("100000.00")
SHIPPED_PROGRAMME = SERVICES_DIR / "calls" / "data" / "programmes" / "jmdi.yaml"


def iban(number: int, country: str = "MA") -> str:
    """A valid IBAN (mod-97) of the country's length (Morocco: 28 characters)."""
    bban = f"{number:024d}"
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def programme(programme_id: str, windows=WINDOWS, allocation: str = "5000000000.00") -> dict:
    """A programme big enough for a load test (every call of the flow fits in its windows), in the shape of the
    programme files the calls service ships (services/calls/data/programmes/jmdi.yaml)."""
    definition = yaml.safe_load(SHIPPED_PROGRAMME.read_text())
    definition = json.loads(json.dumps(definition, default=str))  # YAML dates as ISO strings, as on the wire
    shipped = {w["code"]: w for w in definition["windows"]}
    definition["id"] = programme_id
    definition["ec_contribution"] = str(Decimal(allocation) * len(windows))
    definition["windows"] = [{**shipped[w], "allocation": allocation} for w in windows]
    today = date.today()  # the programme runs now, so its calls' deadlines fall inside its period
    definition["period"] = {
        "start": (today - timedelta(days=30)).isoformat(),
        "end": (today + timedelta(days=3 * 365)).isoformat(),
    }
    return definition


class FlowError(Exception):
    pass


# internal errors a database or broker outage causes: the request may be retried
TRANSIENT = {
    "OperationalError",
    "InterfaceError",
    "DisconnectionError",
    "PendingRollbackError",
    "ConnectionError",
    "RecoverableConnectionError",
    "ConnectionResetError",
    "BrokenPipeError",
    "TimeoutError",
}


def transient(exc) -> bool:
    return getattr(exc, "exc_type", None) in TRANSIENT


class Flow:
    """Drives batches of the life cycle; `stats` counts answers by kind, `problems` what could not be done."""

    def __init__(
        self,
        bed: Testbed,
        prefix: str,
        threads: int = 8,
        per_window: int = 10,
        batches_at_once: int = 3,
        award: bool = True,
        pay: bool = True,
        give_up_after: float = 240,
    ):
        self.bed = bed
        self.prefix = prefix
        self.programme_id = prefix.upper().replace("-", "_")[:30] or "LOAD"
        self.per_window = per_window
        self.batches_at_once = batches_at_once
        self.award, self.pay = award, pay
        self.give_up_after = give_up_after
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"flow-{prefix}")
        uri = bed.system.amqp_uri
        self.callers = {
            who: Caller(uri, bed.system.token(*STAFF[who]), timeout=bed.rpc_timeout)
            for who in ("pm", "committee", "officer", "approver")
        }
        self.stats: Counter = Counter()
        self.record = ClientRecord()  # what the clients were told: the invariants' independent evidence
        bed.records.append(self.record)
        self.problems: list[str] = []
        self.grants: list[str] = []
        self.payments: list[str] = []
        self.proposals: list[dict] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._stop = threading.Event()

    # --- requests that always get an answer -------------------------------------------------------------------
    def request(self, who: str, service: str, operation: str, payload: dict, done_if=None, wait_if=None):
        """Call until answered. `done_if(exc)` returns a result when a refusal means the change is already made;
        `wait_if(exc)` is true for a refusal that only means "not yet" (an event still on its way)."""
        deadline = time.monotonic() + self.give_up_after
        delay, internal_failures = 0.2, 0
        while True:
            try:
                result = self.callers[who].call(service, operation, payload)
                self._count(f"{operation}:ok")
                return result
            except Exception as exc:
                kind = classify(exc)
                self._count(f"answer:{kind}")
                if kind == "refused":
                    if done_if is not None:
                        result = done_if(exc)
                        if result is not None:
                            self._count(f"{operation}:already_done")
                            return result
                    if not (wait_if is not None and wait_if(exc)):
                        raise FlowError(f"{service}.{operation} refused: {exc}") from None
                else:
                    self._count(error_name(exc))
                    internal_failures += kind == "internal" and not transient(exc)
                    if internal_failures >= 3:  # a bug, not a passing fault: retrying will not help
                        raise FlowError(
                            f"{service}.{operation} failed: {error_name(exc)}: {str(exc).splitlines()[0][:300]}"
                        ) from None
                if time.monotonic() > deadline:
                    raise FlowError(
                        f"{service}.{operation} unanswered after {self.give_up_after}s: {error_name(exc)}: {exc}"
                    ) from None
                self._count("retries")
                time.sleep(delay)
                delay = min(delay * 1.5, 3.0 if kind == NO_ANSWER else 2.0)

    def _count(self, key: str, n: int = 1):
        with self._lock:
            self.stats[key] += n

    def _map(self, fn, items) -> list:
        """Run fn over items on the pool; failures become problems (the rest of the batch goes on)."""
        results = []
        for item, future in [(item, self.pool.submit(fn, item)) for item in items]:
            try:
                results.append(future.result())
            except Exception as exc:
                with self._lock:
                    self.problems.append(f"{fn.__name__}({str(item)[:60]}): {exc}")
        return results

    # --- set-up -----------------------------------------------------------------------------------------------
    def load_programme(self, definition: dict | None = None):
        self.request("pm", "calls", "load_programme", {"programme": definition or programme(self.programme_id)})

    def open_call(self, call_id: str, allocation: Decimal, windows=WINDOWS, programme_id: str | None = None) -> str:
        call = flows.call(call_id, programme_id or self.programme_id)
        call["windows"] = [{"window": w, "allocation_eur": str(allocation)} for w in windows]
        self.request(
            "pm",
            "calls",
            "create_call",
            call,
            done_if=lambda e: {} if getattr(e, "rule", "") == "call.exists" else None,
        )
        self.request(
            "pm",
            "calls",
            "open_call",
            {"call_id": call_id},
            done_if=lambda e: {} if getattr(e, "rule", "") == "call.not_draft" else None,
        )
        return call_id

    # --- the life cycle ---------------------------------------------------------------------------------------
    def submit(self, call_id: str, n: int, window: str, requested: Decimal = AMOUNT) -> dict:
        payload = flows.proposal(
            n, call_id=call_id, window=window, country=COUNTRIES[n % len(COUNTRIES)], requested=str(requested)
        )
        payload["idempotency_key"] = f"{self.prefix}-{n}"
        view = self.request("pm", "calls", "submit_proposal", payload)
        proposal = {
            "n": n,
            "proposal_id": view["proposal_id"],
            "reference": view["reference"],
            "window": window,
            "country": payload["target_country"],
            "call_id": call_id,
            "requested": requested,
            "lead": payload["applicants"][0],
        }
        self.record.proposal(view["proposal_id"], payload["applicants"][0]["email"], payload["applicants"][1]["email"])
        with self._lock:
            self.proposals.append(proposal)
        return proposal

    def rank(self, call_id: str, window: str, proposals: list[dict], score: str = "80.00"):
        """Publish the window's ranking (main list = these proposals) once grants holds every proposal."""
        ids = [p["proposal_id"] for p in proposals]
        deadline = time.monotonic() + self.give_up_after
        while self._held_by_grants(ids) < len(ids):
            if time.monotonic() > deadline:
                raise FlowError(f"grants never received the proposals of {call_id}/{window}")
            time.sleep(0.3)
        main = [
            {
                "proposal_id": p["proposal_id"],
                "reference": p["reference"],
                "rank": i + 1,
                "score": score,
                "country": p["country"],
                "ec_amount_requested_eur": p["requested"],
            }
            for i, p in enumerate(proposals)
        ]
        body = event_body(
            "ranking_published",
            {
                "call_id": call_id,
                "window": window,
                "threshold": Decimal("50.00"),
                "main": [{**m, "score": Decimal(m["score"])} for m in main],
                "reserve": [],
                "excluded": [],
                "published_at": datetime.now(timezone.utc),
            },
            actor=STAFF["committee"][0],
        )
        self.bed.inject(body)
        self._count("rankings")

    def _held_by_grants(self, ids) -> int:
        try:
            return self.bed.value("grants", "SELECT count(*) FROM proposals WHERE proposal_id = ANY(:ids)", ids=ids)
        except Exception:  # database briefly away (R3)
            return 0

    def award_one(self, proposal: dict, amount: Decimal | None = None) -> dict:
        def already(exc):
            if getattr(exc, "rule", "") == "award.already_awarded":
                grant_id = next((d.get("grant_id") for d in exc.details if d.get("grant_id")), None)
                return {"grant_id": grant_id} if grant_id else None
            return None

        def not_yet(exc):  # the ranking or the proposal is still on its way to grants
            return isinstance(exc, NotFound) or getattr(exc, "rule", "") == "award.not_ranked"

        asked = amount or proposal["requested"]
        grant = self.request(
            "committee",
            "grants",
            "award_grant",
            {
                "proposal_id": proposal["proposal_id"],
                "amount_eur": str(asked),
                "decision_reference": f"SC-{self.prefix}-{proposal['n']}",
                "decision_date": date.today().isoformat(),
            },
            done_if=already,
            wait_if=not_yet,
        )
        # the amount the committee was told (an "already awarded" answer confirms what was asked)
        self.record.grant(grant["grant_id"], proposal["proposal_id"], grant.get("amount_eur", asked))
        with self._lock:
            self.grants.append(grant["grant_id"])
        return {**proposal, "grant_id": grant["grant_id"]}

    def contract_and_pay(self, awarded: dict) -> dict:
        lead = awarded["lead"]
        organisation = self.request(
            "officer",
            "grants",
            "register_organisation",
            {
                "legal_name": lead["name"],
                "registration_number": lead["registration_number"],
                "country": lead["country"],
                "iban": iban(awarded["n"]),
                "signatory": "Fatima Zahra Benali",
            },
        )
        self.request(
            "approver",
            "grants",
            "validate_bank_account",
            {"organisation_id": organisation["organisation_id"], "iban": iban(awarded["n"])},
        )
        contracted = lambda e: {} if getattr(e, "rule", "") == "grant.invalid_state" else None  # noqa: E731
        self.request(
            "pm",
            "grants",
            "sign_contract",
            {
                "grant_id": awarded["grant_id"],
                "organisation_id": organisation["organisation_id"],
                "start_date": date.today().isoformat(),
            },
            done_if=contracted,
        )
        self.record.contract(awarded["grant_id"])
        if not self.pay:
            return awarded
        grant = self.request("pm", "grants", "get_grant", {"grant_id": awarded["grant_id"]})
        first = grant["schedule"][0]
        amount = first.get("payable_eur") or first["planned_amount_eur"]
        payment = self.request(
            "officer",
            "grants",
            "request_payment",
            {
                "grant_id": awarded["grant_id"],
                "tranche_number": first["number"],
                "amount_eur": amount,
                "idempotency_key": f"{awarded['grant_id']}-t{first['number']}",
            },
        )
        paid = self.request(
            "approver",
            "grants",
            "approve_payment",
            {
                "payment_id": payment["payment_id"],
                "value_date": date.today().isoformat(),
                "bank_reference": f"BNK-{awarded['grant_id'][:8]}",
            },
        )
        self.record.payment(payment["payment_id"], awarded["grant_id"], paid["amount_eur"])
        with self._lock:
            self.payments.append(payment["payment_id"])
        return awarded

    def batch(self, number: int):
        # one programme per batch keeps batches independent (references, budgets); an early calls version also
        # gave two calls of one programme in one year the same proposal references
        programme_id = f"{self.programme_id}{number:04d}"
        self.load_programme(programme(programme_id))
        call_id = f"{self.prefix}-{number:04d}"
        self.open_call(call_id, AMOUNT * self.per_window * 2, programme_id=programme_id)
        units = [(WINDOWS[i % len(WINDOWS)], number * 10_000 + i) for i in range(self.per_window * len(WINDOWS))]
        proposals = self._map(lambda u: self.submit(call_id, u[1], u[0]), units)
        if not self.award:
            return
        for window in WINDOWS:
            ranked = [p for p in proposals if p["window"] == window]
            if ranked:
                self.rank(call_id, window, ranked)
        awarded = self._map(self.award_one, proposals)
        self._map(self.contract_and_pay, awarded)

    # --- running ----------------------------------------------------------------------------------------------
    def produced_now(self) -> int:
        total = len(self.bed.injected)
        for service in ("calls", "grants", "notifications", "reporting"):
            if self.bed.system.processes[service].running:
                try:
                    total += self.bed.system.outbox_events(service)
                except Exception:  # database briefly away (R3)
                    return -1
        return total

    def run(self, target_events: int, faults=(), log=print) -> dict:
        """Run batches until the producers have committed `target_events`; each (fraction, action) in `faults`
        runs once that fraction of the target is reached, while the flow goes on. Returns timings."""
        started = time.monotonic()
        pending_faults = sorted(faults, key=lambda f: f[0])
        fault_log = []

        failures, progress = Counter(), Counter()

        def enough() -> bool:
            """Stop starting batches once those in flight will take the producers past the target (events
            follow a batch for a while: e-mails sent, notification events)."""
            with self._lock:
                done, running = progress["done"], progress["running"]
            produced = self.produced_now()
            per_batch = produced / done if done else 0
            return produced + running * per_batch >= target_events

        def driver():
            while not self._stop.is_set():
                if enough():
                    self._stop.set()
                    break
                with self._lock:
                    progress["running"] += 1
                try:
                    self.batch(next(self._numbers))
                    failures["in_a_row"] = 0
                    with self._lock:
                        progress["done"] += 1
                except Exception as exc:
                    with self._lock:
                        progress["done"] += 1
                        self.problems.append(f"batch: {type(exc).__name__}: {exc}")
                        failures["in_a_row"] += 1
                        if failures["in_a_row"] >= 3:  # the flow itself is refused: no point going on
                            self._stop.set()
                finally:
                    with self._lock:
                        progress["running"] -= 1

        drivers = [
            threading.Thread(target=driver, name=f"batch-driver-{i}", daemon=True) for i in range(self.batches_at_once)
        ]
        for d in drivers:
            d.start()
        last_report = 0.0
        while True:
            produced = self.produced_now()
            if produced >= target_events:
                self._stop.set()
            while pending_faults and produced >= pending_faults[0][0] * target_events:
                fraction, action = pending_faults.pop(0)
                log(f"flow {self.prefix}: {produced} events produced, fault at {fraction:.0%}")
                fault_log.append(action())
            if self._stop.is_set() and not pending_faults:
                break
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                log(
                    f"flow {self.prefix}: {produced} events produced, {len(self.grants)} grants, "
                    f"{len(self.payments)} payments, {self.stats['retries']} retries"
                )
            if not any(d.is_alive() for d in drivers):
                break  # the flow stopped (target reached or refused); faults not reached are not run
            time.sleep(0.5)
        for d in drivers:
            d.join()
        return {"seconds": time.monotonic() - started, "faults": fault_log}

    def close(self):
        self._stop.set()
        self.pool.shutdown(wait=True)
        for caller in self.callers.values():
            caller.close()

    def callers_saw(self) -> Counter:
        seen = Counter()
        for caller in self.callers.values():
            seen.update(caller.seen)
        return seen


def run_with_fault(
    bed, name: str, events: int, fault, outcome, log, threads: int, at: float = 0.4, per_window: int = 10
) -> "Flow":
    """A flow of `events` with `fault` started once `at` of it is done; the flow's problems fail the outcome."""
    flow = Flow(bed, name, threads=threads, per_window=per_window)
    try:
        flow.run(events, faults=[(at, fault)], log=log)
    finally:
        flow.close()
    for problem in flow.problems:
        outcome.fail(f"flow: {problem}")
    return flow
