"""Between the grants tables and the pure domain: load an aggregate (its rows locked), write back what a domain
method changed. Loads that lock always go grant (or proposal) first, then programme, then window, so
concurrent operations queue on the same rows in the same order instead of deadlocking.

Every locked read refreshes rows the session may already hold (`populate_existing`): what was read before the
lock was granted may have been changed by the transaction that held it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import overload

from sqlalchemy import select

FRESH = {"populate_existing": True}

from services.common.values.annex import PRAG_CAPS, BudgetCaps
from services.common.values.errors import NotFound
from services.common.values.money import money_str
from services.grants import domain

from .models import (
    CallCopy,
    Evaluation,
    ExchangeRateRow,
    GrantRow,
    OrganisationRow,
    PaymentRow,
    ProgrammeBudget,
    ProposalCopy,
    RankingCopy,
    ReportRow,
    Screening,
    WindowBudget,
    Withdrawal,
)


def emit(uow, events, occurred_at):
    """Hand the domain's events (Python values) to the unit of work, which writes their wire form to the outbox."""
    for event in events:
        uow.emit(event.event_type, event.data, occurred_at=occurred_at)


def money_map(mapping: dict | None) -> dict:
    return {k: Decimal(str(v)) for k, v in (mapping or {}).items()}


def wire_money_map(mapping: dict) -> dict:
    return {k: money_str(v) for k, v in mapping.items()}


# --- budgets --------------------------------------------------------------------------------------------------


@dataclass
class Budgets:
    """The locked programme and window rows with their domain counterparts; `store()` writes the domain back."""

    programme_row: ProgrammeBudget
    window_row: WindowBudget
    programme: domain.ProgrammeBudget
    window: domain.WindowBudget

    def store(self):
        self.programme_row.committed = self.programme.committed
        self.window_row.committed = self.window.committed


def lock_budgets(session, programme_id: str, call_id: str, window: str) -> Budgets:
    programme_row = session.execute(
        select(ProgrammeBudget)
        .where(ProgrammeBudget.programme_id == programme_id)
        .with_for_update()
        .execution_options(**FRESH)
    ).scalar_one()
    window_row = session.execute(
        select(WindowBudget)
        .where(WindowBudget.call_id == call_id, WindowBudget.window == window)
        .with_for_update()
        .execution_options(**FRESH)
    ).scalar_one_or_none()
    if window_row is None:
        raise NotFound("window", f"{call_id}/{window}")
    return Budgets(
        programme_row,
        window_row,
        domain.ProgrammeBudget(programme_row.envelope, programme_row.committed),
        domain.WindowBudget(window_row.window, window_row.allocation, window_row.committed),
    )


def call_copy(session, call_id: str) -> CallCopy:
    """The copy call_opened left (every proposal copy, hence every grant, has one)."""
    call = session.get(CallCopy, call_id)
    if call is None:
        raise NotFound("call", call_id)
    return call


def call_limits(call: CallCopy) -> domain.CallLimits:
    caps = (
        PRAG_CAPS
        if call.contingency_cap is None or call.indirect_cap is None
        else BudgetCaps(plain(call.contingency_cap), plain(call.indirect_cap))
    )
    return domain.CallLimits(call.min_grant, call.max_grant, Decimal(call.max_ec_share), call.max_duration_months, caps)


def calendar(call: CallCopy | None) -> domain.ProgrammeCalendar:
    """The call's deadline and its programme's period, as call_opened told them."""
    if call is None:
        return domain.ProgrammeCalendar()
    return domain.ProgrammeCalendar(call.deadline, call.programme_start, call.programme_end)


# --- proposals and rankings -----------------------------------------------------------------------------------


