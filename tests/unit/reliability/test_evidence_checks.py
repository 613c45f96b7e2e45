"""The reliability suite's independent checks fail when they should: a loss and a double application planted in
otherwise consistent data each make the check that looks for them report a problem."""

import copy
from collections import Counter
from decimal import Decimal

import pytest

from reliability import evidence

D = Decimal


def consistent():
    """Two proposals, one grant of EUR 100,000 contracted and paid EUR 80,000 — as the clients were told and as
    every service holds it."""
    record = evidence.ClientRecord()
    record.proposal("p1", "lead1@example.org", "partner1@example.org")
    record.proposal("p2", "lead2@example.org", "partner2@example.org")
    record.grant("g1", "p1", "100000.00")
    record.contract("g1")
    record.payment("pay1", "g1", "80000.00")
    seen = evidence.Observed(
        proposals={s: {"p1", "p2"} for s in evidence.PROPOSAL_SERVICES},
        grants={s: {"g1": D("100000.00")} for s in evidence.MONEY_SERVICES},
        payments={s: {"pay1": D("80000.00")} for s in ("grants", "reporting")},
        paid_per_grant={s: {"g1": D("80000.00")} for s in evidence.MONEY_SERVICES},
        tranche_rows=Counter({("g1", 1): 1}),
        notification_rows=Counter(
            {("p1", "lead1@example.org", "submission_receipt"): 1, ("g1", "lead1@example.org", "award"): 1}
        ),
        emails={
            ("lead1@example.org", "submission_receipt"): {"<m1>"},
            ("lead2@example.org", "submission_receipt"): {"<m2>"},
            ("lead1@example.org", "award"): {"<m3>"},
            ("lead1@example.org", "contract_signed"): {"<m4>"},
            ("partner1@example.org", "contract_signed"): {"<m5>"},
            ("lead1@example.org", "tranche_paid"): {"<m6>"},
        },
        totals={"grants ledger": (D("100000.00"), D("80000.00")), "reporting totals": (D("100000.00"), D("80000.00"))},
    )
    return record, seen


def test_consistent_data_passes_every_check():
    record, seen = consistent()
    assert evidence.problems(record, seen) == []


def planted(change):
    record, seen = consistent()
    change(record, seen)
    return record, seen


LOSSES = {
    "an acknowledged proposal reporting never got": (
        lambda r, s: s.proposals["reporting"].discard("p2"),
        evidence.acknowledged_are_kept,
    ),
    "an acknowledged grant lost with its outbox row": (
        lambda r, s: [s.grants[x].pop("g1") for x in evidence.MONEY_SERVICES],
        evidence.acknowledged_are_kept,
    ),
    "an approved payment the report never saw": (
        lambda r, s: s.payments["reporting"].pop("pay1"),
        evidence.acknowledged_are_kept,
    ),
    "a grant held with another amount than the one awarded": (
        lambda r, s: s.grants["notifications"].update(g1=D("10000.00")),
        evidence.acknowledged_are_kept,
    ),
    "a payment missing from the programme totals": (
        lambda r, s: s.totals.update({"reporting totals": (D("100000.00"), D("0.00"))}),
        evidence.sums_agree,
    ),
    "an e-mail never received": (
        lambda r, s: s.emails.pop(("partner1@example.org", "contract_signed")),
        evidence.emails_match,
    ),
}

DOUBLES = {
    "a tranche_paid applied twice to a running total": (
        lambda r, s: s.paid_per_grant["notifications"].update(g1=D("160000.00")),
        evidence.sums_agree,
    ),
    "an award applied twice under a new id": (
        lambda r, s: s.grants["grants"].update(g2=D("100000.00")),
        evidence.nothing_unasked,
    ),
    "a payment applied twice into the totals": (
        lambda r, s: s.totals.update({"grants ledger": (D("100000.00"), D("160000.00"))}),
        evidence.sums_agree,
    ),
    "a tranche recorded twice in the report": (
        lambda r, s: s.tranche_rows.update({("g1", 1): 1}),
        evidence.one_effect_per_key,
    ),
    "a receipt planned twice for one proposal": (
        lambda r, s: s.notification_rows.update({("p1", "lead1@example.org", "submission_receipt"): 1}),
        evidence.one_effect_per_key,
    ),
    "a second distinct award e-mail to the same lead": (
        lambda r, s: s.emails[("lead1@example.org", "award")].add("<m3-again>"),
        evidence.emails_match,
    ),
}


@pytest.mark.parametrize("case", sorted(LOSSES) + sorted(DOUBLES))
def test_a_planted_loss_or_double_application_is_found(case):
    change, check = {**LOSSES, **DOUBLES}[case]
    record, seen = planted(change)
    assert check(record, seen), f"{check.__name__} missed: {case}"
    assert evidence.problems(record, seen)


def test_an_incomplete_record_still_finds_losses_but_not_writes_it_does_not_know_of():
    record, seen = consistent()
    record.complete = False  # e.g. fuzzed writes besides the flow
    seen.grants["grants"]["g-fuzz"] = D("50000.00")
    seen.totals["reporting totals"] = (D("150000.00"), D("80000.00"))
    assert evidence.problems(record, seen) == []
    lost = copy.deepcopy(seen)
    lost.proposals["calls"].discard("p1")
    assert evidence.acknowledged_are_kept(record, lost)


def test_the_records_of_several_flows_merge():
    first, _ = consistent()
    second = evidence.ClientRecord(complete=False)
    second.proposal("p9", "lead9@example.org", "partner9@example.org")
    merged = first.merge(second)
    assert set(merged.proposals) == {"p1", "p2", "p9"} and merged.grants == first.grants
    assert not merged.complete and merged.expected_emails()[("lead9@example.org", "submission_receipt")] == 1
