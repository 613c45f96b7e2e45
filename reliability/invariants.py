"""The invariants checked after every scenario, once the system has settled.

1. none lost between services: every event a producer committed (plus those the suite published itself) has an
   inbox row at each consumer that wants it (or is a dead letter the scenario expects); nothing applied that nobody
   produced; every outbox row published. ("None applied twice" cannot be read from the inbox — its key forbids it
   — so it is judged by 7.)
2. books agree: reporting's reconcile RPC (grant by grant, to the cent) and, independently, the reporting totals
   against the sum of the grants ledger.
3. no window or programme over its budget, no grant paid above its award, the budgets' committed amounts equal
   the grants awarded in them, each grant's paid amount equals its paid tranches (grants tables).
4. no duplicate e-mail: the SMTP sink never received the same Message-ID twice (beyond what kills of
   notifications mid-delivery allow); every notification marked sent was received; none left unsent.
5. nothing in the dead-letter stores that should not be there.
6. no half-applied change: each state row has its event and each event its state row (proposal ⇔
   proposal_submitted, grant ⇔ grant_awarded, paid payment ⇔ tranche_paid).
7. the clients' evidence (reliability/evidence.py): every operation acknowledged to a client is in each service
   with the amount it was told; nothing beyond it; running totals, rows per business key and e-mails received
   counted where no constraint would hide a double application.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from services.common.contracts.topology import SERVICES, SUBSCRIPTIONS, handler_method
from services.common.storage.types import cents_to_money

from . import evidence
from .testbed import Testbed, consumed_types

ZERO = Decimal("0.00")


def check(bed: Testbed, outcome, settle_seconds: float, held_expected: dict | None = None, running=None):
    """Settle, then check every invariant; problems go on the outcome, figures about the run are returned."""
    running = running or [s for s in SERVICES if bed.system.processes[s].running]
    seen = bed.settle(settle_seconds, running)
    figures = {"events": seen.get("produced", 0)}
    checks = (exactly_once, books_agree, within_budgets, one_email_each, dead_letters, atomic_changes, client_evidence)
    for fn in checks:
        try:
            fn(bed, outcome, figures, held_expected or {}, running)
        except Exception as exc:  # a check that cannot run is a failure to prove the invariant
            outcome.fail(f"{fn.__name__} could not run: {type(exc).__name__}: {exc}")
    return figures


def exactly_once(bed: Testbed, outcome, figures, held_expected, running):
    produced = bed.produced()
    pending = sum(bed.system.pending_outbox(s) for s in running)
    outcome.check(pending == 0, f"{pending} outbox rows never published")
    held = {
        (r[0], r[1])
        for s in SUBSCRIPTIONS
        if s in running
        for r in bed.rows(s, "SELECT consumer, event_id FROM dead_letters WHERE status = 'held'")
    }
    deliveries = 0
    for consumer in SUBSCRIPTIONS:
        if consumer not in running:
            continue
        wanted = consumed_types(consumer)
        expected = {(f"{consumer}.{handler_method(t)}", e) for e, t in produced.items() if t in wanted}
        applied = {(c, e) for c, e in bed.rows(consumer, "SELECT consumer, event_id FROM inbox")}
        missing = expected - set(applied) - held
        outcome.check(not missing, f"{consumer}: {len(missing)} events never applied, e.g. {sorted(missing)[:3]}")
        unknown = set(applied) - expected
        outcome.check(
            not unknown,
            f"{consumer}: {len(unknown)} events applied that no producer committed, e.g. {sorted(unknown)[:3]}",
        )
        deliveries += len(applied)
    figures["applied"] = deliveries


def books_agree(bed: Testbed, outcome, figures, held_expected, running):
    if not {"grants", "reporting"} <= set(running):
        return
    auditor = bed.staff("auditor")
    ledger = auditor.grants.ledger()["grants"]
    committed = sum((Decimal(g["committed_eur"]) for g in ledger), ZERO)
    paid = sum((Decimal(g["paid_eur"]) for g in ledger), ZERO)
    figures["grants"] = len(ledger)
    figures["committed_eur"] = committed
    figures["paid_eur"] = paid
    result = auditor.reporting.reconcile()
    clean = result.get("clean") if isinstance(result, dict) else None
    if clean is None and isinstance(result, dict):
        clean = not result.get("differences")
    outcome.check(bool(clean), f"reporting.reconcile finds differences: {str(result.get('differences'))[:300]}")
    totals = auditor.reporting.totals()  # a shape it does not have makes the check fail, never skip
    mine = Decimal(totals["committed_eur"]), Decimal(totals["disbursed_eur"])
    outcome.check(mine == (committed, paid), f"reporting totals {mine} != grants ledger {(committed, paid)}")


def within_budgets(bed: Testbed, outcome, figures, held_expected, running):
    if "grants" not in running:
        return
    over = bed.rows(
        "grants",
        'SELECT call_id, "window", allocation, committed FROM window_budgets '
        "WHERE committed > allocation OR committed < 0",
    )
    outcome.check(not over, f"windows over their allocation: {over[:3]}")
    over = bed.rows(
        "grants",
        "SELECT programme_id, envelope, committed FROM programme_budgets WHERE committed > envelope OR committed < 0",
    )
    outcome.check(not over, f"programmes over their EC contribution: {over[:3]}")
    drift = bed.rows(
        "grants",
        """
        SELECT w.call_id, w."window", w.committed, coalesce(sum(g.amount - coalesce(g.decommitted, 0)), 0)
        FROM window_budgets w LEFT JOIN grants g
          ON g.call_id = w.call_id AND g."window" = w."window" AND g.status <> 'declined'
        GROUP BY w.call_id, w."window", w.committed
        HAVING w.committed <> coalesce(sum(g.amount - coalesce(g.decommitted, 0)), 0)""",
    )
    outcome.check(not drift, f"window commitments differ from the grants awarded in them: {drift[:3]}")
    overpaid = bed.rows("grants", "SELECT id, amount, paid FROM grants WHERE paid > amount")
    outcome.check(not overpaid, f"grants paid above their award: {overpaid[:3]}")
    drift = bed.rows(
        "grants",
        """
        SELECT g.id, g.paid, coalesce(sum(p.amount), 0) FROM grants g
        LEFT JOIN payments p ON p.grant_id = g.id AND p.status = 'paid'
        GROUP BY g.id, g.paid HAVING g.paid <> coalesce(sum(p.amount), 0)""",
    )
    outcome.check(not drift, f"grants whose paid amount differs from their paid tranches: {drift[:3]}")


def one_email_each(bed: Testbed, outcome, figures, held_expected, running):
    duplicates = bed.sink.duplicates()
    resent = sum(count - 1 for count in duplicates.values())
    figures["resent_same_message_id"] = resent
    outcome.check(
        resent <= bed.resends_allowed,
        f"SMTP sink received {len(duplicates)} Message-IDs more than once ({bed.resends_allowed} allowed "
        f"by kills of notifications mid-delivery), e.g. {list(duplicates.items())[:3]}",
    )
    figures["emails"] = bed.sink.messages
    if "notifications" not in running:
        return
    sent = {
        r[0]
        for r in bed.rows(
            "notifications", "SELECT message_id FROM notifications WHERE status = 'sent' AND message_id IS NOT NULL"
        )
    }
    lost = {m for m in sent if m.strip() not in bed.sink.received()}
    outcome.check(
        not lost, f"{len(lost)} notifications marked sent never reached the SMTP server, e.g. {sorted(lost)[:2]}"
    )
    failed = bed.value("notifications", "SELECT count(*) FROM notifications WHERE status <> 'sent'")
    outcome.check(failed == 0, f"{failed} notifications not sent")


def dead_letters(bed: Testbed, outcome, figures, held_expected, running):
    total = 0
    for service in SERVICES:
        if service not in running:
            continue
        held = bed.system.held_dead_letters(service)
        total += held
        expected = held_expected.get(service, 0)
        if held != expected:
            letters = bed.rows(
                service, "SELECT consumer, event_type, left(error, 200) FROM dead_letters WHERE status = 'held' LIMIT 3"
            )
            outcome.fail(f"{service}: {held} dead letters held, {expected} expected: {letters}")
    figures["dead_letters"] = total


# (service, state query, event type, key in the event's data): each state row has its event and vice versa
ATOMIC = (
    ("calls", "SELECT id FROM proposals", "proposal_submitted", "proposal_id"),
    ("grants", "SELECT id FROM grants", "grant_awarded", "grant_id"),
    ("grants", "SELECT id FROM payments", "payment_requested", "payment_id"),
    ("grants", "SELECT id FROM payments WHERE status = 'paid'", "tranche_paid", "payment_id"),
)


def atomic_changes(bed: Testbed, outcome, figures, held_expected, running):
    for service, query, event_type, key in ATOMIC:
        if service not in running:
            continue
        state = {r[0] for r in bed.rows(service, query)}
        events = Counter(
            r[0]
            for r in bed.rows(
                service, "SELECT body::json -> 'data' ->> :key FROM outbox WHERE event_type = :t", key=key, t=event_type
            )
        )
        twice = [k for k, n in events.items() if n > 1]
        outcome.check(not twice, f"{event_type}: {len(twice)} state changes emitted twice, e.g. {twice[:2]}")
        outcome.check(
            state == set(events),
            f"{service}: {event_type} and its state differ (state without event: "
            f"{len(state - set(events))}, event without state: {len(set(events) - state)})",
        )


# templates a subject (proposal or grant) calls for once per recipient in its whole life
ONCE_PER_SUBJECT = ("submission_receipt", "award", "contract_signed", "rejection", "grant_terminated", "grant_closed")


def observe(bed: Testbed, running) -> evidence.Observed:
    """The final state of each service, the report and the SMTP server, as evidence.Observed."""
    seen = evidence.Observed(emails=bed.sink.received_by_kind())

    def pairs(service, query):  # id -> amount (Money columns hold integer cents)
        return {k: cents_to_money(v) for k, v in bed.rows(service, query)}

    proposal_queries = {
        "calls": "SELECT id FROM proposals",
        "grants": "SELECT proposal_id FROM proposals",
        "notifications": "SELECT proposal_id FROM proposals",
        "reporting": "SELECT proposal_id FROM proposal_facts",
    }
    for service, query in proposal_queries.items():
        if service in running:
            seen.proposals[service] = {r[0] for r in bed.rows(service, query)}
    if "grants" in running:
        seen.grants["grants"] = pairs("grants", "SELECT id, amount FROM grants")
        seen.payments["grants"] = pairs("grants", "SELECT id, amount FROM payments WHERE status = 'paid'")
        seen.paid_per_grant["grants"] = pairs("grants", "SELECT id, paid FROM grants")
        ledger = bed.staff("auditor").grants.ledger()["grants"]
        seen.totals["grants ledger"] = (
            sum((Decimal(g["committed_eur"]) for g in ledger), ZERO),
            sum((Decimal(g["paid_eur"]) for g in ledger), ZERO),
        )
    if "notifications" in running:
        seen.grants["notifications"] = pairs("notifications", "SELECT grant_id, amount FROM grants")
        seen.paid_per_grant["notifications"] = pairs("notifications", "SELECT grant_id, paid FROM grants")
        seen.notification_rows = Counter(
            {
                (r[0], r[1], r[2]): r[3]
                for r in bed.rows(
                    "notifications",
                    "SELECT coalesce(grant_id, proposal_id), recipient, template, count(*) "
                    "FROM notifications WHERE template = ANY(:once) GROUP BY 1, 2, 3",
                    once=list(ONCE_PER_SUBJECT),
                )
            }
        )
    if "reporting" in running:
        seen.grants["reporting"] = pairs("reporting", "SELECT grant_id, amount FROM grant_facts")
        seen.payments["reporting"] = pairs("reporting", "SELECT payment_id, amount FROM tranche_facts")
        seen.paid_per_grant["reporting"] = pairs(
            "reporting", "SELECT grant_id, sum(amount) FROM tranche_facts GROUP BY grant_id"
        )
        seen.tranche_rows = Counter(
            {
                (r[0], r[1]): r[2]
                for r in bed.rows(
                    "reporting", "SELECT grant_id, tranche_number, count(*) FROM tranche_facts GROUP BY 1, 2"
                )
            }
        )
        totals = bed.staff("auditor").reporting.totals()
        seen.totals["reporting totals"] = (Decimal(totals["committed_eur"]), Decimal(totals["disbursed_eur"]))
    return seen


def client_evidence(bed: Testbed, outcome, figures, held_expected, running):
    record = evidence.ClientRecord()
    for flow_record in bed.records:
        record = record.merge(flow_record)
    figures["acknowledged"] = f"{len(record.proposals)}p/{len(record.grants)}g/{len(record.payments)}pay"
    for problem in evidence.problems(record, observe(bed, running)):
        outcome.fail(f"client evidence: {problem}")
