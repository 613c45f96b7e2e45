"""Independent evidence: what the clients were told, against what each service and the report hold.

The invariants in invariants.py compare the services with each other (producers' outboxes against consumers'
inboxes); a write acknowledged to a client and lost together with its outbox row would pass them. These checks
start from the other end — the clients' own record of every acknowledged operation and the amounts they were
told (`ClientRecord`, kept by reliability/flow.py) — and count effects where no uniqueness constraint would hide a
double application: running sums, rows per business key, e-mails the SMTP server received.

Each check is a plain function of (record, observed) returning the problems it finds, so a test can plant a loss
or a double application in made-up data and see it fail (tests/unit/reliability/test_evidence_checks.py).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal("0.00")
MONEY_SERVICES = ("grants", "reporting", "notifications")  # each keeps every grant's award
PROPOSAL_SERVICES = ("calls", "grants", "notifications", "reporting")


@dataclass
class ClientRecord:
    """Acknowledged operations as the clients saw them. `complete` when every write of the run went through it
    (then anything beyond it in a service was applied without being asked for)."""

    proposals: dict = field(default_factory=dict)  # proposal_id -> {"lead": e-mail, "partner": e-mail}
    grants: dict = field(default_factory=dict)  # grant_id -> {"proposal_id", "amount": Decimal}
    contracted: set = field(default_factory=set)  # grant ids whose contract signature was acknowledged
    payments: dict = field(default_factory=dict)  # payment_id -> {"grant_id", "amount": Decimal} (approved: paid)
    complete: bool = True

    def __post_init__(self):
        self._lock = threading.Lock()

    def proposal(self, proposal_id: str, lead: str, partner: str):
        with self._lock:
            self.proposals[proposal_id] = {"lead": lead, "partner": partner}

    def grant(self, grant_id: str, proposal_id: str, amount):
        with self._lock:
            self.grants[grant_id] = {"proposal_id": proposal_id, "amount": Decimal(str(amount))}

    def contract(self, grant_id: str):
        with self._lock:
            self.contracted.add(grant_id)

    def payment(self, payment_id: str, grant_id: str, amount):
        with self._lock:
            self.payments[payment_id] = {"grant_id": grant_id, "amount": Decimal(str(amount))}

    def merge(self, other: "ClientRecord") -> "ClientRecord":
        merged = ClientRecord(complete=self.complete and other.complete)
        for part in ("proposals", "grants", "payments"):
            getattr(merged, part).update({**getattr(self, part), **getattr(other, part)})
        merged.contracted = self.contracted | other.contracted
        return merged

    def expected_emails(self) -> Counter:
        """(recipient, kind) -> how many distinct messages the notification rules call for."""
        expected = Counter()
        for proposal in self.proposals.values():
            expected[(proposal["lead"], "submission_receipt")] += 1
        for grant_id, grant in self.grants.items():
            proposal = self.proposals.get(grant["proposal_id"])
            if proposal is None:
                continue
            expected[(proposal["lead"], "award")] += 1
            if grant_id in self.contracted:
                expected[(proposal["lead"], "contract_signed")] += 1
                expected[(proposal["partner"], "contract_signed")] += 1
        for payment in self.payments.values():
            grant = self.grants.get(payment["grant_id"])
            proposal = self.proposals.get(grant["proposal_id"]) if grant else None
            if proposal is not None:
                expected[(proposal["lead"], "tranche_paid")] += 1
        return expected


@dataclass
class Observed:
    """What the services hold at the end, read from their databases and RPCs and from the SMTP server."""

    proposals: dict = field(default_factory=dict)  # service -> set of proposal ids
    grants: dict = field(default_factory=dict)  # service -> {grant_id: award amount}
    payments: dict = field(default_factory=dict)  # service -> {payment_id: amount paid}
    paid_per_grant: dict = field(default_factory=dict)  # service -> {grant_id: running total paid}
    tranche_rows: Counter = field(default_factory=Counter)  # (grant_id, tranche_number) -> rows in the report
    notification_rows: Counter = field(default_factory=Counter)  # (subject id, recipient, template) -> rows
    emails: dict = field(default_factory=dict)  # (recipient, kind) -> set of Message-IDs received
    totals: dict = field(default_factory=dict)  # source -> (committed, paid)


def acknowledged_are_kept(record: ClientRecord, seen: Observed) -> list[str]:
    """Every acknowledged proposal, grant and payment is in every service that must hold it, with the amount the
    client was told."""
    problems = []
    for service in PROPOSAL_SERVICES:
        lost = set(record.proposals) - seen.proposals.get(service, set())
        if lost:
            problems.append(f"{service}: {len(lost)} acknowledged proposals missing, e.g. {sorted(lost)[:2]}")
    for service in MONEY_SERVICES:
        problems += _kept_with_amounts(service, "grants", record.grants, seen.grants.get(service, {}))
    for service in ("grants", "reporting"):
        problems += _kept_with_amounts(service, "payments", record.payments, seen.payments.get(service, {}))
    return problems


def _kept_with_amounts(service: str, kind: str, told: dict, held: dict) -> list[str]:
    problems = []
    lost = [key for key in told if key not in held]
    if lost:
        problems.append(f"{service}: {len(lost)} acknowledged {kind} missing, e.g. {lost[:2]}")
    wrong = [
        (key, str(held[key]), str(r["amount"]))
        for key, r in told.items()
        if key in held and Decimal(held[key]) != r["amount"]
    ]
    if wrong:
        problems.append(
            f"{service}: {len(wrong)} {kind} differ from the amount the client was told (held, told): {wrong[:2]}"
        )
    return problems


def nothing_unasked(record: ClientRecord, seen: Observed) -> list[str]:
    """With a complete record: no grant or payment that no acknowledged request made (an operation applied twice
    under a new id)."""
    if not record.complete:
        return []
    problems = []
    for kind, known, held_by in (("grants", record.grants, seen.grants), ("payments", record.payments, seen.payments)):
        for service, held in held_by.items():
            extra = set(held) - set(known)
            if extra:
                problems.append(f"{service}: {len(extra)} {kind} nobody was told of, e.g. {sorted(extra)[:2]}")
    return problems


def sums_agree(record: ClientRecord, seen: Observed) -> list[str]:
    """Running totals (no constraint keeps them right), with a complete record: each grant's paid total in every
    service equals the payments approved for it; the committed and paid totals in the grants ledger and in the
    report equal the sums the clients were told."""
    if not record.complete:  # writes besides the record (fuzzing, races) move the totals too
        return []
    problems = []
    told_paid = defaultdict(lambda: ZERO)
    for payment in record.payments.values():
        told_paid[payment["grant_id"]] += payment["amount"]
    for service, paid in seen.paid_per_grant.items():
        wrong = [
            (g, str(paid.get(g, ZERO)), str(told_paid[g]))
            for g in record.grants
            if Decimal(paid.get(g, ZERO)) != told_paid[g]
        ]
        if wrong:
            problems.append(
                f"{service}: {len(wrong)} grants' paid totals differ from the payments approved "
                f"(held, told): {wrong[:2]}"
            )
    told = (
        sum((g["amount"] for g in record.grants.values()), ZERO),
        sum((p["amount"] for p in record.payments.values()), ZERO),
    )
    for source, (committed, paid) in seen.totals.items():
        if (Decimal(committed), Decimal(paid)) != told:
            problems.append(f"{source}: committed/paid {committed}/{paid}, the clients were told {told[0]}/{told[1]}")
    return problems


def one_effect_per_key(record: ClientRecord, seen: Observed) -> list[str]:
    """Rows per business key where the schema allows several: one tranche row per (grant, tranche) in the report,
    one notification per (proposal or grant, recipient, template)."""
    problems = []
    twice = {k: n for k, n in seen.tranche_rows.items() if n > 1}
    if twice:
        problems.append(f"reporting: {len(twice)} tranches recorded more than once, e.g. {list(twice.items())[:2]}")
    twice = {k: n for k, n in seen.notification_rows.items() if n > 1}
    if twice:
        problems.append(
            f"notifications: {len(twice)} messages planned more than once for one subject, recipient "
            f"and template, e.g. {list(twice.items())[:2]}"
        )
    return problems


def emails_match(record: ClientRecord, seen: Observed) -> list[str]:
    """The SMTP server received, per recipient and kind, exactly the distinct messages the acknowledged operations
    call for (a resend of the same Message-ID is judged by the invariants, against the kills that allow it)."""
    problems = []
    expected = record.expected_emails()
    received = {key: len(ids) for key, ids in seen.emails.items()}
    missing = {k: (received.get(k, 0), n) for k, n in expected.items() if received.get(k, 0) < n}
    if missing:
        problems.append(
            f"{len(missing)} expected e-mails never received (received, expected): {list(missing.items())[:2]}"
        )
    flow_addresses = {p[key] for p in record.proposals.values() for key in ("lead", "partner")}
    extra = {
        k: (n, expected.get(k, 0))
        for k, n in received.items()
        if k[0] in flow_addresses and n > expected.get(k, 0) and (record.complete or k in expected)
    }
    if extra:
        problems.append(
            f"{len(extra)} recipients received more distinct messages than called for (received, "
            f"expected): {list(extra.items())[:2]}"
        )
    return problems


CHECKS = (acknowledged_are_kept, nothing_unasked, sums_agree, one_effect_per_key, emails_match)


def problems(record: ClientRecord, seen: Observed) -> list[str]:
    return [problem for check in CHECKS for problem in check(record, seen)]
