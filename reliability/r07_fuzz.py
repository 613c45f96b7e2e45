"""R7: every RPC fuzzed with hypothesis — inputs generated from each operation's marshmallow schema (see
fuzz.py), seeded with ids that exist (a small flow runs first), plus hand-picked nasties put in every field of a
payload that passed validation. Every answer must be a success or a typed refusal (InvalidInput, NotFound,
Conflict, NotAllowed): no internal error (nameko RemoteError), no timeout, no crashed service. A refused call
leaves no trace but its refusal audit row: the target service's outbox and done-audit are unchanged (for calls,
which nothing else writes to, every table). The four services are fuzzed in parallel, one thread each."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

from hypothesis import HealthCheck, Phase, given, settings

from services.common.contracts.topology import SERVICES
from services.common.security.auth import ROLES
from services.common.values.errors import InvalidInput

from . import invariants
from services.gateway.catalogue import operations
from .fuzz import HUGE, NASTIES, payloads
from .scenario import scenario
from .staff import INTERNAL, OK, REFUSED, Caller, classify, error_name
from .testbed import Testbed
from .flow import Flow

# the ids a generated input may use: field name -> (service, query)
ID_SOURCES = {
    "programme_id": ("calls", "SELECT id FROM programmes"),
    "call_id": ("calls", "SELECT id FROM calls"),
    "proposal_id": ("calls", "SELECT id FROM proposals"),
    "reference": ("calls", "SELECT reference FROM proposals"),
    "grant_id": ("grants", "SELECT id FROM grants"),
    "payment_id": ("grants", "SELECT id FROM payments"),
    "organisation_id": ("grants", "SELECT id FROM organisations"),
    "report_id": ("grants", "SELECT id FROM reports"),
    "notification_id": ("notifications", "SELECT id FROM notifications"),
}
# deliveries happen on a timer, after the call that planned them: not a trace of a refused call
ASYNC_EVENTS = "('notification_sent', 'notification_failed')"


def known_ids(bed: Testbed) -> dict:
    ids = {}
    for name, (service, query) in ID_SOURCES.items():
        try:
            ids[name] = [str(r[0]) for r in bed.rows(service, query + " LIMIT 50")]
        except Exception:  # a table the service does not have (yet)
            ids[name] = []
    return ids


class Fuzzer:
    def __init__(self, bed: Testbed, service: str, ops, ids: dict, per_operation: int, derandomize: bool):
        self.bed, self.service, self.ops, self.ids = bed, service, ops, ids
        self.per_operation, self.derandomize = per_operation, derandomize
        self.nasty_budget = max(8, per_operation // 3)
        self.caller = Caller(bed.system.amqp_uri, bed.system.token("fuzz.admin", list(ROLES)), timeout=60)
        self.answers: Counter = Counter()
        self.findings: dict = {}
        self.calls = 0
        self.generated = 0  # inputs hypothesis generated (the rest are hand-picked nasties)

    def trace(self):
        """What a refused call must not change in the target service's database."""
        outbox = self.bed.value(self.service, f"SELECT count(*) FROM outbox WHERE event_type NOT IN {ASYNC_EVENTS}")
        audit = self.bed.value(self.service, "SELECT count(*) FROM audit_log WHERE outcome <> 'refused'")
        tables = (
            self.bed.table_counts(self.service, exclude=("audit_log", "leases")) if self.service == "calls" else None
        )
        return outbox, audit, tables

    def send(self, op, payload) -> str:
        before = self.trace()
        try:
            self.caller.call(op.service, op.name, payload)
            exc = None
        except Exception as caught:
            exc = caught
        kind = classify(exc)
        self.calls += 1
        self.answers[kind] += 1
        if kind == REFUSED:
            after = self.trace()
            if after != before:
                self._finding(op, "refused call left a trace", f"{before} -> {after}", payload)
        elif kind != OK:
            self._finding(op, kind, error_name(exc) + ": " + str(exc).splitlines()[0][:200], payload)
            if not self.bed.system.processes[self.service].running:
                self._finding(op, "service crashed", self.bed.system.processes[self.service].log_tail(5), payload)
                self.bed.restart(self.service)
        return "validated" if exc is None or not isinstance(exc, InvalidInput) else "invalid"

    def _finding(self, op, kind, detail, payload):
        key = (op.key, kind, detail.split(":")[0])
        if key not in self.findings:
            self.findings[key] = {"detail": detail, "payload": repr(payload)[:300], "times": 0}
        self.findings[key]["times"] += 1

    def run(self):
        for op in self.ops:
            validated = []

            @settings(
                max_examples=self.per_operation,
                database=None,
                deadline=None,
                derandomize=self.derandomize,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.generate],
            )
            @given(payloads(op.schema, self.ids))
            def generated(payload):
                self.generated += 1
                if self.send(op, payload) == "validated":
                    validated.append(payload)

            generated()
            self.nasties(op, validated[-1] if validated else {})

    def nasties(self, op, base: dict):
        """Nasties in the top-level fields of a payload that passed validation (every field gets a share, at most
        `nasty_budget` per operation), and one huge string."""
        names = list(op.schema.fields)
        pairs = [(names[i % len(names)], nasty) for i, nasty in enumerate(NASTIES * len(names))] if names else []
        for name, nasty in pairs[: self.nasty_budget]:
            self.send(op, {**base, name: nasty})
        first = next(iter(op.schema.fields), None)
        if first is not None:
            self.send(op, {**base, first: HUGE})


