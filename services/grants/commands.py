"""Use cases of the grants service: keep copies from the calls events; award, contract, pay, report, amend and
close grants. Each one loads (locking what it changes), calls the pure domain, stores, emits."""
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.common.db import UnitOfWork
from services.common.errors import Conflict, NotFound
from services.grants import domain

from . import repository as repo
from .models import (AmendmentRow, CallCopy, Evaluation, GrantRow, OrganisationRow, PaymentRow, ProgrammeBudget,
                     ProposalCopy, RankingCopy, ReportRow, Screening, WindowBudget, Withdrawal)
from .views import (grant_summary, grant_view, organisation_view, payment_view, proposal_decision_view,
                    report_view)

# a payment's id is derived from the client's idempotency key: a retried request finds the same payment
PAYMENT_NAMESPACE = uuid.UUID("8f0b7a52-5c1e-4a59-9f3e-2d7f3c1e6a01")
ZERO = Decimal("0.00")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _user(uow: UnitOfWork) -> str:
    return uow.identity.user


# --- copies kept from the calls service's events -------------------------------------------------------------

def record_call(uow: UnitOfWork, data: dict, occurred_at: datetime):
    session = uow.session
    if session.get(ProgrammeBudget, data["programme_id"]) is None:
        session.add(ProgrammeBudget(programme_id=data["programme_id"], envelope=data["envelope_eur"], committed=0))
        session.flush()
    if session.get(CallCopy, data["call_id"]) is not None:
        return
    session.add(CallCopy(call_id=data["call_id"], programme_id=data["programme_id"], title=data["title"],
                         rule_profile=data["rule_profile"], min_grant=data["min_grant_eur"],
                         max_grant=data["max_grant_eur"], max_ec_share=data["max_ec_share"], opened_at=occurred_at))
    session.flush()
    for window in data["windows"]:
        session.add(WindowBudget(call_id=data["call_id"], window=window["window"], name=window["name"],
                                 allocation=window["allocation_eur"], committed=0))


def record_proposal(uow: UnitOfWork, data: dict):
    if uow.session.get(ProposalCopy, data["proposal_id"]) is not None:
        return
    if uow.session.get(CallCopy, data["call_id"]) is None:
        # call_opened always precedes submissions; until it arrives this proposal cannot be budgeted:
        # fail, so the kit retries and finally keeps it as a dead letter to replay
        raise Conflict("proposal.unknown_call", f"call {data['call_id']} has not been opened here")
    lead = next((a for a in data["applicants"] if a["role"] == "lead"), data["applicants"][0])
    uow.session.add(ProposalCopy(
        proposal_id=data["proposal_id"], reference=data["reference"], call_id=data["call_id"],
        programme_id=data["programme_id"], window=data["window"], country=data["target_country"],
        applicant_type=data["applicant_type"], lead_organisation=data["lead_organisation"],
        lead_registration_number=lead["registration_number"], lead_country=lead["country"], title=data["title"],
        duration_months=data["duration_months"], ec_amount_requested=data["ec_amount_requested_eur"],
        budget={k: str(v) for k, v in data["budget"].items()}, status="submitted",
        submitted_at=data["submitted_at"]))


def record_withdrawal(uow: UnitOfWork, data: dict):
    if uow.session.get(Withdrawal, data["proposal_id"]) is None:
        uow.session.add(Withdrawal(proposal_id=data["proposal_id"], reason=data["reason"],
                                   withdrawn_at=data["withdrawn_at"]))


def record_screening(uow: UnitOfWork, data: dict, occurred_at: datetime):
    """Keep the latest outcome (flagged, then cleared or excluded, may arrive in any order)."""
    row = uow.session.get(Screening, data["proposal_id"])
    if row is None:
        uow.session.add(Screening(proposal_id=data["proposal_id"], outcome=data["outcome"], occurred_at=occurred_at))
    elif row.occurred_at <= occurred_at:
        row.outcome, row.occurred_at = data["outcome"], occurred_at


def record_evaluation(uow: UnitOfWork, data: dict, occurred_at: datetime):
    row = uow.session.get(Evaluation, (data["proposal_id"], data["stage"]))
    if row is None:
        row = Evaluation(proposal_id=data["proposal_id"], stage=data["stage"], occurred_at=occurred_at)
        uow.session.add(row)
    elif row.occurred_at > occurred_at:
        return
    row.score, row.max_score, row.threshold = data["score"], data["max_score"], data["threshold"]
    row.passed, row.occurred_at = data["passed"], occurred_at


