"""Reconciliation of reporting's figures with the grants ledger, grant by grant, to the cent."""

from decimal import Decimal

from services.reporting.domain.reconciliation import compare

D = Decimal


def mine(committed, paid, recovery="0.00", reference="R"):
    return {
        "reference": reference,
        "committed_eur": None if committed is None else D(committed),
        "paid_eur": D(paid),
        "recovery_eur": D(recovery),
    }


def theirs(grant_id, committed, paid, recovery=None, reference="R"):
    entry = {
        "grant_id": grant_id,
        "reference": reference,
        "committed_eur": committed,
        "paid_eur": paid,
        "status": "contracted",
    }
    if recovery is not None:
        entry["recovery_eur"] = recovery
    return entry


def test_books_that_agree_are_clean_and_totals_match():
    result = compare(
        {"G1": mine("150000.00", "60000.00"), "G2": mine("0.00", "0.00")},
        [theirs("G1", "150000.00", "60000.00", "0.00"), theirs("G2", "0.00", "0.00", "0.00")],
    )
    assert result["clean"] and result["differences"] == [] and result["grants_compared"] == 2
    assert (
        result["totals"]["reporting"]
        == result["totals"]["grants"]
        == {"committed_eur": D("150000.00"), "paid_eur": D("60000.00"), "decommitted_eur": D("0.00")}
    )


def test_every_difference_is_listed_once_per_grant_and_amount():
    result = compare(
        {
            "G1": mine("150000.00", "60000.00"),
            "G2": mine("100000.01", "1.00", "5.00"),
            "G4": mine("50000.00", "0.00"),
            "G5": mine(None, "10.00"),
        },
        [
            theirs("G1", "150000.00", "60000.00"),
            theirs("G2", "100000.00", "0.00", "0.00"),
            theirs("G3", "70000.00", "0.00"),
            theirs("G5", "80000.00", "10.00"),
        ],
    )
    found = {(d["grant_id"], d["kind"]) for d in result["differences"]}
    assert found == {
        ("G2", "committed_differs"),
        ("G2", "paid_differs"),
        ("G2", "recovery_differs"),
        ("G3", "missing_in_reporting"),
        ("G4", "missing_in_grants"),
        ("G5", "missing_in_reporting"),
    }
    committed = next(d for d in result["differences"] if d["kind"] == "committed_differs")
    assert (committed["reporting_eur"], committed["grants_eur"], committed["difference_eur"]) == (
        D("100000.01"),
        D("100000.00"),
        D("0.01"),
    )
    assert not result["clean"] and result["grants_compared"] == 5


def test_a_ledger_without_recoveries_is_not_compared_on_them():
    assert compare({"G1": mine("1.00", "0.00", "9.00")}, [theirs("G1", "1.00", "0.00")])["clean"]
