"""The invariants checked after every scenario, once the system has settled.

1. exactly once: each consumer applied each event produced for it once — the producers' outbox rows (plus the
   events the suite published itself) against each consumer's inbox rows, per consumer and event (the inbox key
   is (consumer, event_id)); nothing applied that nobody produced; every outbox row published.
2. books agree: reporting's reconcile RPC (grant by grant, to the cent) and, independently, the reporting totals
   against the sum of the grants ledger.
3. no window or programme over its budget, no grant paid above its award, no tranche paid twice, and the
   budgets' committed amounts equal the grants awarded in them (grants tables).
4. no duplicate e-mail: notifications unique per (event, recipient, template), and the SMTP sink never received
   the same Message-ID twice; every notification marked sent was received.
5. nothing in the dead-letter stores that should not be there.
6. no half-applied change: each state row has its event and each event its state row (proposal ⇔
   proposal_submitted, grant ⇔ grant_awarded, paid payment ⇔ tranche_paid).
"""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

from services.common.topology import SERVICES, SUBSCRIPTIONS, handler_method

from .testbed import Testbed, consumed_types

ZERO = Decimal("0.00")


def check(bed: Testbed, outcome, settle_seconds: float, held_expected: dict | None = None, running=None):
    """Settle, then check every invariant; problems go on the outcome, figures about the run are returned."""
    running = running or [s for s in SERVICES if bed.system.processes[s].running]
    seen = bed.settle(settle_seconds, running)
    figures = {"events": seen.get("produced", 0)}
    checks = (exactly_once, books_agree, within_budgets, one_email_each, dead_letters, atomic_changes)
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
    held = {(r[0], r[1]) for s in SUBSCRIPTIONS if s in running
            for r in bed.rows(s, "SELECT consumer, event_id FROM dead_letters WHERE status = 'held'")}
    deliveries = 0
    for consumer in SUBSCRIPTIONS:
        if consumer not in running:
            continue
        wanted = consumed_types(consumer)
        expected = {(f"{consumer}.{handler_method(t)}", e) for e, t in produced.items() if t in wanted}
        rows = bed.rows(consumer, "SELECT consumer, event_id FROM inbox")
        applied = Counter((c, e) for c, e in rows)
        twice = [k for k, n in applied.items() if n > 1]
        outcome.check(not twice, f"{consumer}: {len(twice)} events applied twice, e.g. {twice[:3]}")
        missing = expected - set(applied) - held
        outcome.check(not missing, f"{consumer}: {len(missing)} events never applied, e.g. {sorted(missing)[:3]}")
        unknown = set(applied) - expected
        outcome.check(not unknown, f"{consumer}: {len(unknown)} events applied that no producer committed, "
                                   f"e.g. {sorted(unknown)[:3]}")
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
    totals = auditor.reporting.totals()
    mine = _totals_pair(totals)
    if mine is not None:
        outcome.check(mine == (committed, paid), f"reporting totals {mine} != grants ledger {(committed, paid)}")


def _totals_pair(totals):
    """(committed, disbursed) from reporting.totals, whatever its exact shape (None if not recognisable)."""
    if not isinstance(totals, dict):
        return None
    source = totals.get("programme", totals) if isinstance(totals.get("programme"), dict) else totals
    for committed_key, paid_key in (("committed_eur", "disbursed_eur"), ("committed_eur", "paid_eur")):
        if committed_key in source and paid_key in source:
            return Decimal(str(source[committed_key])), Decimal(str(source[paid_key]))
    if isinstance(totals.get("programmes"), list):
        pairs = [_totals_pair(p) for p in totals["programmes"]]
        if pairs and all(pairs):
            return sum((p[0] for p in pairs), ZERO), sum((p[1] for p in pairs), ZERO)
    return None