def record_ranking(uow: UnitOfWork, event):
    """The latest published ranking of a call window replaces an earlier one."""
    data = event.body["data"]  # the wire form: entries keep their decimal strings
    row = uow.session.get(RankingCopy, (data["call_id"], data["window"]))
    published_at = event.data["published_at"]
    if row is None:
        row = RankingCopy(call_id=data["call_id"], window=data["window"], published_at=published_at)
        uow.session.add(row)
    elif row.published_at > published_at:
        return
    row.threshold, row.main, row.reserve = event.data["threshold"], data["main"], data["reserve"]
    row.excluded, row.published_at = event.data["excluded"], published_at


# --- the steering committee's decisions -----------------------------------------------------------------------

def award_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    proposal_row = repo.lock_proposal(session, data["proposal_id"])
    call = session.get(CallCopy, proposal_row.call_id)
    budgets = repo.lock_budgets(session, call.programme_id, call.call_id, proposal_row.window)
    # read after the budget locks: a concurrent award or decline in this window has committed by now
    ranking = repo.ranking_of(session, call.call_id, proposal_row.window)
    proposal = repo.proposal_copy(session, proposal_row, ranking)
    reserve = repo.reserve_places(session, ranking) if ranking is not None else None
    grant, events = domain.Grant.award(
        str(uuid.uuid4()), proposal, data["amount_eur"], repo.call_limits(call), budgets.window, budgets.programme,
        decision_reference=data["decision_reference"], decision_date=data["decision_date"], awarded_at=now,
        profile=call.rule_profile, reserve=reserve)
    budgets.store()
    proposal_row.status, proposal_row.decision_reference = "awarded", data["decision_reference"]
    row = repo.new_grant_row(grant, proposal_row, proposal.ranking.value, call.rule_profile,
                             data["decision_reference"], data["decision_date"], now)
    session.add(row)
    record = repo.GrantRecord(row, grant)
    repo.save(session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return grant_view(record)


def reject_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    row = repo.lock_proposal(session, data["proposal_id"])
    events = domain.reject_proposal(repo.proposal_copy(session, row, None), data["reasons"],
                                    data["decision_reference"])
    row.status, row.rejection_reasons = "rejected", events[0].data["reasons"]
    row.decision_reference = data["decision_reference"] or None
    repo.emit(uow, events, now)
    return proposal_decision_view(row)


def decline_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """The consortium declines: the commitment returns to the window, which opens a place on the reserve list."""
    session = uow.session
    record = repo.lock_grant(session, data["grant_id"])
    row = record.row
    budgets = repo.lock_budgets(session, row.programme_id, row.call_id, row.window)
    events = record.grant.decline(data["reason"], now, budgets.window, budgets.programme)
    budgets.store()
    repo.save(session, record, _user(uow), now)
    repo.emit(uow, events, now)
    ranking = repo.ranking_of(session, row.call_id, row.window)
    following = repo.reserve_places(session, ranking).next_in_line if ranking is not None else None
    return {**grant_view(record), "next_reserve_proposal_id": following}


# --- the organisation register --------------------------------------------------------------------------------

def register_organisation(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    org = domain.Organisation(data["legal_name"], data["registration_number"], data["country"], data["iban"],
                              data["signatory"], data["bic"])
    existing = session.execute(select(OrganisationRow).where(
        OrganisationRow.country == org.country,
        OrganisationRow.registration_number == org.registration_number)).scalar_one_or_none()
    if existing is not None:
        if _identity_of(repo.organisation(existing)) == _identity_of(org):
            return organisation_view(existing)  # the same registration again (a retry)
        raise Conflict("organisation.already_registered", f"{org.country} {org.registration_number} is registered "
                       f"as {existing.id}", [{"organisation_id": existing.id}])
    row = OrganisationRow(id=str(uuid.uuid4()), legal_name=org.legal_name,
                          registration_number=org.registration_number, country=org.country,
                          signatory=org.signatory, iban=org.iban, bic=org.bic, account_validated=False,
                          registered_by=_user(uow), registered_at=now)
    session.add(row)
    _flush_unique(session, "organisation.already_registered",
                  f"{org.country} {org.registration_number} was registered at the same time")
    uow.audit("grants.register_organisation", f"organisation:{row.id}", organisation_view(row))
    return organisation_view(row)


def _identity_of(org: domain.Organisation) -> tuple:
    return org.legal_name, org.registration_number, org.country, org.iban, org.signatory, org.bic


def validate_bank_account(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """A finance approver confirms the account they checked (the IBAN must be the registered one) — never the
    person who registered it."""
    row = repo.lock_organisation(uow.session, data["organisation_id"])
    iban = domain.validate_iban(data["iban"])
    if row.iban != iban:
        raise Conflict("organisation.iban_mismatch", "the IBAN checked is not the one registered",
                       [{"registered": domain.format_iban(row.iban) if row.iban else None}])
    if row.account_validated:
        return organisation_view(row)
    if row.registered_by == _user(uow):
        raise Conflict("organisation.four_eyes", f"{row.registered_by} registered this organisation and may not "
                       "validate its bank account")
    validated = repo.organisation(row).validate_account()
    row.account_validated, row.validated_by, row.validated_at = validated.account_validated, _user(uow), now
    uow.audit("grants.validate_bank_account", f"organisation:{row.id}", {"iban": row.iban})
    return organisation_view(row)


def list_organisations(uow: UnitOfWork, data: dict) -> list[dict]:
    query = select(OrganisationRow).order_by(OrganisationRow.legal_name).limit(data["limit"])
    for column, key in ((OrganisationRow.country, "country"),
                        (OrganisationRow.registration_number, "registration_number")):
        if data[key]:
            query = query.where(column == data[key])
    return [organisation_view(row) for row in uow.session.execute(query).scalars()]


# --- the contract ---------------------------------------------------------------------------------------------

def sign_contract(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    record = repo.lock_grant(session, data["grant_id"])
    org_row = session.get(OrganisationRow, data["organisation_id"])
    if org_row is None:
        raise NotFound("organisation", data["organisation_id"])
    lead = (record.row.lead_country, record.row.lead_registration_number)
    if (org_row.country, org_row.registration_number) != lead:
        raise Conflict("contract.organisation_not_lead", f"the contract is signed with the lead applicant "
                       f"({' '.join(lead)}), not {org_row.legal_name}")
    events = record.grant.sign_contract(repo.organisation(org_row), data["start_date"], now, data["annual_budgets"],
                                        data["duration_months"])
    record.row.organisation_id, record.row.signed_at, record.organisation = org_row.id, now, org_row
    repo.save(session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return grant_view(record)


# --- payments -------------------------------------------------------------------------------------------------

def request_payment(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    key = data["idempotency_key"]
    payment_id = str(uuid.uuid5(PAYMENT_NAMESPACE, key))
    earlier = session.get(PaymentRow, payment_id)
    if earlier is not None and earlier.grant_id != data["grant_id"]:
        raise Conflict("payment.key_reused", f"key {key} was used for a payment of another grant")
    # the grant lock queues concurrent requests of this grant: a duplicate then finds the first one
    record = repo.lock_grant(session, data["grant_id"])
    events = record.grant.request_payment(payment_id, data["tranche_number"], data["amount_eur"], _user(uow), now)
    if events:  # none when this is a retry of the same request
        repo.save(session, record, _user(uow), now, idempotency_keys={payment_id: key})
        _flush_unique(session, "payment.key_reused", f"key {key} was used at the same time for another grant")
        repo.emit(uow, events, now)
    return payment_view(record.payments[payment_id])


def approve_payment(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Four eyes on the caller's identity, the payment rules again, then the payment (tranche_paid)."""
    session = uow.session
    payment = session.get(PaymentRow, data["payment_id"])
    if payment is None:
        raise NotFound("payment", data["payment_id"])
    record = repo.lock_grant(session, payment.grant_id)
    payment = record.payments[data["payment_id"]]
    if payment.status == "paid" and (payment.approved_by, payment.value_date, payment.bank_reference) == \
            (_user(uow), data["value_date"], data["bank_reference"]):
        return payment_view(payment)  # the same approval again (a retry): paid once
    grant = record.grant
    grant.approve_payment(payment.id, _user(uow), now)
    events = grant.mark_paid(payment.id, data["value_date"], data["bank_reference"])
    repo.save(session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return payment_view(payment)


def list_payments(uow: UnitOfWork, data: dict) -> list[dict]:
    query = select(PaymentRow).order_by(PaymentRow.requested_at).limit(data["limit"])
    for column, key in ((PaymentRow.grant_id, "grant_id"), (PaymentRow.status, "status")):
        if data[key]:
            query = query.where(column == data[key])
    return [payment_view(row) for row in uow.session.execute(query).scalars()]


# --- reports --------------------------------------------------------------------------------------------------

def submit_report(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    record = repo.lock_grant(uow.session, data["grant_id"])
    report_id = str(uuid.uuid4())
    events = record.grant.submit_report(report_id, data["kind"], data["number"], data["expenditure"], now)
    repo.save(uow.session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return report_view(record.reports[report_id])


def decide_report(uow: UnitOfWork, data: dict, now: datetime, accepted: bool) -> dict:
    report = uow.session.get(ReportRow, data["report_id"])
    if report is None:
        raise NotFound("report", data["report_id"])
    record = repo.lock_grant(uow.session, report.grant_id)
    if accepted:
        events = record.grant.accept_report(report.id, now)
    else:
        events = record.grant.return_report(report.id, data["reason"], now)
    repo.save(uow.session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return report_view(record.reports[report.id])


# --- reallocations and amendments -----------------------------------------------------------------------------

def reallocate_budget(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    record = repo.lock_grant(uow.session, data["grant_id"])
    events = record.grant.reallocate(str(uuid.uuid4()), data["new_budget"], data["reason"])
    return _amended(uow, record, events, now)


def amend_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    record = repo.lock_grant(session, data["grant_id"])
    row = record.row
    budgets = repo.lock_budgets(session, row.programme_id, row.call_id, row.window)
    amendment = domain.Amendment(str(uuid.uuid4()), data["kind"], data["reason"], data["new_budget"],
                                 data["new_duration_months"], data["new_amount_eur"],
                                 tuple(data["new_annual_budgets"]) if data["new_annual_budgets"] else None)
    events = record.grant.amend(amendment, repo.call_limits(session.get(CallCopy, row.call_id)), budgets.window,
                                budgets.programme)
    budgets.store()
    return _amended(uow, record, events, now)


def _amended(uow: UnitOfWork, record, events, now: datetime) -> dict:
    repo.save(uow.session, record, _user(uow), now)
    change = events[0].data
    uow.session.add(AmendmentRow(id=change["amendment_id"], grant_id=record.row.id, kind=change["kind"],
                                 reason=change["reason"], amount=record.grant.amount,
                                 duration_months=record.grant.duration_months, budget=change["budget"],
                                 decided_by=_user(uow), decided_at=now))
    repo.emit(uow, events, now)
    return {**grant_view(record), "amendment_id": change["amendment_id"]}


# --- closure --------------------------------------------------------------------------------------------------

def close_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    record = repo.lock_grant(uow.session, data["grant_id"])
    events = record.grant.close(now)
    repo.save(uow.session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return grant_view(record)


# --- reads ----------------------------------------------------------------------------------------------------

def get_grant(uow: UnitOfWork, grant_id: str) -> dict:
    return grant_view(repo.get_grant(uow.session, grant_id))


def list_grants(uow: UnitOfWork, data: dict) -> list[dict]:
    query = select(GrantRow).order_by(GrantRow.reference).limit(data["limit"])
    for column, key in ((GrantRow.programme_id, "programme_id"), (GrantRow.call_id, "call_id"),
                        (GrantRow.window, "window"), (GrantRow.country, "country"), (GrantRow.status, "status")):
        if data[key]:
            query = query.where(column == data[key])
    return [grant_summary(row) for row in uow.session.execute(query).scalars()]


def ledger(uow: UnitOfWork, programme_id: str | None = None) -> dict:
    """Committed and paid per grant: what the reporting service must agree with, to the cent. A declined
    grant commits nothing; a grant closed with a recovery order shows what is to be recovered."""
    query = select(GrantRow).order_by(GrantRow.reference)
    if programme_id:
        query = query.where(GrantRow.programme_id == programme_id)
    grants = uow.session.execute(query).scalars()
    return {"grants": [{"grant_id": g.id, "reference": g.reference, "programme_id": g.programme_id,
                        "call_id": g.call_id, "window": g.window, "country": g.country, "status": g.status,
                        "committed_eur": g.amount if g.status != "declined" else ZERO, "paid_eur": g.paid,
                        "recovery_eur": g.recovery or ZERO} for g in grants]}


def _flush_unique(session, rule: str, reason: str):
    """A unique constraint met by a concurrent transaction is a refused rule, not an internal error."""
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(rule, reason) from None
