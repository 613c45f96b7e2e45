"""Questions reporting answers from its facts, aggregated when asked.

`report_facts` turns the fact rows into the plain facts of the report model (budget_report.GrantFact...) as
they stood on a date: a grant counts from its award decision date with the award of its latest amendment by
then, is contracted once its contract was signed, and loses its commitment once declined; what a closed grant
gave back (decommitted) counts from its closure date; tranches count from their value date, expenditure from
the acceptance of its report, proposals from their submission; a payment request stops awaiting payment when
it is paid or cancelled.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from services.common.storage.types import cents_to_money

from .domain.budget_report import DecommitmentFact, ExpenditureFact, GrantFact, ProposalCounts, Programme, TrancheFact
from .models import (
    AmendmentRow,
    ArchivedEvent,
    ClosureRow,
    ContractRow,
    DecommitmentRow,
    ExpenditureRow,
    GrantRow,
    PaymentCancellationRow,
    PaymentRequestRow,
    ProgrammeRow,
    ProposalOutcomeRow,
    ProposalRow,
    TerminationRow,
    TrancheRow,
    WindowRow,
)

ZERO = Decimal("0.00")
ALL_PROGRAMMES = "ALL"


@dataclass
class ReportFacts:
    programme: Programme
    grants: list[GrantFact]
    tranches: list[TrancheFact]
    expenditures: list[ExpenditureFact]
    counts: ProposalCounts
    pipeline: dict = field(default_factory=dict)  # proposal outcomes beyond the report model's counts
    extras: dict = field(default_factory=dict)  # money and counts beyond the report model
    decommitments: list[DecommitmentFact] = field(default_factory=list)


def _on_or_before(column, as_of: date | None):
    return column <= as_of if as_of is not None else True


# --- programme ------------------------------------------------------------------------------------------------


def programme(session: Session, programme_id: str | None) -> Programme | None:
    """The programme with its windows (allocations of all its calls summed per window); None: every programme
    together (the only one when there is one). Returns None when no such programme is known yet."""
    query = select(ProgrammeRow).order_by(ProgrammeRow.programme_id)
    if programme_id:
        query = query.where(ProgrammeRow.programme_id == programme_id)
    rows = session.execute(query).scalars().all()
    if not rows:
        return None
    windows_query = (
        select(WindowRow.window, func.min(WindowRow.name), func.sum(WindowRow.allocation), func.min(WindowRow.position))
        .group_by(WindowRow.window)
        .order_by(func.min(WindowRow.position), WindowRow.window)
    )
    if programme_id:
        windows_query = windows_query.where(WindowRow.programme_id == programme_id)
    windows = {code: (name, allocation) for code, name, allocation, _ in session.execute(windows_query)}
    if len(rows) == 1:
        row = rows[0]
        return Programme(
            id=row.programme_id,
            name=row.name,
            envelope=row.envelope,
            windows=windows,
            period_start=row.period_start,
            period_end=row.period_end,
        )
    starts, ends = [r.period_start for r in rows], [r.period_end for r in rows]
    return Programme(
        id=ALL_PROGRAMMES,
        name="All programmes",
        envelope=sum((r.envelope for r in rows), ZERO),
        windows=windows,
        period_start=None if None in starts else min(starts),
        period_end=None if None in ends else max(ends),
    )


def programme_ids(session: Session) -> list[str]:
    return list(session.execute(select(ProgrammeRow.programme_id).order_by(ProgrammeRow.programme_id)).scalars())


# --- facts as of a date ---------------------------------------------------------------------------------------


def _grant_filter(query, programme_id):
    return query.where(GrantRow.programme_id == programme_id) if programme_id else query


def _of_programme(query, grant_id_column, programme_id):
    """Facts of the programme's grants, and facts whose grant is not known here (they are reported as
    unmatched: they cannot be attributed, but must not vanish)."""
    if not programme_id:
        return query
    return query.outerjoin(GrantRow, GrantRow.grant_id == grant_id_column).where(
        or_(GrantRow.programme_id == programme_id, GrantRow.grant_id.is_(None))
    )


def _latest_amendments(session: Session, as_of: date | None) -> dict[str, AmendmentRow]:
    latest = {}
    for row in session.execute(
        select(AmendmentRow)
        .where(_on_or_before(AmendmentRow.effective_on, as_of))
        .order_by(AmendmentRow.occurred_at, AmendmentRow.amendment_id)
    ).scalars():
        latest[row.grant_id] = row  # later ones overwrite
    return latest


def _money_map(values: dict | None) -> dict[str, Decimal]:
    return {heading: Decimal(amount) for heading, amount in (values or {}).items()}


def report_facts(session: Session, programme_id: str | None, as_of: date | None) -> ReportFacts | None:
    """The report model's facts for the programme (None: all programmes) as they stood at the end of `as_of`
    (None: everything recorded). None when the programme is unknown."""
    prog = programme(session, programme_id)
    if prog is None:
        return None
    # plain rows, not ORM objects: a report may read 100,000 grants
    awarded = session.execute(
        _grant_filter(
            select(
                GrantRow.grant_id,
                GrantRow.reference,
                GrantRow.title,
                GrantRow.window,
                GrantRow.country,
                GrantRow.applicant_type,
                GrantRow.lead_organisation,
                GrantRow.amount,
                GrantRow.budget,
                GrantRow.decision_date,
            ),
            programme_id,
        ).where(_on_or_before(GrantRow.decision_date, as_of))
    ).all()
    amendments = _latest_amendments(session, as_of)
    contracted = set(
        session.execute(select(ContractRow.grant_id).where(_on_or_before(ContractRow.signed_on, as_of))).scalars()
    )
    closures = {
        row.grant_id: row
        for row in session.execute(select(ClosureRow).where(_on_or_before(ClosureRow.closed_on, as_of))).scalars()
    }
    terminations = set(
        session.execute(
            select(TerminationRow.grant_id).where(_on_or_before(TerminationRow.terminated_on, as_of))
        ).scalars()
    )
    known = {row.grant_id for row in awarded}

    tranches, unmatched_tranches = [], 0
    tranche_query = _of_programme(
        select(
            TrancheRow.grant_id,
            TrancheRow.tranche_number,
            TrancheRow.amount,
            TrancheRow.value_date,
            TrancheRow.payment_id,
        )
        .where(_on_or_before(TrancheRow.value_date, as_of))
        .order_by(TrancheRow.grant_id, TrancheRow.tranche_number),
        TrancheRow.grant_id,
        programme_id,
    )
    paid_ids = set()
    for grant_id, number, amount, value_date, payment_id in session.execute(tranche_query):
        if grant_id in known:
            tranches.append(TrancheFact(grant_id, number, amount, value_date))
            paid_ids.add(payment_id)
        else:  # its award is not here yet (events travel on separate queues) or dated after the payment
            unmatched_tranches += 1
    with_payments = {t.grant_id for t in tranches}

    grants, declined, recovered = [], 0, ZERO
    for row in awarded:
        amendment = amendments.get(row.grant_id)
        committed = amendment.amount if amendment else row.amount
        budget = _money_map(amendment.budget if amendment and amendment.budget else row.budget)
        closure = closures.get(row.grant_id)
        if closure is not None and closure.kind == "declined":
            declined += 1
            if row.grant_id not in with_payments:
                continue  # a declined grant without payments is no longer part of the programme
            committed, budget = ZERO, {}
        if closure is not None:
            recovered += closure.recovery
        grants.append(
            GrantFact(
                grant_id=row.grant_id,
                proposal_reference=row.reference,
                title=row.title,
                window=row.window,
                country=row.country,
                applicant_type=row.applicant_type,
                lead_organisation=row.lead_organisation,
                awarded_at=row.decision_date,
                committed=committed,
                contracted=row.grant_id in contracted,
                budget_by_heading=budget,
                closed=closure is not None and closure.kind != "declined",
                terminated=row.grant_id in terminations,
            )
        )
    counted = {g.grant_id for g in grants}

    decommitments, unmatched_decommitments = [], 0
    for grant_id, amount, decommitted_on in session.execute(
        _of_programme(
            select(DecommitmentRow.grant_id, DecommitmentRow.amount, DecommitmentRow.decommitted_on).where(
                _on_or_before(DecommitmentRow.decommitted_on, as_of)
            ),
            DecommitmentRow.grant_id,
            programme_id,
        )
    ):
        if grant_id in counted:
            decommitments.append(DecommitmentFact(grant_id, amount, decommitted_on))
        else:
            unmatched_decommitments += 1

    expenditures, unmatched_expenditures = [], 0
    expenditure_query = _of_programme(
        select(
            ExpenditureRow.grant_id, ExpenditureRow.heading, ExpenditureRow.amount, ExpenditureRow.accepted_on
        ).where(_on_or_before(ExpenditureRow.accepted_on, as_of)),
        ExpenditureRow.grant_id,
        programme_id,
    )
    for grant_id, heading, amount, accepted_on in session.execute(expenditure_query):
        if grant_id in counted:
            expenditures.append(ExpenditureFact(grant_id, heading, amount, accepted_on))
        else:
            unmatched_expenditures += 1

    cancelled = set(
        session.execute(
            select(PaymentCancellationRow.payment_id).where(_on_or_before(PaymentCancellationRow.cancelled_on, as_of))
        ).scalars()
    )
    requested_unpaid = sum(
        (
            amount
            for payment_id, grant_id, amount in session.execute(
                select(PaymentRequestRow.payment_id, PaymentRequestRow.grant_id, PaymentRequestRow.amount).where(
                    _on_or_before(PaymentRequestRow.requested_on, as_of)
                )
            )
            if grant_id in counted and payment_id not in paid_ids and payment_id not in cancelled
        ),
        ZERO,
    )

    terminated = sum(1 for grant_id in terminations if grant_id in counted)

    counts, pipeline = proposal_counts(session, programme_id, as_of)
    extras = {
        "recovered_eur": recovered,
        "payments_requested_unpaid_eur": requested_unpaid,
        "declined_grants": declined,
        "terminated_grants": terminated,
        "amendments": sum(1 for gid in counted if gid in amendments),
        "unmatched": {
            "tranches": unmatched_tranches,
            "expenditures": unmatched_expenditures,
            "decommitments": unmatched_decommitments,
        },
    }
    return ReportFacts(prog, grants, tranches, expenditures, counts, pipeline, extras, decommitments)


def proposal_counts(session: Session, programme_id: str | None, as_of: date | None) -> tuple[ProposalCounts, dict]:
    """Proposals received by `as_of`; eligible = neither withdrawn nor (last screened as) excluded by then."""
    query = select(ProposalRow.proposal_id).where(_on_or_before(ProposalRow.submitted_on, as_of))
    if programme_id:
        query = query.where(ProposalRow.programme_id == programme_id)
    received = set(session.execute(query).scalars())
    screening, ranking, kinds = {}, {}, defaultdict(set)
    # the outcomes of the proposals received, not every programme's (a live call's thousands slowed the report)
    for proposal_id, kind, outcome in session.execute(
        select(ProposalOutcomeRow.proposal_id, ProposalOutcomeRow.kind, ProposalOutcomeRow.outcome)
        .where(_on_or_before(ProposalOutcomeRow.decided_on, as_of), ProposalOutcomeRow.proposal_id.in_(query))
        .order_by(ProposalOutcomeRow.occurred_at, ProposalOutcomeRow.event_id)
    ):
        kinds[kind].add(proposal_id)
        if kind == "screened":
            screening[proposal_id] = outcome  # the last screening decides (flagged, then cleared or excluded)
        elif kind == "ranked":
            ranking[proposal_id] = outcome
    excluded = {p for p, outcome in screening.items() if outcome == "excluded"}
    withdrawn = kinds["withdrawn"]
    eligible = received - withdrawn - excluded
    pipeline = {
        "withdrawn": len(withdrawn),
        "excluded_by_screening": len(excluded),
        "evaluated": len(kinds["evaluated"]),
        "ranked_main": sum(1 for o in ranking.values() if o == "main"),
        "ranked_reserve": sum(1 for o in ranking.values() if o == "reserve"),
        "rejected": len(kinds["rejected"]),
    }
    return ProposalCounts(proposals=len(received), eligible_proposals=len(eligible)), pipeline


# --- reconciliation -------------------------------------------------------------------------------------------


def per_grant(session: Session, programme_id: str | None = None) -> dict[str, dict]:
    """Committed (latest amendment less decommitments; 0 once declined), paid (every tranche), recovery and
    decommitted per grant, now: what the grants ledger must agree with. Tranches of a grant whose award is
    missing here appear with committed None (whatever the programme: they cannot be attributed)."""
    amendments = _latest_amendments(session, None)
    closures = dict(session.execute(select(ClosureRow.grant_id, ClosureRow.kind)).all())
    recoveries: dict[str, Decimal | None] = dict(
        session.execute(select(ClosureRow.grant_id, ClosureRow.recovery)).all()
    )
    given_back: dict[str, Decimal] = dict(
        session.execute(
            select(DecommitmentRow.grant_id, func.sum(DecommitmentRow.amount)).group_by(DecommitmentRow.grant_id)
        ).all()
    )
    out = {}
    for grant_id, reference, amount in session.execute(
        _grant_filter(select(GrantRow.grant_id, GrantRow.reference, GrantRow.amount), programme_id)
    ):
        decommitted = given_back.get(grant_id) or ZERO
        committed = (amendments[grant_id].amount if grant_id in amendments else amount) - decommitted
        out[grant_id] = {
            "reference": reference,
            "committed_eur": ZERO if closures.get(grant_id) == "declined" else committed,
            "paid_eur": ZERO,
            "recovery_eur": recoveries.get(grant_id, ZERO),
            "decommitted_eur": decommitted,
        }
    paid_query = _of_programme(
        select(TrancheRow.grant_id, func.sum(TrancheRow.amount)), TrancheRow.grant_id, programme_id
    ).group_by(TrancheRow.grant_id)
    for grant_id, paid in session.execute(paid_query):
        entry = out.setdefault(
            grant_id,
            {"reference": None, "committed_eur": None, "paid_eur": ZERO, "recovery_eur": ZERO, "decommitted_eur": ZERO},
        )
        entry["paid_eur"] = paid if paid is not None else ZERO
    return out


def last_archived(session: Session):
    """(sequence number, occurred_at) of the last archived event, or (0, None)."""
    row = session.execute(
        select(ArchivedEvent.seq, ArchivedEvent.occurred_at).order_by(ArchivedEvent.seq.desc()).limit(1)
    ).first()
    return (row.seq, row.occurred_at) if row else (0, None)


# --- the headline figures for the finance gauges ----------------------------------------------------------------

# One statement over the facts, aggregated by the database: a /metrics scrape must stay cheap however many
# grants there are. Money columns hold integer cents. Same rules as the report: the latest amendment's award
# less what the grant decommitted, nothing committed once declined, every paid tranche of a known grant.
_TOTALS_SQL = """
WITH latest AS (
    SELECT grant_id, amount FROM (
        SELECT grant_id, amount,
               ROW_NUMBER() OVER (PARTITION BY grant_id ORDER BY occurred_at DESC, amendment_id DESC) AS n
        FROM amendment_facts) ranked
    WHERE n = 1),