def within_budgets(bed: Testbed, outcome, figures, held_expected, running):
    if "grants" not in running:
        return
    over = bed.rows("grants", "SELECT call_id, \"window\", allocation, committed FROM window_budgets "
                              "WHERE committed > allocation OR committed < 0")
    outcome.check(not over, f"windows over their allocation: {over[:3]}")
    over = bed.rows("grants", "SELECT programme_id, envelope, committed FROM programme_budgets "
                              "WHERE committed > envelope OR committed < 0")
    outcome.check(not over, f"programmes over their EC contribution: {over[:3]}")
    drift = bed.rows("grants", """
        SELECT w.call_id, w."window", w.committed, coalesce(sum(g.amount), 0)
        FROM window_budgets w LEFT JOIN grants g
          ON g.call_id = w.call_id AND g."window" = w."window" AND g.status <> 'declined'
        GROUP BY w.call_id, w."window", w.committed HAVING w.committed <> coalesce(sum(g.amount), 0)""")
    outcome.check(not drift, f"window commitments differ from the grants awarded in them: {drift[:3]}")
    overpaid = bed.rows("grants", "SELECT id, amount, paid FROM grants WHERE paid > amount")
    outcome.check(not overpaid, f"grants paid above their award: {overpaid[:3]}")
    paid_twice = bed.rows("grants", "SELECT grant_id, tranche_number, count(*) FROM payments WHERE status = 'paid' "
                                    "GROUP BY grant_id, tranche_number HAVING count(*) > 1")
    outcome.check(not paid_twice, f"tranches paid twice: {paid_twice[:3]}")
    drift = bed.rows("grants", """
        SELECT g.id, g.paid, coalesce(sum(p.amount), 0) FROM grants g
        LEFT JOIN payments p ON p.grant_id = g.id AND p.status = 'paid'
        GROUP BY g.id, g.paid HAVING g.paid <> coalesce(sum(p.amount), 0)""")
    outcome.check(not drift, f"grants whose paid amount differs from their paid tranches: {drift[:3]}")


def one_email_each(bed: Testbed, outcome, figures, held_expected, running):
    duplicates = bed.sink.duplicates()
    resent = sum(count - 1 for count in duplicates.values())
    figures["resent_same_message_id"] = resent
    outcome.check(resent <= bed.resends_allowed,
                  f"SMTP sink received {len(duplicates)} Message-IDs more than once ({bed.resends_allowed} allowed "
                  f"by kills of notifications mid-delivery), e.g. {list(duplicates.items())[:3]}")
    figures["emails"] = bed.sink.messages
    if "notifications" not in running:
        return
    twice = bed.rows("notifications", "SELECT source_event_id, recipient, template, count(*) FROM notifications "
                                      "GROUP BY source_event_id, recipient, template HAVING count(*) > 1")
    outcome.check(not twice, f"notifications planned twice: {twice[:3]}")
    sent = {r[0] for r in bed.rows("notifications", "SELECT message_id FROM notifications "
                                                    "WHERE status = 'sent' AND message_id IS NOT NULL")}
    lost = {m for m in sent if m.strip() not in bed.sink.received()}
    outcome.check(not lost, f"{len(lost)} notifications marked sent never reached the SMTP server, "
                            f"e.g. {sorted(lost)[:2]}")
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
            letters = bed.rows(service, "SELECT consumer, event_type, left(error, 200) FROM dead_letters "
                                        "WHERE status = 'held' LIMIT 3")
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
        events = Counter(r[0] for r in bed.rows(
            service, "SELECT body::json -> 'data' ->> :key FROM outbox WHERE event_type = :t", key=key, t=event_type))
        twice = [k for k, n in events.items() if n > 1]
        outcome.check(not twice, f"{event_type}: {len(twice)} state changes emitted twice, e.g. {twice[:2]}")
        outcome.check(state == set(events), f"{service}: {event_type} and its state differ (state without event: "
                      f"{len(state - set(events))}, event without state: {len(set(events) - state)})")
