"""Reconciliation of reporting's read model with the grants ledger, grant by grant, to the cent (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from services.common.values.money import to_money

ZERO = Decimal("0.00")

MISSING_IN_REPORTING = "missing_in_reporting"
MISSING_IN_GRANTS = "missing_in_grants"
COMMITTED_DIFFERS = "committed_differs"
PAID_DIFFERS = "paid_differs"
RECOVERY_DIFFERS = "recovery_differs"
DECOMMITTED_DIFFERS = "decommitted_differs"
AMOUNTS = (
    ("committed_eur", COMMITTED_DIFFERS),
    ("paid_eur", PAID_DIFFERS),
    ("recovery_eur", RECOVERY_DIFFERS),
    ("decommitted_eur", DECOMMITTED_DIFFERS),
)
TOTALLED = ("committed_eur", "paid_eur", "decommitted_eur")


def compare(reporting: Mapping[str, Mapping], ledger: Iterable[Mapping]) -> dict:
    """Every difference between reporting's {grant_id: {reference, committed_eur, paid_eur, recovery_eur,
    decommitted_eur}} and the ledger's [{grant_id, reference, committed_eur, paid_eur, recovery_eur?,
    decommitted_eur?, ...}] (amounts as Decimal or decimal strings). Committed is net of decommitments on both
    sides.

    A grant on one side only is one difference; a grant on both sides whose committed, paid or recovery
    amounts differ gives one difference per amount. A reporting entry whose committed is None (payments of an
    award that was never recorded here) counts as missing in reporting when the ledger has the grant.
    """
    books = {entry["grant_id"]: entry for entry in ledger}
    differences = []
    totals = {side: dict.fromkeys(TOTALLED, ZERO) for side in ("reporting", "grants")}
    for side, entries in (("grants", books.values()), ("reporting", reporting.values())):
        for entry in entries:
            for key in TOTALLED:
                totals[side][key] += to_money(entry.get(key) or ZERO)

    for grant_id in sorted(set(books) | set(reporting)):
        theirs, mine = books.get(grant_id), reporting.get(grant_id)
        reference = (theirs or {}).get("reference") or (mine or {}).get("reference")
        if theirs is None:
            differences.append(_difference(grant_id, reference, MISSING_IN_GRANTS, mine, None))
            continue
        if mine is None or mine["committed_eur"] is None:
            differences.append(_difference(grant_id, reference, MISSING_IN_REPORTING, mine, theirs))
            continue
        for key, kind in AMOUNTS:
            if key not in theirs:
                continue  # a ledger that does not report recoveries is not compared on them
            ours, books_value = mine.get(key, ZERO), to_money(theirs[key])
            if ours != books_value:
                differences.append(
                    {
                        "grant_id": grant_id,
                        "reference": reference,
                        "kind": kind,
                        "reporting_eur": ours,
                        "grants_eur": books_value,
                        "difference_eur": ours - books_value,
                    }
                )
    return {
        "grants_compared": len(set(books) | set(reporting)),
        "clean": not differences,
        "differences": differences,
        "totals": totals,
    }


def _difference(grant_id, reference, kind, mine, theirs) -> dict:
    def amounts(entry):
        if entry is None:
            return None
        return {
            "committed_eur": None if entry["committed_eur"] is None else to_money(entry["committed_eur"]),
            "paid_eur": to_money(entry["paid_eur"]),
        }

    return {
        "grant_id": grant_id,
        "reference": reference,
        "kind": kind,
        "reporting": amounts(mine),
        "grants": amounts(theirs),
    }
