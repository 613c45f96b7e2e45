"""Seeded, realistic facts of the JMDI programme for the budget report's tests and the benchmark's data set.

Not part of the service: `services/reporting/budget_report.py` is the pure model these facts feed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from services.reporting.domain.budget_report import (
    HEADINGS,
    BudgetReport,
    DecommitmentFact,
    ExpenditureFact,
    GrantFact,
    ProposalCounts,
    Programme,
    TrancheFact,
    build_budget_report,
    country_name,
)

JMDI_WINDOWS = {
    "remittances": ("Migrant remittances", Decimal("3750000.00")),
    "migrant_communities": ("Migrant communities", Decimal("3750000.00")),
    "migrant_associations": ("Capacity building of migrant associations", Decimal("3750000.00")),
    "migrants_rights": ("Migrants' rights", Decimal("3750000.00")),
}
JMDI_COUNTRIES = ("MA", "DZ", "CV", "EC", "EG", "ET", "GE", "GH", "JM", "ML", "MD", "NG", "PH", "SN", "LK", "TN")
APPLICANT_TYPES = ("ngo", "migrant_association", "local_authority", "research_institution")


def jmdi_programme(envelope: Decimal = Decimal("15000000.00")) -> Programme:
    return Programme(
        id="JMDI",
        name="EC-UN Joint Migration and Development Initiative",
        envelope=envelope,
        windows=dict(JMDI_WINDOWS),
    )


@dataclass(frozen=True, slots=True)
class Facts:
    programme: Programme
    grants: list[GrantFact]
    tranches: list[TrancheFact]
    expenditures: list[ExpenditureFact]
    counts: ProposalCounts
    decommitments: list[DecommitmentFact] = field(default_factory=list)

    def report(self, as_of: date | None = None) -> BudgetReport:
        return build_budget_report(
            self.programme,
            self.grants,
            self.tranches,
            self.expenditures,
            self.counts,
            as_of=as_of,
            decommitments=self.decommitments,
        )


_ORG_KINDS = {
    "ngo": ("Association", "Fondation", "Centre", "Réseau", "Initiative"),
    "migrant_association": (
        "Association des migrants",
        "Diaspora Network",
        "Union des ressortissants",
        "Migrant Workers' Association",
    ),
    "local_authority": ("Commune de", "Municipality of", "Conseil régional de", "District Assembly of"),
    "research_institution": ("Institute for Migration Studies", "Université de", "Observatory on Migration"),
}
_TOPICS = (
    "Développement Local",
    "Migration and Development",
    "Solidarité",
    "Co-development",
    "Remittances",
    "Droits des Migrants",
    "Return and Reintegration",
    "Women in Migration",
    "Youth and Mobility",
)
_TITLE_VERBS = ("Strengthening", "Mobilising", "Supporting", "Linking", "Empowering", "Channelling")
_TITLE_OBJECTS = {
    "remittances": "remittances for local development",
    "migrant_communities": "migrant communities as development actors",
    "migrant_associations": "the capacities of migrant associations",
    "migrants_rights": "the rights of migrant workers and their families",
}
# Morocco and a few large corridors draw more proposals; every country gets some.
_COUNTRY_WEIGHTS = (10, 5, 4, 5, 7, 5, 4, 6, 4, 6, 5, 8, 8, 7, 5, 6)


def _cents(c: int) -> Decimal:
    return Decimal(c).scaleb(-2)


def generate_facts(
    seed: int,
    n_grants: int,
    n_tranches: int | None = None,
    *,
    programme: Programme | None = None,
    start: date = date(2009, 6, 1),
    expenditures: bool = True,
) -> Facts:
    """Seeded, realistic JMDI facts: awards of EUR 50,000.00-200,000.00 over the 16 countries and 4 windows.

    `n_tranches` tranches in all (default 3 per grant), spread over the grants; each grant's tranches sum to at
    most its award (pre-financing first, then smaller instalments). Each grant's Annex III budget sums to its
    total eligible costs (award / EC share of 80-90%), with contingency <= 5% and indirect costs <= 7%.
    One accepted interim report (expenditure by heading) precedes each grant's second tranche.
    Deterministic for a seed; about 3 s for 100,000 grants and 300,000 tranches on the 2-core machine (the
    report over them about 2 s).
    """
    rng = random.Random(seed)
    programme = programme or jmdi_programme()
    if n_tranches is None:
        n_tranches = 3 * n_grants
    windows = list(programme.windows)
    rand = rng.random  # random() is ~20x cheaper than randint(); amounts stay exact integer cents

    def randint(lo: int, hi: int) -> int:
        return lo + int(rand() * (hi - lo + 1))

    def choice(seq):
        return seq[int(rand() * len(seq))]

    countries = rng.choices(JMDI_COUNTRIES, weights=_COUNTRY_WEIGHTS, k=n_grants)

    # how many tranches each grant gets: an even share, the remainder to random grants
    per = [n_tranches // n_grants if n_grants else 0] * n_grants
    for i in rng.sample(range(n_grants), n_tranches % n_grants if n_grants else 0):
        per[i] += 1

    grants: list[GrantFact] = []
    tranches: list[TrancheFact] = []
    spent: list[ExpenditureFact] = []
    span_days = 395  # awards from the first selection (mid 2009) over about 13 months
    width = max(4, len(str(n_grants)))
    days = [timedelta(days=d) for d in range(401)]
    heading_count = 6
    for i in range(n_grants):
        window = windows[i % len(windows)] if i < len(windows) else choice(windows)
        country = countries[i]
        applicant_type = choice(APPLICANT_TYPES)
        org = f"{choice(_ORG_KINDS[applicant_type])} {choice(_TOPICS)} {country_name(country)}"
        award_cents = randint(5_000_000, 20_000_000)
        awarded_at = start + days[randint(0, span_days)]
        grant_id = f"G-{i + 1:0{width}d}"

        # Annex III budget: direct headings, contingency <= 5% of direct, indirect <= 7% of total direct
        eligible = award_cents * 100 // randint(80, 90)
        indirect = eligible * randint(40, 65) // 1000  # about 4-6.5% of eligible (< 7% of total direct)
        total_direct = eligible - indirect
        contingency = total_direct * randint(0, 40) // 1000  # 0-4% of total direct (< 5% of subtotal)
        direct = total_direct - contingency
        shares = (randint(40, 55), randint(5, 12), randint(5, 12), randint(5, 10), randint(10, 20), randint(0, 5))
        total_share = sum(shares)
        parts = [direct * sh // total_share for sh in shares]
        parts[0] += direct - sum(parts)
        budget = {HEADINGS[h]: _cents(parts[h]) for h in range(heading_count) if parts[h]}
        if contingency:
            budget["contingency"] = _cents(contingency)
        budget["indirect_costs"] = _cents(indirect)

        k = per[i]
        grants.append(
            GrantFact(
                grant_id,
                f"2008-{i + 1:0{width}d}",
                f"{choice(_TITLE_VERBS)} {_TITLE_OBJECTS.get(window, window)} in {country_name(country)}",
                window,
                country,
                applicant_type,
                org,
                awarded_at,
                _cents(award_cents),
                k > 0 or rand() < 0.8,
                budget,
            )
        )

        remaining = award_cents
        value_date = awarded_at + days[randint(20, 75)]  # signature then pre-financing
        for n in range(1, k + 1):
            if n == 1:
                amount = award_cents * randint(40, 80) // 100
            elif n == k:
                amount = remaining * randint(50, 100) // 100
            else:
                amount = remaining * randint(30, 90) // 100
            amount = min(max(1, amount), remaining)
            if amount <= 0:
                break
            remaining -= amount
            if n == 2 and expenditures:
                # the interim report that released this tranche: expenditure by heading, ~70-100% of tranche 1
                accepted_at = value_date - days[randint(10, 30)]
                spend_total = (award_cents - remaining - amount) * randint(70, 100) // 100
                for h in range(heading_count):
                    if parts[h]:
                        spent.append(
                            ExpenditureFact(
                                grant_id, HEADINGS[h], _cents(spend_total * parts[h] // direct), accepted_at
                            )
                        )
            tranches.append(TrancheFact(grant_id, n, _cents(amount), value_date))
            value_date = value_date + days[randint(150, 400)]

    proposals = max(n_grants * 10, n_grants)
    counts = ProposalCounts(proposals=proposals, eligible_proposals=max(n_grants, proposals * 6 // 10))
    return Facts(programme, grants, tranches, spent, counts)
