"""The EC "Migration and Asylum" budget report: a pure model built from plain fact rows.

The reporting service records one row per fact (grant awarded, tranche paid, expenditure accepted; design.md §5
prefers facts aggregated on demand to shared running totals) and hands those rows here. Nothing in this module
touches nameko, a database or the clock: the same facts and the same `as_of` give the same report.

Money is `Decimal` with two places end to end. Every total is a plain sum of fact amounts, so the report
reconciles to the cent: sum of windows == sum of countries == sum of years == sum of applicant types ==
committed; disbursed == sum of the tranches that the report counts == sum of the grants' `paid`.

Committed means awards (as amended) less decommitments: a grant closed below its award gives the rest back on
its closure date, so the report as of an earlier date still shows the whole award. Decommitted amounts have
their own column; by year and month they count in the period they happened, so committed by year is that
year's awards less that year's decommitments (and the years still add up to committed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from services.common.values.annex import HEADINGS as HEADINGS
from services.common.values.annex import HEADING_LABELS as HEADING_LABELS  # the one list of Annex III headings
from services.common.values.inert import clean_text
from services.common.values.money import money_str, to_money

ZERO = Decimal("0.00")
RATE_PLACES = Decimal("0.0001")
BUDGET_LINE = "Migration and Asylum"
BUDGET_LINE_FR = "Migration et Asile"


# English short names for the programme's countries (data, not rules: unknown codes print as the code).
COUNTRY_NAMES = {
    "MA": "Morocco",
    "DZ": "Algeria",
    "CV": "Cabo Verde",
    "EC": "Ecuador",
    "EG": "Egypt",
    "ET": "Ethiopia",
    "GE": "Georgia",
    "GH": "Ghana",
    "JM": "Jamaica",
    "ML": "Mali",
    "MD": "Moldova",
    "NG": "Nigeria",
    "PH": "Philippines",
    "SN": "Senegal",
    "LK": "Sri Lanka",
    "TN": "Tunisia",
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
    period_start: date | None = None  # the programme period, when known
    period_end: date | None = None


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
    committed: Decimal  # the award as amended, before any decommitment
    contracted: bool
    budget_by_heading: Mapping[str, Decimal] = field(default_factory=dict)
    closed: bool = False
    terminated: bool = False  # ended early (its final report and closure may still be to come)


@dataclass(slots=True)
class TrancheFact:
    grant_id: str
    tranche_number: int
    amount: Decimal
    value_date: date


@dataclass(slots=True)
class DecommitmentFact:
    grant_id: str
    amount: Decimal
    decommitted_on: date


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
    decommitted: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.allocation - self.committed


@dataclass(frozen=True, slots=True)
class CountryLine:
    country: str
    committed: Decimal
    disbursed: Decimal
    grants: int
    decommitted: Decimal = ZERO

    @property
    def name(self) -> str:
        return country_name(self.country)


@dataclass(frozen=True, slots=True)
class YearLine:
    year: int
    committed: Decimal  # awards in that year, less the decommitments of that year
    disbursed: Decimal  # tranches paid (value date) in that year
    decommitted: Decimal = ZERO  # given back in that year


@dataclass(frozen=True, slots=True)
class MonthLine:
    month: str  # "YYYY-MM"
    committed: Decimal
    disbursed: Decimal
    decommitted: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class ApplicantTypeLine:
    applicant_type: str
    committed: Decimal
    disbursed: Decimal
    grants: int
    decommitted: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class HeadingLine:
    heading: str
    budgeted: Decimal  # Annex III budget of the awarded grants (total eligible costs, EC share + co-financing)
    reported_expenditure: Decimal  # expenditure in accepted reports
    ec_contribution: Decimal = ZERO  # the EC's part of `budgeted` (each grant's award spread over its headings)

    @property
    def label(self) -> str:
        return HEADING_LABELS.get(self.heading, self.heading)

    @property
    def co_financing(self) -> Decimal:
        return self.budgeted - self.ec_contribution


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
    committed: Decimal  # the award less what was decommitted
    paid: Decimal
    outstanding: Decimal  # committed - paid (negative: paid above the final amount, to be recovered)
    lead_organisation: str = ""
    applicant_type: str = ""
    awarded_at: date | None = None
    contracted: bool = False
    payments: tuple[Payment, ...] = ()  # in tranche order; the IATI file reports each as a disbursement
    decommitted: Decimal = ZERO
    decommitments: tuple[DecommitmentFact, ...] = ()  # in date order; IATI: negative commitments
    closed: bool = False
    total_eligible: Decimal = ZERO  # the grant's Annex III budget (line 11): EC contribution + co-financing
    terminated: bool = False  # ended early

    @property
    def awarded(self) -> Decimal:
        """The award as amended, before decommitments."""
        return self.committed + self.decommitted

    @property
    def co_financing(self) -> Decimal:
        """What the consortium finances itself: eligible costs beyond the EC's contribution (0 without a
        budget)."""
        return max(self.total_eligible - self.committed, ZERO)


class GrantLines(Protocol):
    """A report's grant lines, iterated and counted: a tuple where build_budget_report makes the report, read from the
    database a page at a time where the read model does (report_sql.GrantPages)."""

    def __iter__(self) -> Iterator[GrantLine]: ...

    def __len__(self) -> int: ...


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
    grants: GrantLines
    reported_expenditure: Decimal = ZERO
    decommitted: Decimal = ZERO  # given back by closed grants (committed is net of it)
    programme_start: date | None = None  # the programme period, when known
    programme_end: date | None = None
    first_fact: date | None = None  # the first award or payment, when the builder knows it without the grants

    @property
    def covers_from(self) -> date | None:
        """The first day the report covers: the programme's start, else its first fact."""
        if self.programme_start is not None:
            return self.programme_start
        if self.first_fact is not None:
            return self.first_fact
        firsts = [g.awarded_at for g in self.grants if g.awarded_at] + [
            p.value_date for g in self.grants for p in g.payments
        ]
        return min(firsts, default=None)

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


