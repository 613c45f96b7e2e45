"""Use cases of the grants service: keep copies from the calls events; award and pay within the budget."""
import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from services.common.db import UnitOfWork
from services.common.errors import Conflict, NotFound

from .models import CallCopy, GrantRow, PaymentRow, ProgrammeBudget, ProposalCopy, WindowBudget


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --- copies kept from the calls service's events -------------------------------------------------------------

def record_call(uow: UnitOfWork, data: dict):
    session = uow.session
    if session.get(ProgrammeBudget, data["programme_id"]) is None:
        session.add(ProgrammeBudget(programme_id=data["programme_id"], envelope=data["envelope_eur"], committed=0))
        session.flush()
    if session.get(CallCopy, data["call_id"]) is not None:
        return
    session.add(CallCopy(call_id=data["call_id"], programme_id=data["programme_id"], rule_profile=data["rule_profile"],
                         min_grant=data["min_grant_eur"], max_grant=data["max_grant_eur"], status="open"))
    session.flush()
    for window in data["windows"]:
        session.add(WindowBudget(call_id=data["call_id"], window=window["window"],
                                 allocation=window["allocation_eur"], committed=0))


def record_proposal(uow: UnitOfWork, data: dict):
    if uow.session.get(ProposalCopy, data["proposal_id"]) is not None:
        return
    if uow.session.get(CallCopy, data["call_id"]) is None:
        # call_opened always precedes submissions; until it arrives this proposal cannot be budgeted:
        # fail, so the kit retries and finally keeps it as a dead letter to replay
        raise Conflict("proposal.unknown_call", f"call {data['call_id']} has not been opened here")
    uow.session.add(ProposalCopy(
        proposal_id=data["proposal_id"], reference=data["reference"], call_id=data["call_id"], window=data["window"],
        country=data["target_country"], applicant_type=data["applicant_type"],
        lead_organisation=data["lead_organisation"], title=data["title"], duration_months=data["duration_months"],
        ec_amount_requested=data["ec_amount_requested_eur"],
        budget={k: str(v) for k, v in data["budget"].items()}, status="submitted"))


# --- awards ---------------------------------------------------------------------------------------------------

def award_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    proposal = session.execute(select(ProposalCopy).where(ProposalCopy.proposal_id == data["proposal_id"])
                               .with_for_update()).scalar_one_or_none()
    if proposal is None:
        raise NotFound("proposal", data["proposal_id"])
    if proposal.status != "submitted":
        raise Conflict("award.not_awardable", f"proposal {proposal.reference} is {proposal.status}")
    call = session.get(CallCopy, proposal.call_id)
    amount = data["amount_eur"]
    if amount < call.min_grant:
        raise Conflict("award.below_min", f"{amount} is below the call minimum {call.min_grant}")
    if amount > call.max_grant:
        raise Conflict("award.above_max", f"{amount} is above the call maximum {call.max_grant}")
    if amount > proposal.ec_amount_requested:
        raise Conflict("award.above_requested", f"{amount} is above the {proposal.ec_amount_requested} requested")
    # lock order programme -> window everywhere, so concurrent awards queue instead of deadlocking
    programme = session.execute(select(ProgrammeBudget).where(ProgrammeBudget.programme_id == call.programme_id)
                                .with_for_update()).scalar_one()
    window = session.execute(select(WindowBudget).where(WindowBudget.call_id == call.call_id,
                                                        WindowBudget.window == proposal.window)
                             .with_for_update()).scalar_one()
    if window.committed + amount > window.allocation:
        raise Conflict("award.window_allocation_exceeded",
                       f"window {window.window} has {window.allocation - window.committed} left, {amount} asked")
    if programme.committed + amount > programme.envelope:
        raise Conflict("award.programme_contribution_exceeded",
                       f"programme has {programme.envelope - programme.committed} left, {amount} asked")
    window.committed += amount
    programme.committed += amount
    proposal.status = "awarded"
    grant = GrantRow(id=str(uuid.uuid4()), proposal_id=proposal.proposal_id, reference=proposal.reference,
                     call_id=call.call_id, window=proposal.window, country=proposal.country, amount=amount, paid=0,
                     status="awarded", decision_reference=data["decision_reference"],
                     decision_date=data["decision_date"], awarded_at=now)
    session.add(grant)
    uow.emit("grant_awarded", {
        "grant_id": grant.id, "proposal_id": proposal.proposal_id, "reference": proposal.reference,
        "call_id": call.call_id, "programme_id": call.programme_id, "window": proposal.window,
        "country": proposal.country, "applicant_type": proposal.applicant_type,
        "lead_organisation": proposal.lead_organisation, "title": proposal.title, "amount_eur": amount,
        "budget": proposal.budget, "decision_reference": grant.decision_reference,
        "decision_date": grant.decision_date, "awarded_at": now,
    }, occurred_at=now)
    return grant_view(grant)


