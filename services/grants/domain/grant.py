"""The Grant aggregate: one awarded proposal from the award to its closure.

    awarded ──sign_contract──▶ contracted ──(payments, reports, amendments)──close──▶ closed
       └──────────────decline (before any payment)─────────────┴──────────────────▶ declined

Every method enforces the rules of its concern module and returns the domain events it produced, as
(event_type, data) pairs whose data matches the contracts in services/common/events.py (money as "150000.00",
dates and timestamps ISO 8601); they are also appended to `events` for the unit of work to write to the outbox.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.money import round_money

from . import payments as pay
from . import reports as rep
from ._values import ZERO, a_date, aware, m, money, money_map, months, period_end, ratio, text
from .amendments import (Amendment, AmendmentKind, check_amendment_amount, check_ec_share, check_reallocation)
from .annex import check_caps, normalise_budget
from .budget import CallLimits, ProgrammeBudget, ProposalCopy, ReservePlaces, WindowBudget, check_award
from .closure import Closure, ClosureKind, close_grant
from .organisations import Organisation
from .payments import PaymentRequest, PaymentState, PaymentStatus, check_payment, next_payment_amount
from .reports import FinancialReport, ReportKind, ReportStatus, reporting_periods
from .schedule import (PragPayments, SharePayments, Tranche, TrancheKind, compute_schedule, fit_to_award,
                       payment_profile)


class DomainEvent(NamedTuple):
    event_type: str
    data: dict


class GrantStatus(str, Enum):
    AWARDED = "awarded"
    CONTRACTED = "contracted"
    CLOSED = "closed"
    DECLINED = "declined"


def reject_proposal(proposal: ProposalCopy, reasons: list[str], decision_reference: str = "") -> list[DomainEvent]:
    """The steering committee does not fund a proposal (proposal_rejected)."""
    if proposal.grant_id is not None:
        raise Conflict("award.already_awarded", f"proposal {proposal.reference} is awarded (grant "
                       f"{proposal.grant_id}) and cannot be rejected")
    if proposal.rejected:
        raise Conflict("proposal.already_rejected", f"proposal {proposal.reference} is already rejected")
    if not reasons or not all(isinstance(r, str) and r.strip() for r in reasons):
        raise InvalidInput({"reasons": ["give at least one reason"]})
    return [DomainEvent("proposal_rejected", {
        "proposal_id": proposal.proposal_id, "reference": proposal.reference, "call_id": proposal.call_id,
        "reasons": [r.strip() for r in reasons], "decision_reference": decision_reference or ""})]


@dataclass
class Grant:
    grant_id: str
    reference: str
    proposal_id: str
    call_id: str
    programme_id: str
    window: str
    country: str
    amount: Decimal
    ec_share: Decimal
    duration_months: int
    profile: PragPayments | SharePayments
    budget: dict = field(default_factory=dict)            # current Annex III budget (after reallocations)
    contract_budget: dict = field(default_factory=dict)   # as signed or last amended: the 15% rule's baseline
    status: GrantStatus = GrantStatus.AWARDED
    organisation: Organisation | None = None
    start_date: date | None = None
    annual_budgets: tuple | None = None
    schedule: list[Tranche] = field(default_factory=list)
    payments: dict[str, PaymentRequest] = field(default_factory=dict)
    reports: dict[str, FinancialReport] = field(default_factory=dict)
    amendments: list[Amendment] = field(default_factory=list)
    closure: Closure | None = None
    decline_reason: str = ""
    events: list[DomainEvent] = field(default_factory=list)

    # ---------------------------------------------------------------- award
    @classmethod
    def award(cls, grant_id: str, proposal: ProposalCopy, amount, call_limits: CallLimits,
              window_budget: WindowBudget, programme_budget: ProgrammeBudget, *, decision_reference: str,
              decision_date: date, awarded_at: datetime, profile="ec_prag", duration_months: int | None = None,
              budget: dict | None = None, ec_share=None,
              reserve: ReservePlaces | None = None) -> tuple["Grant", list[DomainEvent]]:
        """Award a ranked proposal: check the budget guards, commit the amount to the window and the programme.

        The EC share is given, or computed from the Annex III budget (award / total eligible costs). A reserve
        proposal needs `reserve` (its window's reserve places) to show a place is open and it is next in line.
        """
        grant_id = text(grant_id, "grant_id", 60)
        amount = money(amount, "amount", positive=True)
        check_award(proposal, amount, call_limits, window_budget, programme_budget, reserve)
        duration = months(duration_months if duration_months is not None else proposal.duration_months)
        budget = normalise_budget(budget if budget is not None else proposal.budget) \
            if (budget or proposal.budget) else {}
        if ec_share is not None:
            share = ratio(ec_share, "ec_share")
        elif budget:
            share = check_ec_share(amount, budget, call_limits, "award.ec_share_exceeded")
        else:
            raise InvalidInput({"ec_share": ["give the EC share or the Annex III budget"]})
        profile = payment_profile(profile)
        decision_reference = text(decision_reference, "decision_reference", 100)
        a_date(decision_date, "decision_date")
        aware(awarded_at, "awarded_at")
        window_budget.commit(amount)
        programme_budget.commit(amount)
        proposal.grant_id = grant_id
        grant = cls(grant_id=grant_id, reference=proposal.reference, proposal_id=proposal.proposal_id,
                    call_id=proposal.call_id, programme_id=proposal.programme_id, window=proposal.window,
                    country=proposal.country, amount=amount, ec_share=share, duration_months=duration,
                    profile=profile, budget=dict(budget), contract_budget=dict(budget))
        return grant, grant._emit("grant_awarded", {
            "grant_id": grant_id, "proposal_id": proposal.proposal_id, "reference": proposal.reference,
            "call_id": proposal.call_id, "programme_id": proposal.programme_id, "window": proposal.window,
            "country": proposal.country, "applicant_type": proposal.applicant_type,
            "lead_organisation": proposal.lead_organisation, "title": proposal.title, "amount_eur": m(amount),
            "budget": money_map(budget), "decision_reference": decision_reference,
            "decision_date": decision_date.isoformat(), "awarded_at": awarded_at.isoformat()})

    def decline(self, reason: str, declined_at: datetime, window_budget: WindowBudget,
                programme_budget: ProgrammeBudget) -> list[DomainEvent]:
        """The consortium declines: its commitment returns to the window and the programme (the next reserve
        proposal may then be awarded: budget.next_from_reserve)."""
        self._require(GrantStatus.AWARDED, GrantStatus.CONTRACTED)
        if self.payments:
            raise Conflict("grant.decline_after_payment", "a grant with payment requests cannot be declined; "
                           "close it instead")
        self._same_window(window_budget)
        reason = text(reason, "reason", 2000)
        aware(declined_at, "declined_at")
        window_budget.release(self.amount)
        programme_budget.release(self.amount)
        self.status, self.decline_reason = GrantStatus.DECLINED, reason
        return self._emit("grant_closed", {
            "grant_id": self.grant_id, "reference": self.reference, "kind": "declined", "paid_eur": "0.00",
            "accepted_expenditure_eur": "0.00", "recovery_eur": "0.00", "closed_at": declined_at.isoformat()})

    # ------------------------------------------------------------- contract
    def sign_contract(self, organisation: Organisation, start_date: date, signed_at: datetime,
                      annual_budgets: list | None = None, duration_months: int | None = None) -> list[DomainEvent]:
        """The contract fixes the start date, the duration (the proposal's unless given) and the tranches."""
        self._require(GrantStatus.AWARDED)
        if not isinstance(organisation, Organisation):
            raise InvalidInput({"organisation": ["the lead applicant's registered organisation is required"]})
        aware(signed_at, "signed_at")
        duration = months(duration_months, "duration_months") if duration_months is not None \
            else self.duration_months
        schedule = compute_schedule(self.profile, self.amount, duration, annual_budgets, start_date)
        self.organisation, self.start_date, self.duration_months = organisation, start_date, duration
        self.annual_budgets = tuple(money(b, "annual_budgets") for b in annual_budgets) if annual_budgets else None
        self.schedule, self.status = schedule, GrantStatus.CONTRACTED
        return self._emit("contract_signed", {
            "grant_id": self.grant_id, "reference": self.reference, "start_date": start_date.isoformat(),
            "end_date": self.end_date.isoformat(), "duration_months": self.duration_months,
            "amount_eur": m(self.amount), "schedule": [t.to_data() for t in schedule],
            "signed_at": signed_at.isoformat()})

    def update_organisation(self, organisation: Organisation) -> None:
        """The register changed (e.g. the bank account was validated or replaced)."""
        if not isinstance(organisation, Organisation):
            raise InvalidInput({"organisation": ["must be an Organisation"]})
        self.organisation = organisation

    @property
    def end_date(self) -> date | None:
        return None if self.start_date is None else period_end(self.start_date, self.duration_months)

    # ------------------------------------------------------------- payments
    @property
    def paid(self) -> dict[int, Decimal]:
        return {p.tranche_number: p.amount for p in self.payments.values() if p.status == PaymentStatus.PAID}

    @property
    def paid_total(self) -> Decimal:
        return sum(self.paid.values(), ZERO)

    @property
    def accepted_reports(self) -> list[FinancialReport]:
        return [r for r in self.reports.values() if r.status == ReportStatus.ACCEPTED]

    @property
    def accepted_expenditure(self) -> Decimal:
        return sum((r.total for r in self.accepted_reports), ZERO)

    def tranche(self, number: int) -> Tranche:
        for t in self.schedule:
            if t.number == number:
                return t
        raise NotFound("tranche", number)

    def payable_amount(self, tranche_number: int) -> Decimal:
        """What the tranche may carry now: pre-financing as planned; a further pre-financing after the 70%
        rule on the previous payment; the balance as the closure computes it once the final report is in."""
        tranche = self.tranche(tranche_number)
        paid = self.paid
        remaining = self.amount - sum(paid.values(), ZERO)
        if tranche.kind == TrancheKind.BALANCE:
            if "final_report" in {r.condition for r in self.accepted_reports}:
                before = sum((a for n, a in paid.items() if n != tranche_number), ZERO)
                return close_grant(self.amount, before, self.accepted_expenditure, self.ec_share).final_payment
            return min(tranche.planned_amount, remaining)
        previous = tranche_number - 1
        if tranche.kind == TrancheKind.PRE_FINANCING or previous not in paid:
            return min(tranche.planned_amount, remaining)
        report_no = int(tranche.condition.split(":")[1]) if tranche.condition else 0
        spent_total = sum((round_money(r.total * self.ec_share) for r in self.accepted_reports
                           if r.kind == ReportKind.INTERIM and r.number <= report_no), ZERO)
        paid_before_previous = sum((a for n, a in paid.items() if n < previous), ZERO)
        spent_of_previous = max(spent_total - paid_before_previous, ZERO)
        return next_payment_amount(tranche.planned_amount, paid[previous], spent_of_previous, remaining,
                                   self.profile.spend_threshold)

    def payment_state(self) -> PaymentState:
        return PaymentState(
            award=self.amount, schedule=tuple(self.schedule), paid=self.paid,
            pending=frozenset(p.tranche_number for p in self.payments.values() if p.status != PaymentStatus.PAID),
            accepted_reports=frozenset(r.condition for r in self.accepted_reports),
            contract_signed=self.status == GrantStatus.CONTRACTED,
            account_validated=bool(self.organisation and self.organisation.account_validated),
            payable={t.number: self.payable_amount(t.number) for t in self.schedule})

    def request_payment(self, key: str, tranche_number: int, amount, requested_by: str,
                        requested_at: datetime) -> list[DomainEvent]:
        """A finance officer asks for a tranche. The same key with the same content is a no-op (no event)."""
        request = PaymentRequest(key, self.grant_id, tranche_number, amount, requested_by, requested_at)
        existing = self.payments.get(request.key)
        if existing is not None:
            if existing.same_request(request):
                return []
            raise Conflict("payment.key_reused", f"key {request.key} was used for a different payment request")
        self._require_contracted_for_payment()
        check_payment(self.payment_state(), request.tranche_number, request.amount)
        self.payments[request.key] = request
        return self._emit("payment_requested", {
            "payment_id": request.key, "grant_id": self.grant_id, "reference": self.reference,
            "tranche_number": request.tranche_number, "amount_eur": m(request.amount),
            "requested_by": request.requested_by, "requested_at": request.requested_at.isoformat()})

    def approve_payment(self, key: str, approver: str, approved_at: datetime) -> list[DomainEvent]:
        """Four eyes, then the payment rules again (the grant may have changed since the request)."""
        request = self._payment(key)
        approved = pay.approve(request, approver, approved_at)
        self._require_contracted_for_payment()
        check_payment(self.payment_state(), request.tranche_number, request.amount, ignore_pending=True)
        self.payments[key] = approved
        return []

    def mark_paid(self, key: str, value_date: date, bank_reference: str) -> list[DomainEvent]:
        paid = pay.mark_paid(self._payment(key), value_date, bank_reference)
        self.payments[key] = paid
        return self._emit("tranche_paid", {
            "payment_id": paid.key, "grant_id": self.grant_id, "reference": self.reference,
            "tranche_number": paid.tranche_number, "amount_eur": m(paid.amount),
            "value_date": paid.value_date.isoformat(), "bank_reference": paid.bank_reference,
            "approved_by": paid.approved_by or ""})

    def _payment(self, key: str) -> PaymentRequest:
        if key not in self.payments:
            raise NotFound("payment", key)
        return self.payments[key]

    def _require_contracted_for_payment(self) -> None:
        if self.status in (GrantStatus.CLOSED, GrantStatus.DECLINED):
            raise Conflict("grant.invalid_state", f"grant {self.grant_id} is {self.status.value}")

    # -------------------------------------------------------------- reports
    def submit_report(self, report_id: str, kind: str, number: int, expenditure: dict,
                      submitted_at: datetime) -> list[DomainEvent]:
        """A consortium's interim report n or final report, for the period the contract gives it."""
        if self.status == GrantStatus.AWARDED:
            raise Conflict("report.contract_not_signed", "no report before the contract is signed")
        self._require(GrantStatus.CONTRACTED)
        report_id = text(report_id, "report_id", 60)
        kind = ReportKind(kind) if kind in {k.value for k in ReportKind} else None
        if kind is None:
            raise InvalidInput({"kind": ["must be interim or final"]})
        number = 1 if kind == ReportKind.FINAL else number
        periods = reporting_periods(self.start_date, self.duration_months)
        period = next((p for p in periods if p.kind == kind.value and p.number == number), None)
        if period is None:
            raise InvalidInput({"number": [f"the contract has no {kind.value} report {number}"]})
        if report_id in self.reports:
            raise Conflict("report.already_submitted", f"report {report_id} already exists")
        live = [r for r in self.reports.values() if r.condition == period.condition
                and r.status != ReportStatus.RETURNED]
        if live:
            raise Conflict("report.already_submitted", f"the {period.condition} is already {live[0].status.value}")
        accepted = {r.condition for r in self.accepted_reports}
        missing = [p.condition for p in periods if p.kind == "interim" and p.end < period.end
                   and p.condition not in accepted]
        if missing:
            raise Conflict("report.out_of_order", f"accept {', '.join(missing)} first", [{"missing": missing}])
        aware(submitted_at, "submitted_at")
        if submitted_at.date() < period.end:
            raise Conflict("report.period_not_ended", f"the period of the {period.condition} ends on "
                           f"{period.end.isoformat()}")
        report = FinancialReport(report_id, self.grant_id, kind, period.number, period.start, period.end,
                                 expenditure, submitted_at)
        self.reports[report_id] = report
        return self._emit("report_submitted", {
            "report_id": report_id, "grant_id": self.grant_id, "reference": self.reference, "kind": kind.value,
            "number": report.number, "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
            "expenditure": money_map(report.expenditure), "total_eur": m(report.total),
            "submitted_at": submitted_at.isoformat()})

    def accept_report(self, report_id: str, decided_at: datetime) -> list[DomainEvent]:
        self._require(GrantStatus.CONTRACTED)
        report = rep.accept(self._report(report_id), decided_at)
        self.reports[report_id] = report
        return self._decided(report)

    def return_report(self, report_id: str, reason: str, decided_at: datetime) -> list[DomainEvent]:
        self._require(GrantStatus.CONTRACTED)
        report = rep.return_report(self._report(report_id), reason, decided_at)
        self.reports[report_id] = report
        return self._decided(report)

    def _report(self, report_id: str) -> FinancialReport:
        if report_id not in self.reports:
            raise NotFound("report", report_id)
        return self.reports[report_id]

    def _decided(self, report: FinancialReport) -> list[DomainEvent]:
        return self._emit("report_accepted", {
            "report_id": report.report_id, "grant_id": self.grant_id, "reference": self.reference,
            "kind": report.kind.value, "number": report.number, "outcome": report.status.value,
            "reason": report.reason,
            "expenditure": money_map(report.expenditure), "total_eur": m(report.total),
            "decided_at": report.decided_at.isoformat()})

    # ----------------------------------------------------------- amendments
    def reallocate(self, reallocation_id: str, new_budget: dict, reason: str = "") -> list[DomainEvent]:
        """Move money between headings without an amendment (within 15% of each heading as contracted)."""
        self._require(GrantStatus.CONTRACTED)
        if not self.contract_budget:
            raise Conflict("reallocation.no_budget", "the grant has no Annex III budget to reallocate")
        check_reallocation(self.contract_budget, new_budget)
        self.budget = normalise_budget(new_budget)
        return self._amended(text(reallocation_id, "reallocation_id", 60), "reallocation", reason)

    def amend(self, amendment: Amendment, call_limits: CallLimits, window_budget: WindowBudget,
              programme_budget: ProgrammeBudget) -> list[DomainEvent]:
        self._require(GrantStatus.CONTRACTED)
        self._same_window(window_budget)
        if any(p.status != PaymentStatus.PAID for p in self.payments.values()):
            raise Conflict("amendment.payment_pending", "decide the pending payment request before amending")
        amount, duration, budget = self.amount, self.duration_months, self.budget
        annual = self.annual_budgets
        if amendment.new_budget is not None:
            budget = amendment.new_budget
            check_caps(budget)
        if amendment.kind == AmendmentKind.DURATION:
            duration = amendment.new_duration_months
            if call_limits.max_duration_months and duration > call_limits.max_duration_months:
                raise Conflict("amendment.above_max_duration", f"{duration} months is above the call's "
                               f"{call_limits.max_duration_months}")
            annual = amendment.new_annual_budgets
        if amendment.kind == AmendmentKind.AMOUNT:
            amount = amendment.new_amount
            check_amendment_amount(self.amount, amount, self.paid_total, call_limits, window_budget,
                                   programme_budget)
            annual = amendment.new_annual_budgets
        share = check_ec_share(amount, budget, call_limits) if budget else self.ec_share
        schedule = self._reschedule(amount, duration, annual)
        # all checks passed: apply
        if amount != self.amount:
            change = amount - self.amount
            if change > 0:
                window_budget.commit(change)
                programme_budget.commit(change)
            else:
                window_budget.release(-change)
                programme_budget.release(-change)
        self.amount, self.duration_months, self.ec_share = amount, duration, share
        self.budget, self.contract_budget = dict(budget), dict(budget)
        self.annual_budgets = tuple(annual) if annual else None
        self.schedule = schedule
        self.amendments.append(amendment)
        return self._amended(amendment.amendment_id, amendment.kind.value, amendment.reason)

    def _reschedule(self, amount: Decimal, duration: int, annual) -> list[Tranche]:
        if (amount, duration, annual) == (self.amount, self.duration_months, self.annual_budgets):
            return self.schedule
        if duration != self.duration_months:
            live = [r for r in self.reports.values() if r.status != ReportStatus.RETURNED]
            conditions = {p.condition for p in reporting_periods(self.start_date, duration)}
            orphan = [r.condition for r in live if r.kind == ReportKind.FINAL or r.condition not in conditions]
            if orphan:
                raise Conflict("amendment.conflicts_with_reports", "the new duration does not fit the reports "
                               "already submitted", [{"reports": orphan}])
        schedule = compute_schedule(self.profile, amount, duration, annual, self.start_date)
        paid = self.paid
        new_kinds = {t.number: t.kind for t in schedule}
        old_kinds = {t.number: t.kind for t in self.schedule}
        if any(new_kinds.get(n) != old_kinds[n] for n in paid):
            raise Conflict("amendment.conflicts_with_payments", "the new schedule does not keep the tranches "
                           "already paid", [{"paid_tranches": sorted(paid)}])
        if amount < sum(paid.values(), ZERO):
            raise Conflict("amendment.below_paid", f"{m(amount)} is below what is already paid")
        return fit_to_award(schedule, amount, fixed=paid)

    def _amended(self, amendment_id: str, kind: str, reason: str) -> list[DomainEvent]:
        return self._emit("grant_amended", {
            "grant_id": self.grant_id, "reference": self.reference, "amendment_id": amendment_id, "kind": kind,
            "amount_eur": m(self.amount), "duration_months": self.duration_months,
            "budget": money_map(self.budget), "reason": reason or ""})

    # -------------------------------------------------------------- closure
    def close(self, closed_at: datetime) -> list[DomainEvent]:
        """Close after the accepted final report: once the final payment is made, or with a recovery order."""
        self._require(GrantStatus.CONTRACTED)
        aware(closed_at, "closed_at")
        if "final_report" not in {r.condition for r in self.accepted_reports}:
            raise Conflict("closure.final_report_required", "the final report must be accepted first")
        if any(p.status != PaymentStatus.PAID for p in self.payments.values()):
            raise Conflict("closure.payment_pending", "a payment request is still pending")
        closure = close_grant(self.amount, self.paid_total, self.accepted_expenditure, self.ec_share)
        balance = next((t for t in self.schedule if t.kind == TrancheKind.BALANCE), None)
        if closure.kind == ClosureKind.FINAL_PAYMENT and closure.final_payment > 0 and balance is not None \
                and balance.number not in self.paid:
            raise Conflict("closure.final_payment_pending", f"pay the balance of {m(closure.final_payment)} "
                           f"(tranche {balance.number}) first", [{"final_payment": m(closure.final_payment)}])
        self.closure, self.status = closure, GrantStatus.CLOSED
        return self._emit("grant_closed", {
            "grant_id": self.grant_id, "reference": self.reference, "kind": closure.kind.value,
            "paid_eur": m(self.paid_total), "accepted_expenditure_eur": m(self.accepted_expenditure),
            "recovery_eur": m(closure.recovery_amount), "closed_at": closed_at.isoformat()})

    # -------------------------------------------------------------- helpers
    def _require(self, *statuses: GrantStatus) -> None:
        if self.status not in statuses:
            raise Conflict("grant.invalid_state", f"grant {self.grant_id} is {self.status.value}, not "
                           f"{' or '.join(s.value for s in statuses)}")

    def _same_window(self, window_budget: WindowBudget) -> None:
        if window_budget.window != self.window:
            raise InvalidInput({"window": [f"grant {self.grant_id} is in window {self.window}, "
                                           f"not {window_budget.window}"]})

    def _emit(self, event_type: str, data: dict) -> list[DomainEvent]:
        event = DomainEvent(event_type, data)
        self.events.append(event)
        return [event]
