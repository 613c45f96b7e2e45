"""R8: races for money. `racers` concurrent awards of EUR 200,000 race for a window's last EUR 200,000: exactly
one wins, the others are refused (award.window_allocation_exceeded), the window is never over its allocation.
Then concurrent duplicates of one payment request (same idempotency key), concurrent requests for one tranche
under different keys, concurrent duplicates of one approval and concurrent approvals by different approvers:
one payment each, paid once, one tranche_paid event each."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date
from decimal import Decimal

from . import invariants
from .flow import Flow
from .scenario import scenario
from .staff import Caller, error_name
from .testbed import Testbed

PRIZE = Decimal("200000.00")
ALREADY_AWARDED = 4  # grants awarded before the race: the window then has exactly one PRIZE left


def race(callers_and_payloads, service: str, operation: str) -> list:
    """Call concurrently (one thread each, connections opened before the start signal); return answers."""
    barrier = threading.Barrier(len(callers_and_payloads))
    answers = [None] * len(callers_and_payloads)

    def contender(i, caller, payload):
        caller.call(service, "health", {})  # warm the connection so the race is on the operation itself
        barrier.wait(60)
        try:
            answers[i] = ("ok", caller.call(service, operation, payload))
        except Exception as exc:
            answers[i] = (error_name(exc), exc)

    threads = [threading.Thread(target=contender, args=(i, c, p)) for i, (c, p) in enumerate(callers_and_payloads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return answers


@scenario(8, "races for the last EUR 200,000 and duplicate payments")
def run(outcome, sizes, log, **_):
    with Testbed(log) as bed:
        flow = Flow(bed, "r8", threads=sizes.threads, pay=False)
        flow.record.complete = (
            False  # the races' awards and payments are judged by the scenario itself, not the flow's record
        )
        fresh = []
        try:
            window, call_id = "remittances", "r8-race"
            flow.load_programme()
            flow.open_call(call_id, PRIZE * (ALREADY_AWARDED + 1), windows=(window,))
            proposals = flow._map(
                lambda n: flow.submit(call_id, n, window, requested=PRIZE), range(ALREADY_AWARDED + sizes.racers)
            )
            flow.rank(call_id, window, proposals)
            first = [flow.award_one(p) for p in proposals[:ALREADY_AWARDED]]
            uri, token = bed.system.amqp_uri, bed.system.token("sc.chair", ["committee"])
            fresh = [Caller(uri, token) for _ in range(sizes.racers)]
            answers = race(
                [
                    (
                        c,
                        {
                            "proposal_id": p["proposal_id"],
                            "amount_eur": str(PRIZE),
                            "decision_reference": f"SC-RACE-{p['n']}",
                            "decision_date": date.today().isoformat(),
                        },
                    )
                    for c, p in zip(fresh, proposals[ALREADY_AWARDED:])
                ],
                "grants",
                "award_grant",
            )
            outcomes = Counter(kind for kind, _ in answers)
            won = outcomes.get("ok", 0)
            outcome.check(won == 1, f"{won} of {sizes.racers} racing awards won: {dict(outcomes)}")
            outcome.check(
                outcomes.get("refused:award.window_allocation_exceeded", 0) == sizes.racers - won,
                f"racing awards answered {dict(outcomes)}",
            )
            allocation, committed = bed.rows(
                "grants",
                'SELECT allocation, committed FROM window_budgets WHERE call_id = :c AND "window" = :w',
                c=call_id,
                w=window,
            )[0]
            overspend = max(Decimal(committed) - Decimal(allocation), Decimal(0))
            outcome.check(overspend == 0, f"window committed {committed} of {allocation}")
            outcome.figures.update(
                {
                    "racers": sizes.racers,
                    "won": won,
                    "refused": outcomes.get("refused:award.window_allocation_exceeded", 0),
                    "overspend_eur": overspend,
                }
            )

            contracted = [flow.contract_and_pay(a) for a in first[:2]]
            figures = duplicate_payments(outcome, bed, contracted, sizes.duplicate_requests)
            outcome.figures.update(figures)
        finally:
            flow.close()
            for caller in fresh:
                caller.close()
        figures = invariants.check(bed, outcome, sizes.settle_seconds)
        outcome.figures = {**outcome.figures, **{k: figures[k] for k in ("events", "paid_eur") if k in figures}}


def duplicate_payments(outcome, bed: Testbed, grants: list[dict], copies: int) -> dict:
    uri = bed.system.amqp_uri
    officer, approver = (
        bed.system.token("fo.amina", ["finance_officer"]),
        bed.system.token("fa.jonas", ["finance_approver"]),
    )
    callers = []

    def many(token, n):
        made = [Caller(uri, token) for _ in range(n)]
        callers.extend(made)
        return made

    try:
        a, b = grants
        tranche_a = first_tranche(bed, a["grant_id"])
        same = {
            "grant_id": a["grant_id"],
            "tranche_number": tranche_a[0],
            "amount_eur": tranche_a[1],
            "idempotency_key": f"{a['grant_id']}-dup",
        }
        answers = race([(c, same) for c in many(officer, copies)], "grants", "request_payment")
        ids = {r["payment_id"] for kind, r in answers if kind == "ok"}
        outcome.check(
            len(ids) == 1 and all(kind == "ok" for kind, _ in answers),
            f"duplicate requests: {Counter(k for k, _ in answers)}, payments {ids}",
        )
        payment_a = next(iter(ids)) if ids else None

        tranche_b = first_tranche(bed, b["grant_id"])
        answers = race(
            [
                (
                    c,
                    {
                        "grant_id": b["grant_id"],
                        "tranche_number": tranche_b[0],
                        "amount_eur": tranche_b[1],
                        "idempotency_key": f"{b['grant_id']}-key-{i}",
                    },
                )
                for i, c in enumerate(many(officer, copies))
            ],
            "grants",
            "request_payment",
        )
        won = [r for kind, r in answers if kind == "ok"]
        outcome.check(len(won) == 1, f"one tranche, {copies} keys: {Counter(k for k, _ in answers)}")
        payment_b = won[0]["payment_id"] if won else None

        approval = {"payment_id": payment_a, "value_date": date.today().isoformat(), "bank_reference": "BNK-DUP"}
        answers = race([(c, approval) for c in many(approver, copies)], "grants", "approve_payment")
        outcome.check(
            all(kind == "ok" for kind, _ in answers), f"duplicate approvals: {Counter(k for k, _ in answers)}"
        )
        approvers = [bed.system.token(f"fa.{i}", ["finance_approver"]) for i in range(copies)]
        answers = race(
            [
                (
                    callers_add(callers, Caller(uri, t)),
                    {"payment_id": payment_b, "value_date": date.today().isoformat(), "bank_reference": f"BNK-{i}"},
                )
                for i, t in enumerate(approvers)
            ],
            "grants",
            "approve_payment",
        )
        outcomes = Counter(kind for kind, _ in answers)
        outcome.check(outcomes.get("ok", 0) == 1, f"approvals by {copies} approvers: {dict(outcomes)}")
    finally:
        for caller in callers:
            caller.close()
    double = 0
    for grant, payment in ((a, payment_a), (b, payment_b)):
        rows = bed.rows("grants", "SELECT id, status, amount FROM payments WHERE grant_id = :g", g=grant["grant_id"])
        paid = bed.value("grants", "SELECT paid FROM grants WHERE id = :g", g=grant["grant_id"])
        events = bed.value(
            "grants",
            "SELECT count(*) FROM outbox WHERE event_type = 'tranche_paid' AND "
            "body::json -> 'data' ->> 'grant_id' = :g",
            g=grant["grant_id"],
        )
        ok = (
            len(rows) == 1
            and rows[0][0] == payment
            and rows[0][1] == "paid"
            and Decimal(paid) == Decimal(rows[0][2])
            and events == 1
        )
        double += not ok
        outcome.check(ok, f"grant {grant['grant_id']}: payments {rows}, paid {paid}, tranche_paid events {events}")
    return {"duplicate_requests": copies, "double_payments": double}


def callers_add(callers: list, caller: Caller) -> Caller:
    callers.append(caller)
    return caller


def first_tranche(bed: Testbed, grant_id: str) -> tuple[int, str]:
    grant = bed.staff("pm").grants.get_grant(grant_id=grant_id)
    first = grant["schedule"][0]
    return first["number"], first.get("payable_eur") or first["planned_amount_eur"]