def ec_part_by_heading(budget: Mapping[str, Decimal], award: Decimal) -> dict[str, Decimal]:
    """The award spread over the budget's headings in proportion to them, to the cent: the parts add up to the
    award exactly (the cents left by rounding down go to the headings with the largest remainders). An award
    above the budget is capped at it (the EC cannot finance more than the eligible costs)."""
    parts = _ec_cents({heading: int(value * 100) for heading, value in budget.items()}, int(award * 100))
    return {heading: Decimal(part).scaleb(-2) for heading, part in parts.items()}


def budget_lines(grant_id: str, source: str, amount: Decimal, budget: Mapping[str, Decimal | str]) -> list[dict]:
    """The rows of reporting's budget_line_facts for a budget (heading -> amount) and the award it finances:
    each heading in the budget's order with the EC's part of it (ec_part_by_heading)."""
    cents = {heading: int(Decimal(value) * 100) for heading, value in budget.items()}
    parts = _ec_cents(cents, int(Decimal(amount) * 100))
    return [
        {
            "grant_id": grant_id,
            "source": source,
            "heading": heading,
            "position": position,
            "amount": Decimal(cents[heading]).scaleb(-2),
            "ec_part": Decimal(parts[heading]).scaleb(-2),
        }
        for position, heading in enumerate(cents, start=1)
    ]


def budget_fact(grant_id: str, source: str, lines: list[dict]) -> dict:
    """The row of reporting's budget_facts for a budget's budget_lines: each heading's amount and EC part
    (<heading>_ec) as columns; headings the budget does not have stay out (None)."""
    row = {"grant_id": grant_id, "source": source}
    for line in lines:
        row[line["heading"]], row[f"{line['heading']}_ec"] = line["amount"], line["ec_part"]
    return row


def expenditure_fact(
    event_id: str, report_id: str, grant_id: str, accepted_on: date, expenditure: Mapping[str, Decimal | str]
) -> dict:
    """The row of reporting's report_expenditure_facts for an accepted report: its expenditure by heading."""
    return {
        "event_id": event_id,
        "report_id": report_id,
        "grant_id": grant_id,
        "accepted_on": accepted_on,
        **{heading: Decimal(amount) for heading, amount in expenditure.items()},
    }


def _ec_cents(amounts: dict[str, int], award: int) -> dict[str, int]:
    """ec_part_by_heading in integer cents: a report over 100,000 grants does this 100,000 times."""
    total = sum(amounts.values())
    if total <= 0:
        return dict.fromkeys(amounts, 0)
    cents = min(award, total)
    parts, remainders = {}, {}
    for heading, amount in amounts.items():
        parts[heading], remainders[heading] = divmod(cents * amount, total)
    left = cents - sum(parts.values())
    if left:
        for heading in sorted(remainders, key=remainders.__getitem__, reverse=True)[:left]:
            parts[heading] += 1
    return parts