def lock_proposal(session, proposal_id: str) -> ProposalCopy:
    row = session.execute(
        select(ProposalCopy).where(ProposalCopy.proposal_id == proposal_id).with_for_update().execution_options(**FRESH)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("proposal", proposal_id)
    return row


def ranking_of(session, call_id: str, window: str) -> domain.Ranking | None:
    row = session.get(RankingCopy, (call_id, window))
    if row is None:
        return None

    def entries(items):
        return tuple(
            domain.RankedProposal(
                e["proposal_id"],
                e["reference"],
                e["rank"],
                Decimal(e["score"]),
                e["country"],
                Decimal(e["ec_amount_requested_eur"]),
            )
            for e in items
        )

    return domain.Ranking(row.call_id, row.window, Decimal(row.threshold), entries(row.main), entries(row.reserve))


def unavailable_proposals(session, proposal_ids) -> set[str]:
    """Proposals that can no longer be awarded: rejected, withdrawn, or excluded at screening."""
    ids = list(proposal_ids)
    rejected = session.execute(
        select(ProposalCopy.proposal_id).where(ProposalCopy.proposal_id.in_(ids), ProposalCopy.status == "rejected")
    ).scalars()
    withdrawn = session.execute(select(Withdrawal.proposal_id).where(Withdrawal.proposal_id.in_(ids))).scalars()
    excluded = session.execute(
        select(Screening.proposal_id).where(Screening.proposal_id.in_(ids), Screening.outcome == "excluded")
    ).scalars()
    return set(rejected) | set(withdrawn) | set(excluded)


def reserve_places(session, ranking: domain.Ranking) -> domain.ReservePlaces:
    """Read under the window's budget lock (awards, declines and closures of the window take it first)."""
    ranked = [e.proposal_id for e in ranking.main + ranking.reserve]
    rows = session.execute(
        select(GrantRow.proposal_id, GrantRow.status, GrantRow.decommitted, GrantRow.amount, GrantRow.ranking_list)
        .where(GrantRow.proposal_id.in_(ranked))
        .order_by(GrantRow.awarded_at, GrantRow.id)
    ).all()
    return domain.reserve_places(
        ranking,
        {r.proposal_id: r.status for r in rows},
        unavailable_proposals(session, ranked),
        decommitted={r.proposal_id: r.decommitted for r in rows if r.decommitted},
        reserve_awards=[r.amount for r in rows if r.ranking_list == domain.RankingList.RESERVE.value],
    )


def proposal_copy(session, row: ProposalCopy, ranking: domain.Ranking | None) -> domain.ProposalCopy:
    """The domain's view of a proposal: the submitted copy with the facts recorded since, placed in its ranking."""
    grant_id = session.execute(select(GrantRow.id).where(GrantRow.proposal_id == row.proposal_id)).scalar()
    screening = session.get(Screening, row.proposal_id)
    proposal = domain.ProposalCopy(
        proposal_id=row.proposal_id,
        reference=row.reference,
        call_id=row.call_id,
        window=row.window,
        country=row.country,
        ec_amount_requested=row.ec_amount_requested,
        programme_id=row.programme_id,
        title=row.title,
        lead_organisation=row.lead_organisation,
        applicant_type=row.applicant_type,
        duration_months=row.duration_months,
        budget=money_map(row.budget),
        withdrawn=session.get(Withdrawal, row.proposal_id) is not None,
        excluded=screening is not None and screening.outcome == "excluded",
        rejected=row.status == "rejected",
        grant_id=grant_id,
    )
    if ranking is not None:
        proposal.place(ranking)
    return proposal


def evaluations_of(session, proposal_id: str) -> list[Evaluation]:
    return list(session.execute(select(Evaluation).where(Evaluation.proposal_id == proposal_id)).scalars())


# --- organisations --------------------------------------------------------------------------------------------


@overload
def organisation(row: OrganisationRow) -> domain.Organisation: ...
@overload
def organisation(row: None) -> None: ...
def organisation(row: OrganisationRow | None) -> domain.Organisation | None:
    if row is None:
        return None
    return domain.Organisation(
        row.legal_name, row.registration_number, row.country, row.iban, row.signatory, row.bic, row.account_validated
    )


def lock_organisation(session, organisation_id: str) -> OrganisationRow:
    row = session.execute(
        select(OrganisationRow)
        .where(OrganisationRow.id == organisation_id)
        .with_for_update()
        .execution_options(**FRESH)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("organisation", organisation_id)
    return row


# --- the grant aggregate --------------------------------------------------------------------------------------


@dataclass
class GrantRecord:
    """A grant's rows and the domain aggregate built from them."""

    row: GrantRow
    grant: domain.Grant
    payments: dict[str, PaymentRow] = field(default_factory=dict)
    reports: dict[str, ReportRow] = field(default_factory=dict)
    organisation: OrganisationRow | None = None


def lock_grant(session, grant_id: str) -> GrantRecord:
    row = session.execute(
        select(GrantRow).where(GrantRow.id == grant_id).with_for_update().execution_options(**FRESH)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("grant", grant_id)
    return load(session, row)


def get_grant(session, grant_id: str) -> GrantRecord:
    row = session.get(GrantRow, grant_id)
    if row is None:
        raise NotFound("grant", grant_id)
    return load(session, row)


def load(session, row: GrantRow) -> GrantRecord:
    payments = {
        p.id: p
        for p in session.execute(
            select(PaymentRow)
            .where(PaymentRow.grant_id == row.id)
            .order_by(PaymentRow.tranche_number)
            .execution_options(**FRESH)
        ).scalars()
    }
    reports = {
        r.id: r
        for r in session.execute(
            select(ReportRow)
            .where(ReportRow.grant_id == row.id)
            .order_by(ReportRow.submitted_at)
            .execution_options(**FRESH)
        ).scalars()
    }
    org_row = session.get(OrganisationRow, row.organisation_id, populate_existing=True) if row.organisation_id else None
    closure = None
    if row.closure_kind is not None:
        closure = domain.Closure(
            domain.ClosureKind(row.closure_kind),
            row.closure_final_payment,
            row.recovery,
            row.closure_eligible,
            row.decommitted or Decimal("0.00"),
        )
    call = session.get(CallCopy, row.call_id)
    grant = domain.Grant(
        grant_id=row.id,
        reference=row.reference,
        proposal_id=row.proposal_id,
        call_id=row.call_id,
        programme_id=row.programme_id,
        window=row.window,
        country=row.country,
        amount=row.amount,
        ec_share=Decimal(row.ec_share),
        duration_months=row.duration_months,
        profile=domain.payment_profile(row.rule_profile),
        budget=money_map(row.budget),
        contract_budget=money_map(row.contract_budget),
        status=domain.GrantStatus(row.status),
        organisation=organisation(org_row),
        start_date=row.start_date,
        annual_budgets=tuple(Decimal(b) for b in row.annual_budgets) if row.annual_budgets else None,
        schedule=[_tranche(t) for t in row.schedule or ()],
        payments={p.id: _payment(p) for p in payments.values()},
        reports={r.id: _report(r) for r in reports.values()},
        closure=closure,
        termination=_termination(row),
        decline_reason=row.decline_reason or "",
        decision_date=row.decision_date,
        calendar=calendar(call),
        conversion=domain.conversion_rule(call.currency_conversion if call is not None else None, row.rule_profile),
        logframe=row.logframe,
    )
    return GrantRecord(row, grant, payments, reports, org_row)


def new_grant_row(
    grant: domain.Grant,
    proposal: ProposalCopy,
    ranking_list: str,
    rule_profile: str,
    decision_reference: str,
    decision_date: date,
    awarded_at,
) -> GrantRow:
    return GrantRow(
        id=grant.grant_id,
        proposal_id=proposal.proposal_id,
        reference=proposal.reference,
        call_id=proposal.call_id,
        programme_id=proposal.programme_id,
        window=proposal.window,
        country=proposal.country,
        applicant_type=proposal.applicant_type,
        lead_organisation=proposal.lead_organisation,
        title=proposal.title,
        ranking_list=ranking_list,
        lead_registration_number=proposal.lead_registration_number,
        lead_country=proposal.lead_country,
        rule_profile=rule_profile,
        decision_reference=decision_reference,
        decision_date=decision_date,
        awarded_at=awarded_at,
        paid=Decimal("0.00"),
    )


def save(session, record: GrantRecord, actor: str, now, idempotency_keys: dict | None = None):
    """Write the aggregate back onto its rows; new payments and reports become new rows."""
    grant, row = record.grant, record.row
    row.amount, row.paid, row.ec_share = grant.amount, grant.paid_total, str(grant.ec_share)
    row.duration_months, row.status = grant.duration_months, grant.status.value
    row.budget, row.contract_budget = wire_money_map(grant.budget), wire_money_map(grant.contract_budget)
    row.start_date = grant.start_date
    row.annual_budgets = [money_str(b) for b in grant.annual_budgets] if grant.annual_budgets else None
    row.schedule = [t.to_data() for t in grant.schedule]
    row.logframe = grant.logframe
    row.decline_reason = grant.decline_reason or None
    if grant.closure is not None:
        row.closure_kind, row.closure_final_payment = grant.closure.kind.value, grant.closure.final_payment
        row.recovery, row.closure_eligible = grant.closure.recovery_amount, grant.closure.eligible_amount
        row.decommitted = grant.closure.decommitted
        row.closed_at = row.closed_at or now
    if grant.status == domain.GrantStatus.DECLINED:
        row.closed_at = row.closed_at or now
    if grant.termination is not None:
        t = grant.termination
        row.terminated_on, row.termination_reason = t.effective_date, t.reason
        row.terminated_by, row.terminated_at = t.terminated_by, t.terminated_at
    for key, payment in grant.payments.items():
        prow = record.payments.get(key)
        if prow is None:
            prow = record.payments[key] = PaymentRow(
                id=key, grant_id=grant.grant_id, idempotency_key=(idempotency_keys or {})[key]
            )
            session.add(prow)
        prow.tranche_number, prow.amount, prow.status = payment.tranche_number, payment.amount, payment.status.value
        prow.requested_by, prow.requested_at = payment.requested_by, payment.requested_at
        prow.approved_by, prow.approved_at = payment.approved_by, payment.approved_at
        prow.value_date, prow.bank_reference = payment.value_date, payment.bank_reference
        prow.cancelled_by, prow.cancelled_at = payment.cancelled_by, payment.cancelled_at
        prow.cancel_reason = payment.cancel_reason
    for report_id, report in grant.reports.items():
        rrow = record.reports.get(report_id)
        if rrow is None:
            rrow = record.reports[report_id] = ReportRow(id=report_id, grant_id=grant.grant_id, submitted_by=actor)
            session.add(rrow)
        elif rrow.status != report.status.value:
            rrow.decided_by = actor
        rrow.kind, rrow.number = report.kind.value, report.number
        rrow.period_start, rrow.period_end = report.period_start, report.period_end
        rrow.expenditure, rrow.total = wire_money_map(report.expenditure), report.total
        rrow.status, rrow.reason = report.status.value, report.reason
        rrow.submitted_at, rrow.decided_at = report.submitted_at, report.decided_at
        rrow.lines = [line.to_data() for line in report.lines] if report.lines else None
        rrow.actuals = list(report.actuals) if report.actuals else None


def _tranche(data: dict) -> domain.Tranche:
    return domain.Tranche(
        data["number"],
        domain.TrancheKind(data["kind"]),
        Decimal(data["planned_amount_eur"]),
        data["condition"],
        date.fromisoformat(data["due_date"]),
    )


def _payment(row: PaymentRow) -> domain.PaymentRequest:
    return domain.PaymentRequest(
        row.id,
        row.grant_id,
        row.tranche_number,
        row.amount,
        row.requested_by,
        row.requested_at,
        domain.PaymentStatus(row.status),
        row.approved_by,
        row.approved_at,
        row.value_date,
        row.bank_reference,
        row.cancelled_by,
        row.cancelled_at,
        row.cancel_reason,
    )


def _report(row: ReportRow) -> domain.FinancialReport:
    return domain.FinancialReport(
        row.id,
        row.grant_id,
        domain.ReportKind(row.kind),
        row.number,
        row.period_start,
        row.period_end,
        money_map(row.expenditure),
        row.submitted_at,
        domain.ReportStatus(row.status),
        row.reason,
        row.decided_at,
        tuple(domain.ExpenditureLine.from_data(d) for d in row.lines or ()),
        tuple(row.actuals or ()),
    )


# --- exchange rates -------------------------------------------------------------------------------------------


def rate_lookup(session):
    """A lookup of published rates for the conversion (each rate read once per unit of work)."""
    seen: dict = {}

    def lookup(rate_type, month: str, currency: str):
        key = (domain.RateType(rate_type).value, month, currency)
        if key not in seen:
            row = session.get(ExchangeRateRow, key)
            seen[key] = (
                None
                if row is None
                else domain.ExchangeRate(
                    domain.RateType(row.rate_type), row.month, row.currency, plain(row.rate), row.source
                )
            )
        return seen[key]

    return lookup


def plain(value) -> Decimal:
    """A stored rate without the column's trailing zeros (10.865500 -> 10.8655)."""
    return Decimal(format(Decimal(value).normalize(), "f"))


def _termination(row: GrantRow) -> domain.Termination | None:
    if row.terminated_on is None:
        return None
    # stored together with terminated_on (save)
    assert row.termination_reason is not None and row.terminated_by is not None
    return domain.Termination(row.terminated_on, row.termination_reason, row.terminated_by, row.terminated_at)
