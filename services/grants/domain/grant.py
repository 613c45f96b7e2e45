"""The Grant aggregate: one awarded proposal from the award to its closure.

    awarded ──sign_contract──▶ contracted ──(payments, reports, amendments)──close──▶ closed
       │                           └──terminate──▶ terminated ──(final report, balance)──close──┘
       └──────────────decline (before any payment)─────────────┴──────────────────▶ declined

Termination (domain/termination.py) ends the action early: the final report covers up to its effective date and
may come at once; closure then computes the final amount and decommits the rest, as after a planned end.

Closing reduces the commitment to the final amount: the rest is decommitted (grant_decommitted) and goes back
to the window and the programme at once, where a reserve proposal or a later call may use it.

Every method enforces the rules of its concern module and returns the domain events it produced, as
(event_type, data) pairs whose data are Python values (Decimal money, dates, aware date-times) matching the contracts
in services/common/contracts/events.py; the unit of work turns each into its wire form once, when it writes it to
the outbox.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from services.common.values import logframe as lf
from services.common.values.errors import Conflict, InvalidInput, NotFound
from services.common.values.money import round_money

from . import payments as pay
from . import reports as rep
from ._values import ZERO, a_date, aware, m, money, months, period_end, ratio, text
from .amendments import Amendment, AmendmentKind, check_amendment_amount, check_ec_share, check_reallocation
from .annex import HEADINGS, check_caps, normalise_budget
from .budget import CallLimits, ProgrammeBudget, ProposalCopy, ReservePlaces, WindowBudget, check_award
from . import currencies as fx
from .closure import Closure, ClosureKind, close_grant, committed_amount
from .dates import ProgrammeCalendar, check_value_date
from .organisations import Organisation
from .payments import PaymentRequest, PaymentState, PaymentStatus, check_payment, next_payment_amount
from .reports import FinancialReport, ReportingPeriod, ReportKind, ReportStatus, reporting_periods
from .termination import Termination, check_termination, periods_after_termination
from .schedule import PragPayments, SharePayments, Tranche, TrancheKind, compute_schedule, fit_to_award, payment_profile


class DomainEvent(NamedTuple):
    event_type: str
    data: dict


class GrantStatus(str, Enum):
    AWARDED = "awarded"
    CONTRACTED = "contracted"
    CLOSED = "closed"
    DECLINED = "declined"
    TERMINATED = "terminated"  # ended early: final report and closure still to come


def reject_proposal(proposal: ProposalCopy, reasons: list[str], decision_reference: str = "") -> list[DomainEvent]:
    """The steering committee does not fund a proposal (proposal_rejected)."""
    if proposal.grant_id is not None:
        raise Conflict(
            "award.already_awarded",
            f"proposal {proposal.reference} is awarded (grant {proposal.grant_id}) and cannot be rejected",
        )
    if proposal.rejected:
        raise Conflict("proposal.already_rejected", f"proposal {proposal.reference} is already rejected")
    if not reasons or not all(isinstance(r, str) and r.strip() for r in reasons):
        raise InvalidInput({"reasons": ["give at least one reason"]})
    return [
        DomainEvent(
            "proposal_rejected",
            {
                "proposal_id": proposal.proposal_id,
                "reference": proposal.reference,
                "call_id": proposal.call_id,
                "reasons": [r.strip() for r in reasons],
                "decision_reference": decision_reference or "",
            },
        )
    ]


def _indicator_values(indicator: dict) -> dict:
    """A logframe indicator as the contract keeps it (JSON: the target date as text), in Python values."""
    target = indicator["target_date"]
    return {**indicator, "target_date": target if isinstance(target, date) else date.fromisoformat(target)}


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
    budget: dict = field(default_factory=dict)  # current Annex III budget (after reallocations)
    contract_budget: dict = field(default_factory=dict)  # as signed or last amended: the 15% rule's baseline
    status: GrantStatus = GrantStatus.AWARDED
    organisation: Organisation | None = None
    start_date: date | None = None
    annual_budgets: tuple | None = None
    schedule: list[Tranche] = field(default_factory=list)
    payments: dict[str, PaymentRequest] = field(default_factory=dict)
    reports: dict[str, FinancialReport] = field(default_factory=dict)
    amendments: list[Amendment] = field(default_factory=list)
    closure: Closure | None = None
    termination: Termination | None = None  # set when the grant was terminated early
    decline_reason: str = ""
    decision_date: date | None = None  # the steering committee's decision (the commitment)
    calendar: ProgrammeCalendar = field(default_factory=ProgrammeCalendar)  # call deadline, programme period
    conversion: fx.ConversionRule = fx.ConversionRule.EC_MONTHLY  # how expenditure in other currencies is converted
    logframe: list | None = None  # the contract's logframe (the proposal's, targets as last amended)

    # ---------------------------------------------------------------- award
    @classmethod
    def award(
        cls,
        grant_id: str,
        proposal: ProposalCopy,
        amount,
        call_limits: CallLimits,
        window_budget: WindowBudget,
        programme_budget: ProgrammeBudget,
        *,
        decision_reference: str,
        decision_date: date,
        awarded_at: datetime,
        profile="ec_prag",
        duration_months: int | None = None,
        budget: dict | None = None,
        ec_share=None,
        reserve: ReservePlaces | None = None,
        calendar: ProgrammeCalendar | None = None,
    ) -> tuple["Grant", list[DomainEvent]]:
        """Award a ranked proposal: check the budget guards, commit the amount to the window and the programme.

        The EC share is given, or computed from the Annex III budget (award / total eligible costs). A reserve
        proposal needs `reserve` (its window's reserve places) to show a place is open and it is next in line.
        The decision is dated once the call has closed, within the programme period, and not after the day it is
        recorded (`calendar`: what grants knows of the call and programme dates).
        """
        grant_id = text(grant_id, "grant_id", 60)
        amount = money(amount, "amount", positive=True)
        check_award(proposal, amount, call_limits, window_budget, programme_budget, reserve)
        duration = months(duration_months if duration_months is not None else proposal.duration_months)
        budget = (
            normalise_budget(budget if budget is not None else proposal.budget) if (budget or proposal.budget) else {}
        )
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
        calendar = calendar or ProgrammeCalendar()
        calendar.check_award_decision(decision_date, awarded_at.date())
        window_budget.commit(amount)
        programme_budget.commit(amount)
        proposal.grant_id = grant_id
        grant = cls(
            grant_id=grant_id,
            reference=proposal.reference,
            proposal_id=proposal.proposal_id,
            call_id=proposal.call_id,
            programme_id=proposal.programme_id,
            window=proposal.window,
            country=proposal.country,
            amount=amount,
            ec_share=share,
            duration_months=duration,
            profile=profile,
            budget=dict(budget),
            contract_budget=dict(budget),
            decision_date=decision_date,
            calendar=calendar,
        )
        return grant, grant._emit(
            "grant_awarded",
            {
                "grant_id": grant_id,
                "proposal_id": proposal.proposal_id,
                "reference": proposal.reference,
                "call_id": proposal.call_id,
                "programme_id": proposal.programme_id,
                "window": proposal.window,
                "country": proposal.country,
                "applicant_type": proposal.applicant_type,
                "lead_organisation": proposal.lead_organisation,
                "title": proposal.title,
                "amount_eur": amount,
                "budget": dict(budget),
                "decision_reference": decision_reference,
                "decision_date": decision_date,
                "awarded_at": awarded_at,
            },
        )

    def decline(
        self, reason: str, declined_at: datetime, window_budget: WindowBudget, programme_budget: ProgrammeBudget
    ) -> list[DomainEvent]:
        """The consortium declines: its commitment returns to the window and the programme (the next reserve
        proposal may then be awarded: budget.next_from_reserve)."""
        self._require(GrantStatus.AWARDED, GrantStatus.CONTRACTED)
        if self.payments:
            raise Conflict(
                "grant.decline_after_payment", "a grant with payment requests cannot be declined; close it instead"
            )
        self._same_window(window_budget)
        reason = text(reason, "reason", 2000)
        aware(declined_at, "declined_at")
        window_budget.release(self.amount)
        programme_budget.release(self.amount)
        self.status, self.decline_reason = GrantStatus.DECLINED, reason
        return self._emit(
            "grant_closed",
            {
                "grant_id": self.grant_id,
                "reference": self.reference,
                "kind": "declined",
                "paid_eur": ZERO,
                "accepted_expenditure_eur": ZERO,
                "recovery_eur": ZERO,
                "closed_at": declined_at,
            },
        )

    # ------------------------------------------------------------- contract
    def sign_contract(
        self,
        organisation: Organisation,
        start_date: date,
        signed_at: datetime,
        annual_budgets: list | None = None,
        duration_months: int | None = None,
    ) -> list[DomainEvent]:
        """The contract fixes the start date, the duration (the proposal's unless given) and the tranches. The
        action starts on or after the award decision and runs within the programme period."""
        self._require(GrantStatus.AWARDED)
        if not isinstance(organisation, Organisation):
            raise InvalidInput({"organisation": ["the lead applicant's registered organisation is required"]})
        if not organisation.account_validated:
            # the contract names the account the grant is paid to: a finance approver must have checked it first
            raise Conflict(
                "contract.account_not_validated",
                f"the bank account of {organisation.legal_name} is not "
                f"validated yet: a finance approver validates it before the contract is signed",
            )
        aware(signed_at, "signed_at")
        duration = months(duration_months, "duration_months") if duration_months is not None else self.duration_months
        schedule = compute_schedule(self.profile, self.amount, duration, annual_budgets, start_date)
        self.calendar.check_contract(start_date, period_end(start_date, duration), self.decision_date)
        self.organisation, self.start_date, self.duration_months = organisation, start_date, duration
        self.annual_budgets = tuple(money(b, "annual_budgets") for b in annual_budgets) if annual_budgets else None
        self.schedule, self.status = schedule, GrantStatus.CONTRACTED
        return self._emit(
            "contract_signed",
            {
                "grant_id": self.grant_id,
                "reference": self.reference,
                "start_date": start_date,
                "end_date": self.end_date,
                "duration_months": self.duration_months,
                "amount_eur": self.amount,
                "schedule": [t.event_values() for t in schedule],
                "signed_at": signed_at,
            },
        )

    def update_organisation(self, organisation: Organisation) -> None:
        """The register changed (e.g. the bank account was validated or replaced)."""
        if not isinstance(organisation, Organisation):
            raise InvalidInput({"organisation": ["must be an Organisation"]})
        self.organisation = organisation

    @property
    def end_date(self) -> date | None:
        return None if self.start_date is None else period_end(self.start_date, self.duration_months)

    @property
    def contract_start(self) -> date:
        """The start date the signed contract fixed (the operations that use it require a contract first)."""
        if self.start_date is None:
            raise Conflict("grant.invalid_state", f"grant {self.grant_id} has no signed contract")
        return self.start_date

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
        spent_total = sum(
            (
                round_money(r.total * self.ec_share)
                for r in self.accepted_reports
                if r.kind == ReportKind.INTERIM and r.number <= report_no
            ),
            ZERO,
        )
        paid_before_previous = sum((a for n, a in paid.items() if n < previous), ZERO)
        spent_of_previous = max(spent_total - paid_before_previous, ZERO)
        return next_payment_amount(
            tranche.planned_amount, paid[previous], spent_of_previous, remaining, self.profile.spend_threshold
        )

    def payment_state(self) -> PaymentState:
        return PaymentState(
            award=self.amount,
            schedule=self._payable_schedule(),
            paid=self.paid,
            pending=frozenset(p.tranche_number for p in self.payments.values() if p.pending),
            accepted_reports=frozenset(r.condition for r in self.accepted_reports),
            contract_signed=self.status in (GrantStatus.CONTRACTED, GrantStatus.TERMINATED),
            account_validated=bool(self.organisation and self.organisation.account_validated),
            payable={t.number: self.payable_amount(t.number) for t in self.schedule},
        )

    def request_payment(
        self,
        key: str,
        tranche_number: int,
        amount,
        requested_by: str,
        requested_at: datetime,
        idempotency_key: str | None = None,
    ) -> list[DomainEvent]:
        """A finance officer asks for a tranche. The same key with the same content is a no-op (no event).
        `key` is the payment's id; `idempotency_key` the key the officer gave, if the id was derived from it
        (a refusal names what the officer typed, not an internal id)."""
        request = PaymentRequest(key, self.grant_id, tranche_number, amount, requested_by, requested_at)
        existing = self.payments.get(request.key)
        if existing is not None:
            if existing.same_request(request):
                return []
            given = idempotency_key or request.key
            raise Conflict(
                "payment.key_reused",
                f"the idempotency key {given!r} was already used for a different "
                f"payment request (tranche {existing.tranche_number}, {m(existing.amount)}): give a new "
                f"key for a new request",
                [{"idempotency_key": given, "payment_id": request.key}],
            )
        self._require_contracted_for_payment()
        self._no_prefinancing_after_termination(request.tranche_number)
        check_payment(self.payment_state(), request.tranche_number, request.amount)
        self.payments[request.key] = request
        return self._emit(
            "payment_requested",
            {
                "payment_id": request.key,
                "grant_id": self.grant_id,
                "reference": self.reference,
                "tranche_number": request.tranche_number,
                "amount_eur": request.amount,
                "requested_by": request.requested_by,
                "requested_at": request.requested_at,
            },
        )

    def approve_payment(self, key: str, approver: str, approved_at: datetime) -> list[DomainEvent]:
        """Four eyes, then the payment rules again (the grant may have changed since the request)."""
        request = self._payment(key)
        approved = pay.approve(request, approver, approved_at)
        self._require_contracted_for_payment()
        check_payment(self.payment_state(), request.tranche_number, request.amount, ignore_pending=True)
        self.payments[key] = approved
        return []

    def cancel_payment(
        self, key: str, by: str, reason: str, cancelled_at: datetime, *, finance_approver: bool
    ) -> list[DomainEvent]:
        """Withdraw a request awaiting approval (its requester or a finance approver): the tranche is free again."""
        cancelled = pay.cancel(self._payment(key), by, reason, cancelled_at, finance_approver=finance_approver)
        self.payments[key] = cancelled
        return self._emit(
            "payment_cancelled",
            {
                "payment_id": cancelled.key,
                "grant_id": self.grant_id,
                "reference": self.reference,
                "tranche_number": cancelled.tranche_number,
                "amount_eur": cancelled.amount,
                "requested_by": cancelled.requested_by,
                "cancelled_by": cancelled.cancelled_by,
                "reason": cancelled.cancel_reason,
                "cancelled_at": cancelled.cancelled_at,
            },
        )

    def mark_paid(self, key: str, value_date: date, bank_reference: str, *, today: date) -> list[DomainEvent]:
        """The bank paid: on a value date neither before the request nor after `today`."""
        request = self._payment(key)
        check_value_date(a_date(value_date, "value_date"), request.requested_at, today)
        paid = pay.mark_paid(request, value_date, bank_reference)
        self.payments[key] = paid
        return self._emit(
            "tranche_paid",
            {
                "payment_id": paid.key,
                "grant_id": self.grant_id,
                "reference": self.reference,
                "tranche_number": paid.tranche_number,
                "amount_eur": paid.amount,
                "value_date": paid.value_date,
                "bank_reference": paid.bank_reference,
                "approved_by": paid.approved_by or "",
            },
        )

    def _payment(self, key: str) -> PaymentRequest:
        if key not in self.payments:
            raise NotFound("payment", key)
        return self.payments[key]

    def _require_contracted_for_payment(self) -> None:
        if self.status in (GrantStatus.CLOSED, GrantStatus.DECLINED):
            raise Conflict("grant.invalid_state", f"grant {self.grant_id} is {self.status.value}")

    # -------------------------------------------------------------- reports
    def submit_report(
        self,
        report_id: str,
        kind: str,
        number: int,
        expenditure: dict | None,
        submitted_at: datetime,
        lines: list | None = None,
        rates: fx.RateLookup | None = None,
        actuals: list | None = None,
    ) -> list[DomainEvent]:
        """A consortium's interim report n or final report, for the period the contract gives it.

        The expenditure is given in EUR per heading, or as `lines` (each cost with its currency and the date it
        was incurred), converted under the programme's rule with the published `rates`: then the EUR expenditure
        per heading is the sum of the lines' EUR values, each rounded to the cent."""
        if self.status == GrantStatus.AWARDED:
            raise Conflict("report.contract_not_signed", "no report before the contract is signed")
        self._require(GrantStatus.CONTRACTED, GrantStatus.TERMINATED)
        report_id = text(report_id, "report_id", 60)
        report_kind = ReportKind(kind) if kind in {k.value for k in ReportKind} else None
        if report_kind is None:
            raise InvalidInput({"kind": ["must be interim or final"]})
        number = 1 if report_kind == ReportKind.FINAL else number
        periods = self.reporting_periods()
        period = next((p for p in periods if p.kind == report_kind.value and p.number == number), None)
        if period is None:
            raise InvalidInput({"number": [f"the contract has no {report_kind.value} report {number}"]})
        if report_id in self.reports:
            raise Conflict("report.already_submitted", f"report {report_id} already exists")
        live = [
            r for r in self.reports.values() if r.condition == period.condition and r.status != ReportStatus.RETURNED
        ]
        if live:
            raise Conflict("report.already_submitted", f"the {period.condition} is already {live[0].status.value}")
        accepted = {r.condition for r in self.accepted_reports}
        missing = [
            p.condition for p in periods if p.kind == "interim" and p.end < period.end and p.condition not in accepted
        ]
        if missing:
            raise Conflict("report.out_of_order", f"accept {', '.join(missing)} first", [{"missing": missing}])
        aware(submitted_at, "submitted_at")
        if submitted_at.date() < period.end:
            raise Conflict(
                "report.period_not_ended", f"the period of the {period.condition} ends on {period.end.isoformat()}"
            )
        converted: tuple = ()
        if lines is not None:
            if expenditure:
                raise InvalidInput({"lines": ["give the expenditure per heading in EUR or the lines, not both"]})
            converted = tuple(
                fx.convert(
                    fx.expenditure_lines(lines, HEADINGS, period.start, period.end),
                    self.conversion,
                    rates or (lambda *_: None),
                    self.prefinancing_month(),
                )
            )
            expenditure = fx.by_heading(converted)
        elif expenditure is None:
            raise InvalidInput({"expenditure": ["give the expenditure per heading in EUR, or the lines"]})
        reported = tuple(lf.parse_actuals(actuals, self.logframe)) if actuals else ()
        report = FinancialReport(
            report_id,
            self.grant_id,
            report_kind,
            period.number,
            period.start,
            period.end,
            expenditure,
            submitted_at,
            lines=converted,
            actuals=reported,
        )
        self.reports[report_id] = report
        data: dict[str, object] = {
            "report_id": report_id,
            "grant_id": self.grant_id,
            "reference": self.reference,
            "kind": report_kind.value,
            "number": report.number,
            "period_start": period.start,
            "period_end": period.end,
            "expenditure": dict(report.expenditure),
            "total_eur": report.total,
            "submitted_at": submitted_at,
        }
        if converted:
            data["conversion"] = self.conversion.value
            data["lines"] = [asdict(line) for line in converted]
        if reported:
            data["actuals"] = [dict(a) for a in reported]
        return self._emit("report_submitted", data)

    def prefinancing_month(self) -> str | None:
        """The month the first pre-financing was paid (its value date): the ec_prefinancing rule's rate month."""
        first = [t.number for t in self.schedule if t.kind == TrancheKind.PRE_FINANCING]
        paid = [p for p in self.payments.values() if p.status == PaymentStatus.PAID and p.tranche_number in first]
        if not paid:
            return None
        return fx.month(min(paid, key=lambda p: p.tranche_number).value_date)

    def accept_report(self, report_id: str, decided_at: datetime) -> list[DomainEvent]:
        self._require(GrantStatus.CONTRACTED, GrantStatus.TERMINATED)
        report = rep.accept(self._report(report_id), decided_at)
        self.reports[report_id] = report
        return self._decided(report) + self._results(report)

    def _results(self, report: FinancialReport) -> list[DomainEvent]:
        """An accepted report's actual values, each with its indicator as the contract states it now."""
        if not report.actuals:
            return []
        known = lf.indicators(self.logframe)
        return self._emit(
            "results_reported",
            {
                "report_id": report.report_id,
                "grant_id": self.grant_id,
                "reference": self.reference,
                "programme_id": self.programme_id,
                "call_id": self.call_id,
                "window": self.window,
                "country": self.country,
                "kind": report.kind.value,
                "number": report.number,
                "period_start": report.period_start,
                "period_end": report.period_end,
                "results": [
                    {
                        **_indicator_values(known[a["code"]]),
                        "actual_value": a["value"],
                        "comment": a.get("comment") or "",
                    }
                    for a in report.actuals
                    if a["code"] in known
                ],
                "decided_at": report.decided_at,
            },
        )

    def return_report(self, report_id: str, reason: str, decided_at: datetime) -> list[DomainEvent]:
        self._require(GrantStatus.CONTRACTED, GrantStatus.TERMINATED)
        report = rep.return_report(self._report(report_id), reason, decided_at)
        self.reports[report_id] = report
        return self._decided(report)

    def _report(self, report_id: str) -> FinancialReport:
        if report_id not in self.reports:
            raise NotFound("report", report_id)
        return self.reports[report_id]

    def _decided(self, report: FinancialReport) -> list[DomainEvent]:
        return self._emit(
            "report_accepted",
            {
                "report_id": report.report_id,
                "grant_id": self.grant_id,
                "reference": self.reference,
                "kind": report.kind.value,
                "number": report.number,
                "outcome": report.status.value,
                "reason": report.reason,
                "expenditure": dict(report.expenditure),
                "total_eur": report.total,
                "decided_at": report.decided_at,
            },
        )

    # ----------------------------------------------------------- amendments
    def reallocate(
        self, reallocation_id: str, new_budget: dict, call_limits: CallLimits, reason: str = ""
    ) -> list[DomainEvent]:
        """Move money between headings without an amendment (within 15% of each heading as contracted and within
        the call's caps)."""
        self._require(GrantStatus.CONTRACTED)
        if not self.contract_budget:
            raise Conflict("reallocation.no_budget", "the grant has no Annex III budget to reallocate")
        check_reallocation(self.contract_budget, new_budget, call_limits.caps)
        self.budget = normalise_budget(new_budget)
        return self._amended(text(reallocation_id, "reallocation_id", 60), "reallocation", reason)

    def amend(
        self,
        amendment: Amendment,
        call_limits: CallLimits,
        window_budget: WindowBudget,
        programme_budget: ProgrammeBudget,
    ) -> list[DomainEvent]:
        self._require(GrantStatus.CONTRACTED)
        self._same_window(window_budget)
        if any(p.pending for p in self.payments.values()):
            raise Conflict("amendment.payment_pending", "decide the pending payment request before amending")
        amount, duration, budget = self.amount, self.duration_months, self.budget
        annual = self.annual_budgets
        logframe = self.logframe
        if amendment.kind == AmendmentKind.TARGETS:
            if not self.logframe:
                raise Conflict(
                    "amendment.no_logframe", f"grant {self.reference} has no logframe whose targets could change"
                )
            logframe = lf.change_targets(self.logframe, amendment.new_targets)
        if amendment.new_budget is not None:
            budget = amendment.new_budget
            check_caps(budget, call_limits.caps)
        if amendment.kind == AmendmentKind.DURATION:
            assert amendment.new_duration_months is not None  # an Amendment of this kind requires it
            duration = amendment.new_duration_months
            if call_limits.max_duration_months and duration > call_limits.max_duration_months:
                raise Conflict(
                    "amendment.above_max_duration",
                    f"{duration} months is above the call's {call_limits.max_duration_months}",
                )
            self.calendar.check_end(period_end(self.contract_start, duration), "amendment.ends_after_programme")
            annual = amendment.new_annual_budgets
        if amendment.kind == AmendmentKind.AMOUNT:
            assert amendment.new_amount is not None  # an Amendment of this kind requires it
            amount = amendment.new_amount
            check_amendment_amount(self.amount, amount, self.paid_total, call_limits, window_budget, programme_budget)
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
        self.logframe = logframe
        self.amendments.append(amendment)
        return self._amended(amendment.amendment_id, amendment.kind.value, amendment.reason)

    def _reschedule(self, amount: Decimal, duration: int, annual) -> list[Tranche]:
        if (amount, duration, annual) == (self.amount, self.duration_months, self.annual_budgets):
            return self.schedule
        if duration != self.duration_months:
            live = [r for r in self.reports.values() if r.status != ReportStatus.RETURNED]
            conditions = {p.condition for p in reporting_periods(self.contract_start, duration)}
            orphan = [r.condition for r in live if r.kind == ReportKind.FINAL or r.condition not in conditions]
            if orphan:
                raise Conflict(
                    "amendment.conflicts_with_reports",
                    "the new duration does not fit the reports already submitted",
                    [{"reports": orphan}],
                )
        schedule = compute_schedule(self.profile, amount, duration, annual, self.contract_start)
        paid = self.paid
        new_kinds = {t.number: t.kind for t in schedule}
        old_kinds = {t.number: t.kind for t in self.schedule}
        if any(new_kinds.get(n) != old_kinds[n] for n in paid):
            raise Conflict(
                "amendment.conflicts_with_payments",
                "the new schedule does not keep the tranches already paid",
                [{"paid_tranches": sorted(paid)}],
            )
        if amount < sum(paid.values(), ZERO):
            raise Conflict("amendment.below_paid", f"{m(amount)} is below what is already paid")
        return fit_to_award(schedule, amount, fixed=paid)

    def _amended(self, amendment_id: str, kind: str, reason: str) -> list[DomainEvent]:
        return self._emit(
            "grant_amended",
            {
                "grant_id": self.grant_id,
                "reference": self.reference,
                "amendment_id": amendment_id,
                "kind": kind,
                "amount_eur": self.amount,
                "duration_months": self.duration_months,
                "budget": dict(self.budget),
                "reason": reason or "",
            },
        )

    # ---------------------------------------------------------- termination
    def reporting_periods(self) -> list[ReportingPeriod]:
        """The reports the contract asks for: every period of the action, or after an early termination the
        accepted interim reports and one final report up to the effective date."""
        start = self.contract_start
        periods = reporting_periods(start, self.duration_months)
        if self.termination is None:
            return periods
        return periods_after_termination(
            periods, {r.condition for r in self.accepted_reports}, self.termination.effective_date, start
        )

    def terminate(
        self, effective_date: date, reason: str, terminated_by: str, terminated_at: datetime, *, signed_by: str | None
    ) -> list[DomainEvent]:
        """End the action early (domain/termination.py): the grant then owes its final report up to the effective
        date; closure computes the final amount and decommits the rest. Moves no money by itself."""
        if self.status == GrantStatus.TERMINATED:
            raise Conflict(
                "termination.already_terminated",
                f"grant {self.grant_id} was already terminated on "
                f"{self.termination.effective_date if self.termination else '?'}",
            )
        if self.status == GrantStatus.AWARDED:
            raise Conflict(
                "termination.contract_not_signed",
                f"grant {self.grant_id} has no contract yet: the consortium declines it instead (decline_grant)",
            )
        self._require(GrantStatus.CONTRACTED)
        accepted = {r.condition for r in self.accepted_reports}
        reported = [
            p.end
            for p in reporting_periods(self.contract_start, self.duration_months)
            if p.kind == "interim" and p.condition in accepted
        ]
        termination = check_termination(
            effective_date=effective_date,
            reason=reason,
            terminated_by=terminated_by,
            terminated_at=terminated_at,
            start_date=self.contract_start,
            end_date=period_end(self.contract_start, self.duration_months),
            today=aware(terminated_at, "terminated_at").date(),
            signed_by=signed_by,
            reported_until=max(reported) if reported else None,
            programme_start=self.calendar.programme_start,
            programme_end=self.calendar.programme_end,
            pending_payments=sorted(p.key for p in self.payments.values() if p.pending),
            pending_reports=sorted(r.report_id for r in self.reports.values() if r.status == ReportStatus.SUBMITTED),
        )
        self.termination, self.status = termination, GrantStatus.TERMINATED
        final = self.reporting_periods()[-1]
        return self._emit(
            "grant_terminated",
            {
                "grant_id": self.grant_id,
                "reference": self.reference,
                "effective_date": termination.effective_date,
                "reason": termination.reason,
                "terminated_by": termination.terminated_by,
                "terminated_at": termination.terminated_at,
                "amount_eur": self.amount,
                "paid_eur": self.paid_total,
                "final_report_period_start": final.start,
                "final_report_due": final.due_date,
            },
        )

    def _payable_schedule(self) -> tuple:
        """After termination only the tranches paid and the balance remain (no further pre-financing)."""
        if self.status != GrantStatus.TERMINATED:
            return tuple(self.schedule)
        paid = self.paid
        return tuple(t for t in self.schedule if t.number in paid or t.kind == TrancheKind.BALANCE)

    def _no_prefinancing_after_termination(self, tranche_number: int) -> None:
        if self.status != GrantStatus.TERMINATED:
            return
        tranche = self.tranche(tranche_number)
        if tranche.kind != TrancheKind.BALANCE and tranche_number not in self.paid:
            raise Conflict(
                "termination.no_further_prefinancing",
                f"grant {self.grant_id} was terminated on "
                f"{self.termination.effective_date if self.termination else '?'}: only the balance (after the final report) is paid",
                [{"tranche_number": tranche_number}],
            )

    # -------------------------------------------------------------- closure
    @property
    def decommitted(self) -> Decimal:
        return self.closure.decommitted if self.closure is not None else ZERO

    @property
    def committed(self) -> Decimal:
        return committed_amount(self.amount, self.decommitted, self.status == GrantStatus.DECLINED)

    def close(
        self,
        closed_at: datetime,
        window_budget: WindowBudget,
        programme_budget: ProgrammeBudget,
        *,
        decommitment_id: str,
    ) -> list[DomainEvent]:
        """Close after the accepted final report: once the final payment is made, or with a recovery order.

        The commitment is reduced to the final amount; what the award keeps above it is decommitted and returns
        to the window and the programme (grant_decommitted after grant_closed, in the same transaction).
        A terminated grant closes the same way, on its final report up to the effective date."""
        self._require(GrantStatus.CONTRACTED, GrantStatus.TERMINATED)
        self._same_window(window_budget)
        aware(closed_at, "closed_at")
        if "final_report" not in {r.condition for r in self.accepted_reports}:
            raise Conflict("closure.final_report_required", "the final report must be accepted first")
        if any(p.pending for p in self.payments.values()):
            raise Conflict("closure.payment_pending", "a payment request is still pending")
        closure = close_grant(self.amount, self.paid_total, self.accepted_expenditure, self.ec_share)
        balance = next((t for t in self.schedule if t.kind == TrancheKind.BALANCE), None)
        if (
            closure.kind == ClosureKind.FINAL_PAYMENT
            and closure.final_payment > 0
            and balance is not None
            and balance.number not in self.paid
        ):
            raise Conflict(
                "closure.final_payment_pending",
                f"pay the balance of {m(closure.final_payment)} (tranche {balance.number}) first",
                [{"final_payment": m(closure.final_payment)}],
            )
        decommitment_id = text(decommitment_id, "decommitment_id", 60)
        if closure.decommitted > 0:
            window_budget.release(closure.decommitted)
            programme_budget.release(closure.decommitted)
        self.closure, self.status = closure, GrantStatus.CLOSED
        events = self._emit(
            "grant_closed",
            {
                "grant_id": self.grant_id,
                "reference": self.reference,
                "kind": closure.kind.value,
                "paid_eur": self.paid_total,
                "accepted_expenditure_eur": self.accepted_expenditure,
                "recovery_eur": closure.recovery_amount,
                "closed_at": closed_at,
            },
        )
        if closure.decommitted > 0:
            events += self._emit(
                "grant_decommitted",
                {
                    "decommitment_id": decommitment_id,
                    "grant_id": self.grant_id,
                    "reference": self.reference,
                    "amount_eur": closure.decommitted,
                    "committed_before_eur": self.amount,
                    "committed_after_eur": closure.eligible_amount,
                    "reason": self.decommitment_reason(),
                    "decommitted_at": closed_at,
                },
            )
        return events

    def decommitment_reason(self) -> str:
        """Why closure gave money back, in the figures that decided it (the audit trail and the EC report)."""
        closure = self.closure
        if closure is None or closure.decommitted <= 0:
            return ""
        share = (self.ec_share * 100).quantize(Decimal("0.01"))
        how = (
            "Closure"
            if self.termination is None
            else f"Closure after early termination on {self.termination.effective_date.isoformat()}"
        )
        return (
            f"{how}: final amount {m(closure.eligible_amount)} (EC share {share}% of accepted eligible "
            f"costs {m(self.accepted_expenditure)}, capped by the award) below the award {m(self.amount)}; "
            f"{m(closure.decommitted)} unspent decommitted"
        )

    # -------------------------------------------------------------- helpers
    def _require(self, *statuses: GrantStatus) -> None:
        if self.status not in statuses:
            raise Conflict(
                "grant.invalid_state",
                f"grant {self.grant_id} is {self.status.value}, not {' or '.join(s.value for s in statuses)}",
            )

    def _same_window(self, window_budget: WindowBudget) -> None:
        if window_budget.window != self.window:
            raise InvalidInput(
                {"window": [f"grant {self.grant_id} is in window {self.window}, not {window_budget.window}"]}
            )

    def _emit(self, event_type: str, data: dict) -> list[DomainEvent]:
        return [DomainEvent(event_type, data)]
