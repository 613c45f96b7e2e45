"""The EC "Migration and Asylum" budget report: a pure model built from plain fact rows.

The reporting service records one row per fact (grant awarded, tranche paid, expenditure accepted; design.md §5
prefers facts aggregated on demand to shared running totals) and hands those rows here. Nothing in this module
touches nameko, a database or the clock: the same facts and the same `as_of` give the same report.

Money is `Decimal` with two places end to end. Every total is a plain sum of fact amounts, so the report
reconciles to the cent: sum of windows == sum of countries == sum of years == sum of applicant types ==
committed; disbursed == sum of the tranches that the report counts == sum of the grants' `paid`.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from services.common.money import money_str, to_money

ZERO = Decimal("0.00")
RATE_PLACES = Decimal("0.0001")
BUDGET_LINE = "Migration and Asylum"
BUDGET_LINE_FR = "Migration et Asile"

# Annex III headings of the PRAG budget, in the order of the contract (the same keys as
# services.common.events.ANNEX_III_HEADINGS; kept here so the report stays importable without marshmallow).
HEADINGS = (
    "human_resources", "travel", "equipment_supplies", "local_office", "other_costs_services", "other",
    "contingency", "indirect_costs",
)
HEADING_LABELS = {
    "human_resources": "1. Human resources",
    "travel": "2. Travel",
    "equipment_supplies": "3. Equipment and supplies",
    "local_office": "4. Local office",
    "other_costs_services": "5. Other costs, services",
    "other": "6. Other",
    "contingency": "8. Contingency reserve",
    "indirect_costs": "10. Indirect (administrative) costs",
}

# English short names for the programme's countries (data, not rules: unknown codes print as the code).
COUNTRY_NAMES = {
    "MA": "Morocco", "DZ": "Algeria", "CV": "Cabo Verde", "EC": "Ecuador", "EG": "Egypt", "ET": "Ethiopia",
    "GE": "Georgia", "GH": "Ghana", "JM": "Jamaica", "ML": "Mali", "MD": "Moldova", "NG": "Nigeria",
    "PH": "Philippines", "SN": "Senegal", "LK": "Sri Lanka", "TN": "Tunisia",
}


class ReportError(ValueError):
    """The facts are inconsistent (e.g. a tranche of a grant the report does not know)."""


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get(code, code)


# --------------------------------------------------------------------------------------------------- inputs

@dataclass(frozen=True, slots=True)
class Programme:
    id: str
    name: str
    envelope: Decimal
    windows: Mapping[str, tuple[str, Decimal]]  # code -> (name_en, allocation), in display order
    budget_line: str = BUDGET_LINE
    currency: str = "EUR"


@dataclass(slots=True)
class GrantFact:
    grant_id: str
    proposal_reference: str
    title: str
    window: str
    country: str  # ISO 3166-1 alpha-2
    applicant_type: str
    lead_organisation: str
    awarded_at: date
    committed: Decimal
    contracted: bool
    budget_by_heading: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(slots=True)
class TrancheFact:
    grant_id: str
    tranche_number: int
    amount: Decimal
    value_date: date


@dataclass(slots=True)
class ExpenditureFact:
    grant_id: str
    heading: str
    amount: Decimal
    accepted_at: date


@dataclass(frozen=True, slots=True)
class ProposalCounts:
    proposals: int = 0
    eligible_proposals: int = 0


# -------------------------------------------------------------------------------------------------- outputs

@dataclass(frozen=True, slots=True)
class WindowLine:
    window: str
    name: str
    allocation: Decimal
    committed: Decimal
    disbursed: Decimal
    grants: int

    @property
    def available(self) -> Decimal:
        return self.allocation - self.committed


@dataclass(frozen=True, slots=True)
class CountryLine:
    country: str
    committed: Decimal
    disbursed: Decimal
    grants: int

    @property
    def name(self) -> str:
        return country_name(self.country)


@dataclass(frozen=True, slots=True)
class YearLine:
    year: int
    committed: Decimal  # awards in that year
    disbursed: Decimal  # tranches paid (value date) in that year


@dataclass(frozen=True, slots=True)
class MonthLine:
    month: str  # "YYYY-MM"
    committed: Decimal
    disbursed: Decimal


@dataclass(frozen=True, slots=True)
class ApplicantTypeLine:
    applicant_type: str
    committed: Decimal
    disbursed: Decimal
    grants: int


@dataclass(frozen=True, slots=True)
class HeadingLine:
    heading: str
    budgeted: Decimal  # Annex III budget of the awarded grants (total eligible costs, EC share + co-financing)
    reported_expenditure: Decimal  # expenditure in accepted reports

    @property
    def label(self) -> str:
        return HEADING_LABELS.get(self.heading, self.heading)


@dataclass(frozen=True, slots=True)
class Counts:
    proposals: int
    eligible_proposals: int
    awards: int


@dataclass(slots=True)
class Payment:
    tranche_number: int
    amount: Decimal
    value_date: date


@dataclass(slots=True)
class GrantLine:
    grant_id: str
    reference: str
    title: str
    window: str
    country: str
    committed: Decimal
    paid: Decimal
    outstanding: Decimal  # committed - paid
    lead_organisation: str = ""
    applicant_type: str = ""
    awarded_at: date | None = None
    contracted: bool = False
    payments: tuple[Payment, ...] = ()  # in tranche order; the IATI file reports each as a disbursement


@dataclass(frozen=True, slots=True)
class BudgetReport:
    programme_id: str
    programme_name: str
    budget_line: str
    currency: str
    as_of: date | None
    envelope: Decimal
    committed: Decimal
    contracted: Decimal
    disbursed: Decimal
    remaining: Decimal  # envelope - committed
    absorption_rate: Decimal  # disbursed / committed, 4 places, 0 when nothing is committed
    by_window: tuple[WindowLine, ...]
    by_country: tuple[CountryLine, ...]
    by_year: tuple[YearLine, ...]
    by_month: tuple[MonthLine, ...]
    by_applicant_type: tuple[ApplicantTypeLine, ...]
    by_heading: tuple[HeadingLine, ...]
    counts: Counts
    grants: tuple[GrantLine, ...]
    reported_expenditure: Decimal = ZERO

    def window_name(self, code: str) -> str:
        for line in self.by_window:
            if line.window == code:
                return line.name
        return code


# ------------------------------------------------------------------------------------------------ building

def _counts(counts) -> ProposalCounts:
    if counts is None:
        return ProposalCounts()
    if isinstance(counts, ProposalCounts):
        return counts
    if isinstance(counts, Mapping):
        return ProposalCounts(int(counts.get("proposals", 0)), int(counts.get("eligible_proposals", 0)))
    return ProposalCounts(int(counts.proposals), int(counts.eligible_proposals))


def _heading_order(keys) -> list[str]:
    known = [h for h in HEADINGS if h in keys]
    return known + sorted(k for k in keys if k not in HEADINGS)


def _tranche_order(p: Payment):
    return p.tranche_number, p.value_date


def _grant_order(line: GrantLine):
    return line.reference, line.grant_id


def build_budget_report(programme: Programme, grants: Iterable[GrantFact], tranches: Iterable[TrancheFact],
                        expenditures: Iterable[ExpenditureFact], counts=None,
                        as_of: date | None = None) -> BudgetReport:
    """Aggregate the facts into the budget report, counting only facts dated on or before `as_of`.

    A grant counts when awarded_at <= as_of, a tranche when value_date <= as_of, an expenditure when
    accepted_at <= as_of (no `as_of`: every fact counts). `counts` (proposals, eligible_proposals) is a
    ProposalCounts, a mapping or None; the proposal counts are taken as given (the caller counts them as of the
    same date), the award count is the number of grants the report counts.

    Raises ReportError when a counted tranche or expenditure belongs to no counted grant, or a tranche is
    counted twice: the totals would no longer reconcile.
    """
    envelope = to_money(programme.envelope)
    window_meta = {code: (name, to_money(allocation)) for code, (name, allocation) in programme.windows.items()}

    grant_by_id: dict[str, GrantFact] = {}
    for g in grants:
        if as_of is not None and g.awarded_at > as_of:
            continue
        if g.grant_id in grant_by_id:
            raise ReportError(f"grant {g.grant_id} appears twice")
        grant_by_id[g.grant_id] = g

    paid: dict[str, Decimal] = dict.fromkeys(grant_by_id, ZERO)
    payments: dict[str, list[Payment]] = {}
    disbursed_by_month: dict[int, Decimal] = {}  # key year * 100 + month
    for t in tranches:
        value_date = t.value_date
        if as_of is not None and value_date > as_of:
            continue
        gid = t.grant_id
        amount = t.amount
        try:
            paid[gid] += amount
        except KeyError:
            raise ReportError(f"tranche {t.tranche_number} of grant {gid} paid on {value_date} "
                              f"belongs to no grant awarded by then") from None
        payment = Payment(t.tranche_number, amount, value_date)
        plist = payments.get(gid)
        if plist is None:
            payments[gid] = [payment]
        else:
            plist.append(payment)
        month = value_date.year * 100 + value_date.month
        disbursed_by_month[month] = disbursed_by_month.get(month, ZERO) + amount

    # [committed, disbursed, grants] accumulators
    by_window: dict[str, list] = {code: [ZERO, ZERO, 0] for code in window_meta}
    by_country: dict[str, list] = {}
    by_type: dict[str, list] = {}
    committed_by_month: dict[int, Decimal] = {}
    budgeted: dict[str, Decimal] = {}
    committed = contracted = ZERO
    grant_lines = []
    no_payments = ()
    for gid, g in grant_by_id.items():
        amount = g.committed
        g_paid = paid[gid]
        committed += amount
        if g.contracted:
            contracted += amount
        for acc in (by_window.get(g.window) or by_window.setdefault(g.window, [ZERO, ZERO, 0]),
                    by_country.get(g.country) or by_country.setdefault(g.country, [ZERO, ZERO, 0]),
                    by_type.get(g.applicant_type) or by_type.setdefault(g.applicant_type, [ZERO, ZERO, 0])):
            acc[0] += amount
            acc[1] += g_paid
            acc[2] += 1
        awarded_at = g.awarded_at
        month = awarded_at.year * 100 + awarded_at.month
        committed_by_month[month] = committed_by_month.get(month, ZERO) + amount
        for heading, value in g.budget_by_heading.items():
            budgeted[heading] = budgeted.get(heading, ZERO) + value
        plist = payments.get(gid)
        if plist is None:
            plist = no_payments
        else:
            numbers = [p.tranche_number for p in plist]
            if len(set(numbers)) != len(numbers):
                raise ReportError(f"a tranche of grant {gid} appears twice")
            if numbers != sorted(numbers):
                plist.sort(key=_tranche_order)
            plist = tuple(plist)
        grant_lines.append(GrantLine(
            gid, g.proposal_reference, g.title, g.window, g.country, amount, g_paid, amount - g_paid,
            g.lead_organisation, g.applicant_type, awarded_at, g.contracted, plist,
        ))

    spent: dict[str, Decimal] = {}
    for e in expenditures:
        if as_of is not None and e.accepted_at > as_of:
            continue
        if e.grant_id not in grant_by_id:
            raise ReportError(f"expenditure of grant {e.grant_id} accepted on {e.accepted_at} "
                              f"belongs to no grant awarded by then")
        spent[e.heading] = spent.get(e.heading, ZERO) + e.amount

    disbursed = sum(disbursed_by_month.values(), ZERO)
    rate = (disbursed / committed).quantize(RATE_PLACES, rounding=ROUND_HALF_UP) if committed else Decimal("0.0000")
    c = _counts(counts)

    committed_by_year: dict[int, Decimal] = {}
    disbursed_by_year: dict[int, Decimal] = {}
    for month, value in committed_by_month.items():
        committed_by_year[month // 100] = committed_by_year.get(month // 100, ZERO) + value
    for month, value in disbursed_by_month.items():
        disbursed_by_year[month // 100] = disbursed_by_year.get(month // 100, ZERO) + value

    window_lines = tuple(
        WindowLine(code, window_meta.get(code, (code, ZERO))[0], window_meta.get(code, (code, ZERO))[1],
                   acc[0], acc[1], acc[2])
        for code, acc in by_window.items()
    )
    years = sorted(set(committed_by_year) | set(disbursed_by_year))
    months = sorted(set(committed_by_month) | set(disbursed_by_month))
    headings = _heading_order(set(budgeted) | set(spent))
    grant_lines.sort(key=_grant_order)
    return BudgetReport(
        programme_id=programme.id, programme_name=programme.name, budget_line=programme.budget_line,
        currency=programme.currency, as_of=as_of, envelope=envelope, committed=committed, contracted=contracted,
        disbursed=disbursed, remaining=envelope - committed, absorption_rate=rate,
        by_window=window_lines,
        by_country=tuple(CountryLine(k, *v) for k, v in sorted(by_country.items())),
        by_year=tuple(YearLine(y, committed_by_year.get(y, ZERO), disbursed_by_year.get(y, ZERO)) for y in years),
        by_month=tuple(MonthLine(f"{m // 100:04d}-{m % 100:02d}", committed_by_month.get(m, ZERO),
                                 disbursed_by_month.get(m, ZERO)) for m in months),
        by_applicant_type=tuple(ApplicantTypeLine(k, *v) for k, v in sorted(by_type.items())),
        by_heading=tuple(HeadingLine(h, budgeted.get(h, ZERO), spent.get(h, ZERO)) for h in headings),
        counts=Counts(c.proposals, c.eligible_proposals, len(grant_lines)),
        grants=tuple(grant_lines),
        reported_expenditure=sum(spent.values(), ZERO),
    )


# ------------------------------------------------------------------------------------------------------ JSON

def _m(value: Decimal) -> str:
    return money_str(value)


def report_to_json(report: BudgetReport) -> dict:
    """A JSON-ready dict: money as decimal strings with two places ("123.45"), the rate as "0.4567"."""
    return {
        "programme_id": report.programme_id,
        "programme_name": report.programme_name,
        "budget_line": report.budget_line,
        "currency": report.currency,
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "envelope_eur": _m(report.envelope),
        "committed_eur": _m(report.committed),
        "contracted_eur": _m(report.contracted),
        "disbursed_eur": _m(report.disbursed),
        "remaining_eur": _m(report.remaining),
        "reported_expenditure_eur": _m(report.reported_expenditure),
        "absorption_rate": str(report.absorption_rate),
        "windows": [
            {"window": w.window, "name": w.name, "allocation_eur": _m(w.allocation),
             "committed_eur": _m(w.committed), "disbursed_eur": _m(w.disbursed),
             "available_eur": _m(w.available), "grants": w.grants}
            for w in report.by_window
        ],
        "countries": [
            {"country": c.country, "name": c.name, "committed_eur": _m(c.committed),
             "disbursed_eur": _m(c.disbursed), "grants": c.grants}
            for c in report.by_country
        ],
        "years": [
            {"year": y.year, "committed_eur": _m(y.committed), "disbursed_eur": _m(y.disbursed)}
            for y in report.by_year
        ],
        "months": [
            {"month": m.month, "committed_eur": _m(m.committed), "disbursed_eur": _m(m.disbursed)}
            for m in report.by_month
        ],
        "applicant_types": [
            {"applicant_type": a.applicant_type, "committed_eur": _m(a.committed),
             "disbursed_eur": _m(a.disbursed), "grants": a.grants}
            for a in report.by_applicant_type
        ],
        "headings": [
            {"heading": h.heading, "label": h.label, "budgeted_eur": _m(h.budgeted),
             "reported_expenditure_eur": _m(h.reported_expenditure)}
            for h in report.by_heading
        ],
        "counts": {"proposals": report.counts.proposals, "eligible_proposals": report.counts.eligible_proposals,
                   "awards": report.counts.awards},
        "grants": [
            {"grant_id": g.grant_id, "reference": g.reference, "title": g.title, "window": g.window,
             "country": g.country, "lead_organisation": g.lead_organisation, "applicant_type": g.applicant_type,
             "awarded_at": g.awarded_at.isoformat() if g.awarded_at else None, "contracted": g.contracted,
             "committed_eur": _m(g.committed), "paid_eur": _m(g.paid), "outstanding_eur": _m(g.outstanding)}
            for g in report.grants
        ],
    }


# ------------------------------------------------------------------------------------------- fact generator

JMDI_WINDOWS = {
    "remittances": ("Migrant remittances", Decimal("3750000.00")),
    "migrant_communities": ("Migrant communities", Decimal("3750000.00")),
    "migrant_associations": ("Capacity building of migrant associations", Decimal("3750000.00")),
    "migrants_rights": ("Migrants' rights", Decimal("3750000.00")),
}
JMDI_COUNTRIES = ("MA", "DZ", "CV", "EC", "EG", "ET", "GE", "GH", "JM", "ML", "MD", "NG", "PH", "SN", "LK", "TN")
APPLICANT_TYPES = ("ngo", "migrant_association", "local_authority", "research_institution")


def jmdi_programme(envelope: Decimal = Decimal("15000000.00")) -> Programme:
    return Programme(id="JMDI", name="EC-UN Joint Migration and Development Initiative",
                     envelope=envelope, windows=dict(JMDI_WINDOWS))


@dataclass(frozen=True, slots=True)
class Facts:
    programme: Programme
    grants: list[GrantFact]
    tranches: list[TrancheFact]
    expenditures: list[ExpenditureFact]
    counts: ProposalCounts

    def report(self, as_of: date | None = None) -> BudgetReport:
        return build_budget_report(self.programme, self.grants, self.tranches, self.expenditures, self.counts,
                                   as_of=as_of)


_ORG_KINDS = {
    "ngo": ("Association", "Fondation", "Centre", "Réseau", "Initiative"),
    "migrant_association": ("Association des migrants", "Diaspora Network", "Union des ressortissants",
                            "Migrant Workers' Association"),
    "local_authority": ("Commune de", "Municipality of", "Conseil régional de", "District Assembly of"),
    "research_institution": ("Institute for Migration Studies", "Université de", "Observatory on Migration"),
}
_TOPICS = ("Développement Local", "Migration and Development", "Solidarité", "Co-development", "Remittances",
           "Droits des Migrants", "Return and Reintegration", "Women in Migration", "Youth and Mobility")
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


def generate_facts(seed: int, n_grants: int, n_tranches: int | None = None, *,
                   programme: Programme | None = None, start: date = date(2009, 6, 1),
                   expenditures: bool = True) -> Facts:
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
        grants.append(GrantFact(
            grant_id, f"2008-{i + 1:0{width}d}",
            f"{choice(_TITLE_VERBS)} {_TITLE_OBJECTS.get(window, window)} in {country_name(country)}",
            window, country, applicant_type, org, awarded_at, _cents(award_cents), k > 0 or rand() < 0.8,
            budget,
        ))

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
                        spent.append(ExpenditureFact(grant_id, HEADINGS[h],
                                                     _cents(spend_total * parts[h] // direct), accepted_at))
            tranches.append(TrancheFact(grant_id, n, _cents(amount), value_date))
            value_date = value_date + days[randint(150, 400)]

    proposals = max(n_grants * 10, n_grants)
    counts = ProposalCounts(proposals=proposals, eligible_proposals=max(n_grants, proposals * 6 // 10))
    return Facts(programme, grants, tranches, spent, counts)