# --- payments -------------------------------------------------------------------------------------------------

def pay_tranche(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    existing = session.execute(select(PaymentRow).where(PaymentRow.idempotency_key == data["idempotency_key"])
                               ).scalar_one_or_none()
    if existing is not None:
        return payment_view(existing)  # a retried request never pays twice
    grant = session.execute(select(GrantRow).where(GrantRow.id == data["grant_id"]).with_for_update()
                            ).scalar_one_or_none()
    if grant is None:
        raise NotFound("grant", data["grant_id"])
    if grant.status not in ("awarded", "contracted"):
        raise Conflict("payment.grant_not_payable", f"grant is {grant.status}")
    amount = data["amount_eur"]
    if amount <= 0:
        raise Conflict("payment.not_positive", "a tranche must be a positive amount")
    if grant.paid + amount > grant.amount:
        raise Conflict("payment.exceeds_award", f"{grant.amount - grant.paid} left of the award, {amount} asked")
    if session.execute(select(PaymentRow.id).where(PaymentRow.grant_id == grant.id,
                                                   PaymentRow.tranche_number == data["tranche_number"])).first():
        raise Conflict("payment.already_paid", f"tranche {data['tranche_number']} is already paid")
    payment = PaymentRow(id=str(uuid.uuid4()), grant_id=grant.id, idempotency_key=data["idempotency_key"],
                         tranche_number=data["tranche_number"], amount=amount, status="paid",
                         value_date=data["value_date"], bank_reference=data["bank_reference"], paid_at=now)
    grant.paid += amount
    session.add(payment)
    uow.emit("tranche_paid", {
        "payment_id": payment.id, "grant_id": grant.id, "reference": grant.reference,
        "tranche_number": payment.tranche_number, "amount_eur": amount, "value_date": payment.value_date,
        "bank_reference": payment.bank_reference, "approved_by": uow.identity.user if uow.identity else "",
    }, occurred_at=now)
    return payment_view(payment)


def get_grant(uow: UnitOfWork, grant_id: str) -> dict:
    grant = uow.session.get(GrantRow, grant_id)
    if grant is None:
        raise NotFound("grant", grant_id)
    return grant_view(grant)


def ledger(uow: UnitOfWork) -> dict:
    """Committed and paid per grant: what the reporting service must agree with, to the cent."""
    grants = uow.session.execute(select(GrantRow).order_by(GrantRow.reference)).scalars()
    return {"grants": [{"grant_id": g.id, "reference": g.reference, "window": g.window, "country": g.country,
                        "status": g.status, "committed_eur": g.amount if g.status != "declined" else 0,
                        "paid_eur": g.paid} for g in grants]}


def grant_view(grant: GrantRow) -> dict:
    return {"grant_id": grant.id, "proposal_id": grant.proposal_id, "reference": grant.reference,
            "window": grant.window, "country": grant.country, "amount_eur": grant.amount, "paid_eur": grant.paid,
            "status": grant.status, "decision_reference": grant.decision_reference,
            "decision_date": grant.decision_date}


def payment_view(payment: PaymentRow) -> dict:
    return {"payment_id": payment.id, "grant_id": payment.grant_id, "tranche_number": payment.tranche_number,
            "amount_eur": payment.amount, "status": payment.status, "value_date": payment.value_date,
            "bank_reference": payment.bank_reference}
