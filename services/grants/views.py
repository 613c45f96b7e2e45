"""What the grants RPCs return: plain dicts (the kit turns Decimal and dates into their wire form)."""

from decimal import Decimal

from services.grants import domain

from .models import GrantRow, OrganisationRow, PaymentRow, ProposalCopy, ReportRow
from .repository import GrantRecord

SHARE_PLACES = Decimal("0.0001")
ZERO = Decimal("0.00")


def committed(row: GrantRow) -> Decimal:
    return domain.committed_amount(row.amount, row.decommitted, row.status == domain.GrantStatus.DECLINED.value)


def grant_summary(row: GrantRow) -> dict:
    return {
        "grant_id": row.id,
        "proposal_id": row.proposal_id,
        "reference": row.reference,
        "call_id": row.call_id,
        "programme_id": row.programme_id,
        "window": row.window,
        "country": row.country,
        "applicant_type": row.applicant_type,
        "lead_organisation": row.lead_organisation,
        "title": row.title,
        "lead_applicant": {"country": row.lead_country, "registration_number": row.lead_registration_number},
        "ranking_list": row.ranking_list,
        "status": row.status,
        "amount_eur": row.amount,
        "paid_eur": row.paid,
        "committed_eur": committed(row),
        "decommitted_eur": row.decommitted or ZERO,
        "decision_reference": row.decision_reference,
        "decision_date": row.decision_date,
        "awarded_at": row.awarded_at,
        "start_date": row.start_date,
        "duration_months": row.duration_months,
    }


def grant_view(record: GrantRecord) -> dict:
    """Everything about one grant: the contract's schedule with what each tranche may carry now, the reports the
    contract expects with their due dates, the payments, reports and closure."""
    grant, row = record.grant, record.row
    view = grant_summary(row)
    view.update(
        {
            "ec_share": Decimal(row.ec_share).quantize(SHARE_PLACES),
            "remaining_eur": grant.amount - grant.paid_total,
            "budget": grant.budget,
            "contract_budget": grant.contract_budget,
            "rule_profile": row.rule_profile,
            "end_date": grant.end_date,
            "signed_at": row.signed_at,
            "annual_budgets": row.annual_budgets,
            "organisation": organisation_view(record.organisation) if record.organisation else None,
            "schedule": schedule_view(grant),
            "reports_due": reports_due_view(grant),
            "payments": [payment_view(p) for p in record.payments.values()],
            "reports": [report_view(r) for r in record.reports.values()],
            "accepted_expenditure_eur": grant.accepted_expenditure,
            "decline_reason": row.decline_reason,
            "logframe": grant.logframe,  # the contract's: the proposal's outcomes and outputs, targets as amended
            "closure": None
            if row.closure_kind is None
            else {
                "kind": row.closure_kind,
                "final_payment_eur": row.closure_final_payment,
                "ec_eligible_eur": row.closure_eligible,
                "recovery_eur": row.recovery,
                "decommitted_eur": grant.decommitted,
                "decommitment_reason": grant.decommitment_reason(),
                "closed_at": row.closed_at,
            },
            "termination": termination_view(row),
        }
    )
    return view


def schedule_view(grant: domain.Grant) -> list[dict]:
    paid = grant.paid
    pending = {p.tranche_number: p.status.value for p in grant.payments.values() if p.pending}
    accepted = {r.condition for r in grant.accepted_reports}
    tranches = []
    for tranche in grant.schedule:
        entry = {
            "number": tranche.number,
            "kind": tranche.kind.value,
            "planned_amount_eur": tranche.planned_amount,
            "condition": tranche.condition,
            "condition_met": tranche.condition is None or tranche.condition in accepted,
            "due_date": tranche.due_date,
            "status": "paid" if tranche.number in paid else pending.get(tranche.number, "planned"),
        }
        if tranche.number in paid:
            entry["paid_eur"] = paid[tranche.number]
        elif grant.termination is not None and tranche.kind != domain.TrancheKind.BALANCE:
            entry["status"] = "lapsed"  # after an early termination only the balance is paid
        elif grant.status in (domain.GrantStatus.CONTRACTED, domain.GrantStatus.TERMINATED):
            entry["payable_eur"] = grant.payable_amount(tranche.number)  # after the 70% rule
        tranches.append(entry)
    return tranches


def reports_due_view(grant: domain.Grant) -> list[dict]:
    if grant.start_date is None:
        return []
    latest = {report.condition: report for report in sorted(grant.reports.values(), key=lambda r: r.submitted_at)}
    due = []
    for period in grant.reporting_periods():
        report = latest.get(period.condition)
        due.append(
            {
                "kind": period.kind,
                "number": period.number,
                "condition": period.condition,
                "period_start": period.start,
                "period_end": period.end,
                "due_date": period.due_date,
                "status": report.status.value if report else "expected",
                "report_id": report.report_id if report else None,
            }
        )
    return due


def payment_view(row: PaymentRow) -> dict:
    return {
        "payment_id": row.id,
        "grant_id": row.grant_id,
        "idempotency_key": row.idempotency_key,
        "tranche_number": row.tranche_number,
        "amount_eur": row.amount,
        "status": row.status,
        "requested_by": row.requested_by,
        "requested_at": row.requested_at,
        "approved_by": row.approved_by,
        "approved_at": row.approved_at,
        "value_date": row.value_date,
        "bank_reference": row.bank_reference,
        "cancelled_by": row.cancelled_by,
        "cancelled_at": row.cancelled_at,
        "cancel_reason": row.cancel_reason,
    }


def report_view(row: ReportRow) -> dict:
    return {
        "report_id": row.id,
        "grant_id": row.grant_id,
        "kind": row.kind,
        "number": row.number,
        "period_start": row.period_start,
        "period_end": row.period_end,
        "expenditure": row.expenditure,
        "total_eur": row.total,
        "lines": row.lines or [],
        "actuals": row.actuals or [],
        "status": row.status,
        "reason": row.reason,
        "submitted_by": row.submitted_by,
        "submitted_at": row.submitted_at,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
    }


def organisation_view(row: OrganisationRow, shared: list[dict] | None = None) -> dict:
    """`iban_shared_with`: the other organisations registered with the same account (when known here)."""
    view = {
        "organisation_id": row.id,
        "legal_name": row.legal_name,
        "registration_number": row.registration_number,
        "country": row.country,
        "signatory": row.signatory,
        "iban": row.iban,
        "bic": row.bic,
        "account_validated": row.account_validated,
        "registered_by": row.registered_by,
        "registered_at": row.registered_at,
        "validated_by": row.validated_by,
        "validated_at": row.validated_at,
    }
    if shared is not None:
        view["iban_shared_with"] = shared
    return view


def proposal_decision_view(row: ProposalCopy) -> dict:
    return {
        "proposal_id": row.proposal_id,
        "reference": row.reference,
        "call_id": row.call_id,
        "window": row.window,
        "status": row.status,
        "reasons": row.rejection_reasons or [],
        "decision_reference": row.decision_reference,
    }


def termination_view(row: GrantRow) -> dict | None:
    """The early termination of a grant (None: not terminated)."""
    if row.terminated_on is None:
        return None
    return {
        "effective_date": row.terminated_on,
        "reason": row.termination_reason,
        "terminated_by": row.terminated_by,
        "terminated_at": row.terminated_at,
    }