def _tranche_order(p: Payment):
    return p.tranche_number, p.value_date


def _grant_order(line: GrantLine):
    return line.reference, line.grant_id


def build_budget_report(
    programme: Programme,
    grants: Iterable[GrantFact],
    tranches: Iterable[TrancheFact],
    expenditures: Iterable[ExpenditureFact],
    counts=None,
    as_of: date | None = None,
    decommitments: Iterable[DecommitmentFact] = (),
) -> BudgetReport:
    """Aggregate the facts into the budget report, counting only facts dated on or before `as_of`.

    A grant counts when awarded_at <= as_of, a tranche when value_date <= as_of, an expenditure when
    accepted_at <= as_of, a decommitment when decommitted_on <= as_of (no `as_of`: every fact counts). `counts` (proposals, eligible_proposals) is a
    ProposalCounts, a mapping or None; the proposal counts are taken as given (the caller counts them as of the
    same date), the award count is the number of grants the report counts.

    Raises ReportError when a counted tranche, expenditure or decommitment belongs to no counted grant, a
    tranche is counted twice, or a grant gave back more than it committed: the totals would no longer reconcile.
    """
    envelope = to_money(programme.envelope)
    # text reaches files for people: no control character from any row, old or new (services/common/values/inert.py);
    # the grants' own texts are cleaned by each exporter as it writes them (one pass, not one per report)
    window_meta = {
        code: (clean_text(name), to_money(allocation)) for code, (name, allocation) in programme.windows.items()
    }

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
            raise ReportError(
                f"tranche {t.tranche_number} of grant {gid} paid on {value_date} belongs to no grant awarded by then"
            ) from None
        payment = Payment(t.tranche_number, amount, value_date)
        plist = payments.get(gid)
        if plist is None:
            payments[gid] = [payment]
        else:
            plist.append(payment)
        month = value_date.year * 100 + value_date.month
        disbursed_by_month[month] = disbursed_by_month.get(month, ZERO) + amount

    given_back: dict[str, list[DecommitmentFact]] = {}
    decommitted_by_month: dict[int, Decimal] = {}
    for d in decommitments:
        if as_of is not None and d.decommitted_on > as_of:
            continue
        if d.grant_id not in grant_by_id:
            raise ReportError(
                f"decommitment of grant {d.grant_id} on {d.decommitted_on} belongs to no grant awarded by then"
            )
        given_back.setdefault(d.grant_id, []).append(d)
        month = d.decommitted_on.year * 100 + d.decommitted_on.month
        decommitted_by_month[month] = decommitted_by_month.get(month, ZERO) + d.amount

    # [committed, disbursed, grants, decommitted] accumulators
    by_window: dict[str, list] = {code: [ZERO, ZERO, 0, ZERO] for code in window_meta}
    by_country: dict[str, list] = {}
    by_type: dict[str, list] = {}
    committed_by_month: dict[int, Decimal] = {}
    budgeted: dict[str, Decimal] = {}
    ec_cents: dict[str, int] = {}  # the EC's part of each heading, in cents (summed exactly, converted once)
    committed = contracted = ZERO
    grant_lines = []
    no_payments: tuple[Payment, ...] = ()
    for gid, g in grant_by_id.items():
        returned = given_back.get(gid)
        g_decommitted = sum((d.amount for d in returned), ZERO) if returned else ZERO
        if g_decommitted > g.committed:
            raise ReportError(f"grant {gid} decommitted {g_decommitted} of a {g.committed} commitment")
        amount = g.committed - g_decommitted
        g_paid = paid[gid]
        committed += amount
        if g.contracted:
            contracted += amount
        for acc in (
            by_window.get(g.window) or by_window.setdefault(g.window, [ZERO, ZERO, 0, ZERO]),
            by_country.get(g.country) or by_country.setdefault(g.country, [ZERO, ZERO, 0, ZERO]),
            by_type.get(g.applicant_type) or by_type.setdefault(g.applicant_type, [ZERO, ZERO, 0, ZERO]),
        ):
            acc[0] += amount
            acc[1] += g_paid
            acc[2] += 1
            acc[3] += g_decommitted
        awarded_at = g.awarded_at
        month = awarded_at.year * 100 + awarded_at.month
        # the award counts in its month, each decommitment (below) in its own
        committed_by_month[month] = committed_by_month.get(month, ZERO) + g.committed
        budget_cents = {}
        for heading, value in g.budget_by_heading.items():
            budgeted[heading] = budgeted.get(heading, ZERO) + value
            budget_cents[heading] = int(value * 100)
        for heading, part in _ec_cents(budget_cents, int(amount * 100)).items():
            ec_cents[heading] = ec_cents.get(heading, 0) + part
        listed = payments.get(gid)
        if listed is None:
            grant_payments = no_payments
        else:
            numbers = [p.tranche_number for p in listed]
            if len(set(numbers)) != len(numbers):
                raise ReportError(f"a tranche of grant {gid} appears twice")
            if numbers != sorted(numbers):
                listed.sort(key=_tranche_order)
            grant_payments = tuple(listed)
        grant_lines.append(
            GrantLine(
                gid,
                g.proposal_reference,
                g.title,
                g.window,
                g.country,
                amount,
                g_paid,
                amount - g_paid,
                g.lead_organisation,
                g.applicant_type,
                awarded_at,
                g.contracted,
                grant_payments,
                g_decommitted,
                tuple(sorted(returned, key=lambda d: d.decommitted_on)) if returned else (),
                g.closed,
                total_eligible=Decimal(sum(budget_cents.values())).scaleb(-2),
                terminated=g.terminated,
            )
        )
    for month, value in decommitted_by_month.items():
        committed_by_month[month] = committed_by_month.get(month, ZERO) - value

    spent: dict[str, Decimal] = {}
    for e in expenditures:
        if as_of is not None and e.accepted_at > as_of:
            continue
        if e.grant_id not in grant_by_id:
            raise ReportError(
                f"expenditure of grant {e.grant_id} accepted on {e.accepted_at} belongs to no grant awarded by then"
            )
        spent[e.heading] = spent.get(e.heading, ZERO) + e.amount

    disbursed = sum(disbursed_by_month.values(), ZERO)
    rate = (disbursed / committed).quantize(RATE_PLACES, rounding=ROUND_HALF_UP) if committed else Decimal("0.0000")
    c = _counts(counts)

    committed_by_year: dict[int, Decimal] = {}
    disbursed_by_year: dict[int, Decimal] = {}
    decommitted_by_year: dict[int, Decimal] = {}
    for by_month, by_year in (
        (committed_by_month, committed_by_year),
        (disbursed_by_month, disbursed_by_year),
        (decommitted_by_month, decommitted_by_year),
    ):
        for month, value in by_month.items():
            by_year[month // 100] = by_year.get(month // 100, ZERO) + value

    window_lines = tuple(
        WindowLine(code, window_meta.get(code, (code, ZERO))[0], window_meta.get(code, (code, ZERO))[1], *acc)
        for code, acc in by_window.items()
    )
    years = sorted(set(committed_by_year) | set(disbursed_by_year))
    months = sorted(set(committed_by_month) | set(disbursed_by_month))
    headings = _heading_order(set(budgeted) | set(spent))
    grant_lines.sort(key=_grant_order)
    return BudgetReport(
        programme_id=programme.id,
        programme_name=clean_text(programme.name),
        budget_line=clean_text(programme.budget_line),
        currency=programme.currency,
        as_of=as_of,
        envelope=envelope,
        committed=committed,
        contracted=contracted,
        disbursed=disbursed,
        remaining=envelope - committed,
        absorption_rate=rate,
        by_window=window_lines,
        by_country=tuple(CountryLine(k, *v) for k, v in sorted(by_country.items())),
        by_year=tuple(
            YearLine(
                y, committed_by_year.get(y, ZERO), disbursed_by_year.get(y, ZERO), decommitted_by_year.get(y, ZERO)
            )
            for y in years
        ),
        by_month=tuple(
            MonthLine(
                f"{m // 100:04d}-{m % 100:02d}",
                committed_by_month.get(m, ZERO),
                disbursed_by_month.get(m, ZERO),
                decommitted_by_month.get(m, ZERO),
            )
            for m in months
        ),
        by_applicant_type=tuple(ApplicantTypeLine(k, *v) for k, v in sorted(by_type.items())),
        by_heading=tuple(
            HeadingLine(h, budgeted.get(h, ZERO), spent.get(h, ZERO), Decimal(ec_cents.get(h, 0)).scaleb(-2))
            for h in headings
        ),
        counts=Counts(c.proposals, c.eligible_proposals, len(grant_lines)),
        grants=tuple(grant_lines),
        reported_expenditure=sum(spent.values(), ZERO),
        decommitted=sum(decommitted_by_month.values(), ZERO),
        programme_start=programme.period_start,
        programme_end=programme.period_end,
    )


# ------------------------------------------------------------------------------------------------------ JSON


def _m(value: Decimal) -> str:
    return money_str(value)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def report_to_json(report: BudgetReport, grants: bool = True) -> dict:
    """A JSON-ready dict: money as decimal strings with two places ("123.45"), the rate as "0.4567".
    Without `grants`, the totals and breakdowns only (no "grants" key)."""
    data = {
        "programme_id": report.programme_id,
        "programme_name": report.programme_name,
        "budget_line": report.budget_line,
        "currency": report.currency,
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "programme_period": {"start": _iso(report.programme_start), "end": _iso(report.programme_end)},
        "envelope_eur": _m(report.envelope),
        "committed_eur": _m(report.committed),
        "contracted_eur": _m(report.contracted),
        "disbursed_eur": _m(report.disbursed),
        "remaining_eur": _m(report.remaining),
        "decommitted_eur": _m(report.decommitted),
        "reported_expenditure_eur": _m(report.reported_expenditure),
        "absorption_rate": str(report.absorption_rate),
        "windows": [
            {
                "window": w.window,
                "name": w.name,
                "allocation_eur": _m(w.allocation),
                "committed_eur": _m(w.committed),
                "disbursed_eur": _m(w.disbursed),
                "available_eur": _m(w.available),
                "grants": w.grants,
                "decommitted_eur": _m(w.decommitted),
            }
            for w in report.by_window
        ],
        "countries": [
            {
                "country": c.country,
                "name": c.name,
                "committed_eur": _m(c.committed),
                "disbursed_eur": _m(c.disbursed),
                "grants": c.grants,
                "decommitted_eur": _m(c.decommitted),
            }
            for c in report.by_country
        ],
        "years": [
            {
                "year": y.year,
                "committed_eur": _m(y.committed),
                "disbursed_eur": _m(y.disbursed),
                "decommitted_eur": _m(y.decommitted),
            }
            for y in report.by_year
        ],
        "months": [
            {
                "month": m.month,
                "committed_eur": _m(m.committed),
                "disbursed_eur": _m(m.disbursed),
                "decommitted_eur": _m(m.decommitted),
            }
            for m in report.by_month
        ],
        "applicant_types": [
            {
                "applicant_type": a.applicant_type,
                "committed_eur": _m(a.committed),
                "disbursed_eur": _m(a.disbursed),
                "grants": a.grants,
                "decommitted_eur": _m(a.decommitted),
            }
            for a in report.by_applicant_type
        ],
        "headings": [
            {
                "heading": h.heading,
                "label": h.label,
                "budgeted_eur": _m(h.budgeted),
                "ec_contribution_eur": _m(h.ec_contribution),
                "co_financing_eur": _m(h.co_financing),
                "reported_expenditure_eur": _m(h.reported_expenditure),
            }
            for h in report.by_heading
        ],
        "counts": {
            "proposals": report.counts.proposals,
            "eligible_proposals": report.counts.eligible_proposals,
            "awards": report.counts.awards,
        },
    }
    if grants:
        data["grants"] = [grant_line_json(g) for g in report.grants]
    return data


def grant_line_json(g: GrantLine) -> dict:
    return {
        "grant_id": g.grant_id,
        "reference": clean_text(g.reference),
        "title": clean_text(g.title),
        "window": g.window,
        "country": g.country,
        "lead_organisation": clean_text(g.lead_organisation),
        "applicant_type": clean_text(g.applicant_type),
        "awarded_at": g.awarded_at.isoformat() if g.awarded_at else None,
        "contracted": g.contracted,
        "committed_eur": _m(g.committed),
        "paid_eur": _m(g.paid),
        "outstanding_eur": _m(g.outstanding),
        "decommitted_eur": _m(g.decommitted),
        "closed": g.closed,
        "terminated": g.terminated,
        "total_eligible_eur": _m(g.total_eligible),
        "co_financing_eur": _m(g.co_financing),
    }