paid AS (SELECT grant_id, SUM(amount) AS paid FROM tranche_facts GROUP BY grant_id),
given_back AS (SELECT grant_id, SUM(amount) AS decommitted FROM decommitment_facts GROUP BY grant_id),
grant_totals AS (
    SELECT g."window" AS window_code, g.country,
           CASE WHEN c.kind = 'declined' THEN 0
                ELSE COALESCE(l.amount, g.amount) - COALESCE(d.decommitted, 0) END AS committed,
           COALESCE(p.paid, 0) AS paid
    FROM grant_facts g
    LEFT JOIN latest l ON l.grant_id = g.grant_id
    LEFT JOIN closure_facts c ON c.grant_id = g.grant_id
    LEFT JOIN paid p ON p.grant_id = g.grant_id
    LEFT JOIN given_back d ON d.grant_id = g.grant_id)
SELECT 'window', window_code, SUM(committed), SUM(paid) FROM grant_totals GROUP BY window_code
UNION ALL
SELECT 'country', country, SUM(committed), SUM(paid) FROM grant_totals GROUP BY country
UNION ALL
SELECT 'allocation', "window", SUM(allocation), 0 FROM window_facts GROUP BY "window"
"""


@dataclass
class HeadlineTotals:
    windows: dict  # window -> (allocation, committed, disbursed)
    countries: dict  # country -> (committed, disbursed)


def headline_totals(session: Session) -> HeadlineTotals:
    """The finance gauges' figures: on PostgreSQL the budget report's own SQL totals (all programmes, now);
    elsewhere, or when the facts are inconsistent (the report refuses them), one aggregate statement."""
    if session.get_bind().dialect.name == "postgresql":
        from services.common.values.errors import Conflict

        from . import report_sql

        prog = programme(session, None)
        if prog is None:
            return HeadlineTotals(windows={}, countries={})
        try:
            report, _ = report_sql.budget_report(session, prog, None, None, ProposalCounts(), {})
        except Conflict:
            pass
        else:
            return HeadlineTotals(
                windows={w.window: (w.allocation, w.committed, w.disbursed) for w in report.by_window},
                countries={c.country: (c.committed, c.disbursed) for c in report.by_country},
            )
    windows, countries, allocations = {}, {}, {}
    for kind, key, first, second in session.execute(text(_TOTALS_SQL)):
        if kind == "window":
            windows[key] = (cents_to_money(first), cents_to_money(second))
        elif kind == "country":
            countries[key] = (cents_to_money(first), cents_to_money(second))
        else:
            allocations[key] = cents_to_money(first)
    zero = cents_to_money(0)
    return HeadlineTotals(
        windows={
            w: (allocations.get(w, zero),) + windows.get(w, (zero, zero)) for w in set(allocations) | set(windows)
        },
        countries=countries,
    )