@scenario(7, "fuzzing every RPC")
def run(outcome, sizes, log, **_):
    ops = operations()
    with Testbed(log) as bed:
        flow = Flow(bed, "r7", threads=sizes.threads, per_window=2)
        flow.record.complete = False  # fuzzed writes are not in the flow's record
        try:
            flow.run(1, log=log)  # one batch: programmes, calls, proposals, grants, payments to aim at
        finally:
            flow.close()
        bed.settle(sizes.settle_seconds)
        ids = known_ids(bed)
        # a tenth more than the even share: hypothesis stops early on schemas with few distinct inputs (health)
        per_operation = max(3, -(-sizes.fuzz_inputs * 11 // 10 // len(ops)))
        by_service = defaultdict(list)
        for op in ops:
            by_service[op.service].append(op)
        fuzzers = [
            Fuzzer(bed, s, by_service[s], ids, per_operation, derandomize=sizes.fuzz_inputs < 1000)
            for s in SERVICES
            if by_service[s]
        ]
        errors = []

        def work(fuzzer):
            try:
                fuzzer.run()
            except Exception as exc:  # a fuzzer that stops is a failure, not a crash of the suite
                errors.append(f"{fuzzer.service} fuzzer stopped: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work, args=(f,)) for f in fuzzers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for fuzzer in fuzzers:
            fuzzer.caller.close()
        for problem in errors:
            outcome.fail(problem)
        answers = sum((f.answers for f in fuzzers), Counter())
        for fuzzer in fuzzers:
            for (key, kind, _), finding in sorted(fuzzer.findings.items()):
                outcome.fail(f"{key}: {kind} x{finding['times']}: {finding['detail']} — input {finding['payload']}")
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        generated = sum(f.generated for f in fuzzers)
        outcome.check(generated >= sizes.fuzz_inputs, f"only {generated} generated inputs")
        outcome.figures = {
            "operations": len(ops),
            "generated": generated,
            "nasty": sum(f.calls for f in fuzzers) - generated,
            "accepted": answers[OK],
            "refused": answers[REFUSED],
            "internal": answers[INTERNAL],
            "other": sum(answers.values()) - answers[OK] - answers[REFUSED] - answers[INTERNAL],
            **{k: figures[k] for k in ("events", "dead_letters") if k in figures},
        }
