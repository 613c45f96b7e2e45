"""Questions reporting answers from its facts, aggregated when asked."""
from sqlalchemy import func, select

from services.common.db import UnitOfWork
from services.common.types import money_or_zero

from .models import GrantFact, ProgrammeFact, TrancheFact, WindowFact


def totals(uow: UnitOfWork, programme_id: str | None = None) -> dict:
    """Committed and disbursed per window and per country (and overall), from one GROUP BY each."""
    session = uow.session
    paid = (select(TrancheFact.grant_id, func.sum(TrancheFact.amount).label("paid"))
            .group_by(TrancheFact.grant_id).subquery())
    base = select(GrantFact).outerjoin(paid, paid.c.grant_id == GrantFact.grant_id)
    if programme_id:
        base = base.where(GrantFact.programme_id == programme_id)

    def grouped(column):
        query = (select(column, func.sum(GrantFact.committed), func.coalesce(func.sum(paid.c.paid), 0),
                        func.count(GrantFact.grant_id))
                 .select_from(GrantFact).outerjoin(paid, paid.c.grant_id == GrantFact.grant_id).group_by(column)
                 .order_by(column))
        if programme_id:
            query = query.where(GrantFact.programme_id == programme_id)
        return [(key, money_or_zero(c), money_or_zero(p), n) for key, c, p, n in session.execute(query)]

    windows = grouped(GrantFact.window)
    countries = grouped(GrantFact.country)
    allocations = {}
    window_query = select(WindowFact.window, func.sum(WindowFact.allocation)).group_by(WindowFact.window)
    envelope_query = select(func.sum(ProgrammeFact.envelope))
    if programme_id:
        window_query = window_query.where(WindowFact.programme_id == programme_id)
        envelope_query = envelope_query.where(ProgrammeFact.programme_id == programme_id)
    for window, allocation in session.execute(window_query):
        allocations[window] = money_or_zero(allocation)
    envelope = money_or_zero(session.execute(envelope_query).scalar())
    committed = sum((c for _, c, _, _ in windows), money_or_zero(None))
    disbursed = sum((p for _, _, p, _ in windows), money_or_zero(None))
    return {
        "envelope_eur": envelope, "committed_eur": committed, "disbursed_eur": disbursed,
        "remaining_eur": envelope - committed,
        "windows": [{"window": w, "allocation_eur": allocations.get(w, money_or_zero(None)), "committed_eur": c,
                     "disbursed_eur": p, "grants": n} for w, c, p, n in windows],
        "countries": [{"country": k, "committed_eur": c, "disbursed_eur": p, "grants": n}
                      for k, c, p, n in countries],
    }


def per_grant(uow: UnitOfWork) -> dict:
    """Committed and paid per grant, for reconciliation with the grants ledger."""
    session = uow.session
    paid = dict((g, money_or_zero(p)) for g, p in session.execute(
        select(TrancheFact.grant_id, func.sum(TrancheFact.amount)).group_by(TrancheFact.grant_id)))
    return {g.grant_id: {"committed_eur": g.committed, "paid_eur": paid.get(g.grant_id, money_or_zero(None))}
            for g in session.execute(select(GrantFact)).scalars()}
