"""Use cases of the grants service: keep copies from the calls events; award, contract, pay, report, amend and
close grants. Each one loads (locking what it changes), calls the pure domain, stores, emits."""

import uuid
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.common.security.identity import require_second_person
from services.common.security.roles import FINANCE_APPROVER
from services.common.storage.db import UnitOfWork
from services.common.values.errors import Conflict, NotFound
from services.grants import domain

from . import repository as repo
from .models import (
    AmendmentRow,
    CallCopy,
    DecommitmentRow,
    ExchangeRateRow,
    Evaluation,
    GrantRow,
    OrganisationRow,
    PaymentRow,
    PendingAmendmentRow,
    ProgrammeBudget,
    ProposalCopy,
    RankingCopy,
    ReportRow,
    Screening,
    WindowBudget,
    Withdrawal,
)
from .views import (
    committed,
    grant_summary,
    grant_view,
    organisation_view,
    payment_view,
    proposal_decision_view,
    report_view,
)

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
    session.add(
        CallCopy(
            call_id=data["call_id"],
            programme_id=data["programme_id"],
            title=data["title"],
            rule_profile=data["rule_profile"],
            min_grant=data["min_grant_eur"],
            max_grant=data["max_grant_eur"],
            max_ec_share=data["max_ec_share"],
            opened_at=occurred_at,
            deadline=data["deadline"],
            programme_start=data["programme_start"],
            programme_end=data["programme_end"],
            currency_conversion=data.get("currency_conversion"),
            contingency_cap=data.get("contingency_cap"),
            indirect_cap=data.get("indirect_cap"),
            max_duration_months=data.get("max_duration_months"),
        )
    )
    session.flush()
    for window in data["windows"]:
        session.add(
            WindowBudget(
                call_id=data["call_id"],
                window=window["window"],
                name=window["name"],
                allocation=window["allocation_eur"],
                committed=0,
            )
        )


def record_proposal(uow: UnitOfWork, data: dict):
    if uow.session.get(ProposalCopy, data["proposal_id"]) is not None:
        return
    if uow.session.get(CallCopy, data["call_id"]) is None:
        # call_opened always precedes submissions; until it arrives this proposal cannot be budgeted:
        # fail, so the kit retries and finally keeps it as a dead letter to replay
        raise Conflict("proposal.unknown_call", f"call {data['call_id']} has not been opened here")
    lead = next((a for a in data["applicants"] if a["role"] == "lead"), data["applicants"][0])
    uow.session.add(
        ProposalCopy(
            proposal_id=data["proposal_id"],
            reference=data["reference"],
            call_id=data["call_id"],
            programme_id=data["programme_id"],
            window=data["window"],
            country=data["target_country"],
            applicant_type=data["applicant_type"],
            lead_organisation=data["lead_organisation"],
            lead_registration_number=lead["registration_number"],
            lead_country=lead["country"],
            title=data["title"],
            duration_months=data["duration_months"],
            ec_amount_requested=data["ec_amount_requested_eur"],
            budget={k: str(v) for k, v in data["budget"].items()},
            status="submitted",
            submitted_at=data["submitted_at"],
            logframe=data.get("logframe"),
        )
    )


def record_withdrawal(uow: UnitOfWork, data: dict):
    if uow.session.get(Withdrawal, data["proposal_id"]) is None:
        uow.session.add(
            Withdrawal(proposal_id=data["proposal_id"], reason=data["reason"], withdrawn_at=data["withdrawn_at"])
        )


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
    call = repo.call_copy(session, proposal_row.call_id)
    budgets = repo.lock_budgets(session, call.programme_id, call.call_id, proposal_row.window)
    # read after the budget locks: a concurrent award or decline in this window has committed by now
    ranking = repo.ranking_of(session, call.call_id, proposal_row.window)
    proposal = repo.proposal_copy(session, proposal_row, ranking)
    reserve = repo.reserve_places(session, ranking) if ranking is not None else None
    decision_date = data["decision_date"] or now.date()
    grant, events = domain.Grant.award(
        str(uuid.uuid4()),
        proposal,
        data["amount_eur"],
        repo.call_limits(call),
        budgets.window,
        budgets.programme,
        decision_reference=data["decision_reference"],
        decision_date=decision_date,
        awarded_at=now,
        profile=call.rule_profile,
        reserve=reserve,
        calendar=repo.calendar(call),
    )
    budgets.store()
    assert proposal.ranking is not None  # the award refuses a proposal in no ranking
    grant.logframe = proposal_row.logframe  # the contract keeps the proposal's logframe
    proposal_row.status, proposal_row.decision_reference = "awarded", data["decision_reference"]
    row = repo.new_grant_row(
        grant,
        proposal_row,
        proposal.ranking.value,
        call.rule_profile,
        data["decision_reference"],
        decision_date,
        now,
    )
    session.add(row)
    record = repo.GrantRecord(row, grant)
    repo.save(session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return grant_view(record)


def reject_proposal(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    row = repo.lock_proposal(session, data["proposal_id"])
    events = domain.reject_proposal(repo.proposal_copy(session, row, None), data["reasons"], data["decision_reference"])
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
    org = domain.Organisation(
        data["legal_name"], data["registration_number"], data["country"], data["iban"], data["signatory"], data["bic"]
    )
    existing = session.execute(
        select(OrganisationRow).where(
            OrganisationRow.country == org.country, OrganisationRow.registration_number == org.registration_number
        )
    ).scalar_one_or_none()
    if existing is not None:
        if _identity_of(repo.organisation(existing)) == _identity_of(org):
            return organisation_view(existing)  # the same registration again (a retry)
        raise Conflict(
            "organisation.already_registered",
            f"{org.country} {org.registration_number} is registered as {existing.id}",
            [{"organisation_id": existing.id}],
        )
    row = OrganisationRow(
        id=str(uuid.uuid4()),
        legal_name=org.legal_name,
        registration_number=org.registration_number,
        country=org.country,
        signatory=org.signatory,
        iban=org.iban,
        bic=org.bic,
        account_validated=False,
        registered_by=_user(uow),
        registered_at=now,
    )
    session.add(row)
    _flush_unique(
        session,
        "organisation.already_registered",
        f"{org.country} {org.registration_number} was registered at the same time",
    )
    shared = _sharing_the_account(session, row)
    uow.audit(
        "grants.register_organisation", f"organisation:{row.id}", {**organisation_view(row), "iban_shared_with": shared}
    )
    return organisation_view(row, shared)


def _sharing_the_account(session, row: OrganisationRow) -> list[dict]:
    """The other organisations registered with the same IBAN (finance is shown them: a warning sign)."""
    if row.iban is None:
        return []
    others = session.execute(
        select(OrganisationRow)
        .where(OrganisationRow.iban == row.iban, OrganisationRow.id != row.id)
        .order_by(OrganisationRow.legal_name)
    ).scalars()
    return [
        {
            "organisation_id": o.id,
            "legal_name": o.legal_name,
            "country": o.country,
            "registration_number": o.registration_number,
        }
        for o in others
    ]


def _identity_of(org: domain.Organisation) -> tuple:
    return org.legal_name, org.registration_number, org.country, org.iban, org.signatory, org.bic


def validate_bank_account(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """A finance approver confirms the account they checked (the IBAN must be the registered one) — never the
    person who registered it."""
    row = repo.lock_organisation(uow.session, data["organisation_id"])
    iban = domain.validate_iban(data["iban"])
    if row.iban != iban:
        raise Conflict(
            "organisation.iban_mismatch",
            "the IBAN checked is not the one registered",
            [{"registered": domain.format_iban(row.iban) if row.iban else None}],
        )
    if row.account_validated:
        return organisation_view(row)
    require_second_person(
        "organisation.four_eyes",
        row.registered_by,
        _user(uow),
        f"{row.registered_by} registered this organisation and may not validate its bank account",
        [{"registered_by": row.registered_by, "validator": _user(uow)}],
    )
    shared = _sharing_the_account(uow.session, row)
    domain.check_shared_account(row.iban, shared, data["shared_iban_reason"])
    validated = repo.organisation(row).validate_account()
    row.account_validated, row.validated_by, row.validated_at = validated.account_validated, _user(uow), now
    uow.audit(
        "grants.validate_bank_account",
        f"organisation:{row.id}",
        {
            "iban": row.iban,
            **({"iban_shared_with": shared, "shared_iban_reason": data["shared_iban_reason"]} if shared else {}),
        },
    )
    return organisation_view(row, shared)


def list_organisations(uow: UnitOfWork, data: dict) -> list[dict]:
    query = select(OrganisationRow).order_by(OrganisationRow.legal_name).limit(data["limit"])
    for column, key in (
        (OrganisationRow.country, "country"),
        (OrganisationRow.registration_number, "registration_number"),
    ):
        if data[key]:
            query = query.where(column == data[key])
    rows = list(uow.session.execute(query).scalars())
    # one grouped query: which of these accounts is registered more than once, and for whom
    holders: dict[str | None, list[str]] = {}
    for holder, iban in uow.session.execute(
        select(OrganisationRow.id, OrganisationRow.iban).where(
            OrganisationRow.iban.in_({r.iban for r in rows if r.iban}),
            OrganisationRow.iban.in_(
                select(OrganisationRow.iban).group_by(OrganisationRow.iban).having(func.count() > 1)
            ),
        )
    ):
        holders.setdefault(iban, []).append(holder)
    return [
        organisation_view(row, [{"organisation_id": other} for other in holders.get(row.iban, []) if other != row.id])
        for row in rows
    ]


# --- the contract ---------------------------------------------------------------------------------------------


def sign_contract(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    session = uow.session
    record = repo.lock_grant(session, data["grant_id"])
    org_row = session.get(OrganisationRow, data["organisation_id"])
    if org_row is None:
        raise NotFound("organisation", data["organisation_id"])
    lead = (record.row.lead_country, record.row.lead_registration_number)
    if (org_row.country, org_row.registration_number) != lead:
        raise Conflict(
            "contract.organisation_not_lead",
            f"the contract is signed with the lead applicant ({' '.join(lead)}), not {org_row.legal_name}",
        )
    events = record.grant.sign_contract(
        repo.organisation(org_row),
        data["start_date"] or now.date(),
        now,
        data["annual_budgets"],
        data["duration_months"],
    )
    record.row.organisation_id, record.row.signed_at, record.organisation = org_row.id, now, org_row
    record.row.signed_by = _user(uow)  # an early termination needs someone else
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
        raise Conflict(
            "payment.key_reused",
            f"the idempotency key {key!r} was already used for a payment of "
            f"another grant: give a new key for a new request",
            [{"idempotency_key": key}],
        )
    # the grant lock queues concurrent requests of this grant: a duplicate then finds the first one
    record = repo.lock_grant(session, data["grant_id"])
    events = record.grant.request_payment(
        payment_id, data["tranche_number"], data["amount_eur"], _user(uow), now, idempotency_key=key
    )
    if events:  # none when this is a retry of the same request
        repo.save(session, record, _user(uow), now, idempotency_keys={payment_id: key})
        _flush_unique(
            session,
            "payment.key_reused",
            f"the idempotency key {key!r} was used at the same time for a payment of another grant",
        )
        repo.emit(uow, events, now)
    return payment_view(record.payments[payment_id])


def _locked_payment(session, payment_id: str):
    """A payment's grant record, locked (the grant lock queues every change of its payments), and its row."""
    payment = session.get(PaymentRow, payment_id)
    if payment is None:
        raise NotFound("payment", payment_id)
    record = repo.lock_grant(session, payment.grant_id)
    return record, record.payments[payment_id]


def approve_payment(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Four eyes on the caller's identity, the payment rules again, then the payment (tranche_paid)."""
    session = uow.session
    record, payment = _locked_payment(session, data["payment_id"])
    value_date = data["value_date"]
    if (
        payment.status == "paid"
        and (payment.approved_by, payment.bank_reference) == (_user(uow), data["bank_reference"])
        and value_date in (None, payment.value_date)
    ):
        return payment_view(payment)  # the same approval again (a retry): paid once
    grant = record.grant
    grant.approve_payment(payment.id, _user(uow), now)
    events = grant.mark_paid(payment.id, value_date or now.date(), data["bank_reference"], today=now.date())
    repo.save(session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return payment_view(payment)


def cancel_payment(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Its requester or a finance approver withdraws a request awaiting approval; the tranche is free again.
    The same cancellation again (a retry) returns the cancelled payment."""
    session = uow.session
    record, payment = _locked_payment(session, data["payment_id"])
    if payment.status == "cancelled" and (payment.cancelled_by, payment.cancel_reason) == (_user(uow), data["reason"]):
        return payment_view(payment)
    events = record.grant.cancel_payment(
        payment.id, _user(uow), data["reason"], now, finance_approver=FINANCE_APPROVER in uow.identity.roles
    )
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
    events = record.grant.submit_report(
        report_id,
        data["kind"],
        data["number"],
        data["expenditure"],
        now,
        lines=data["lines"],
        rates=repo.rate_lookup(uow.session),
        actuals=data["actuals"],
    )
    repo.save(uow.session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return report_view(record.reports[report_id])


def decide_report(uow: UnitOfWork, data: dict, now: datetime, accepted: bool) -> dict:
    report = uow.session.get(ReportRow, data["report_id"])
    if report is None:
        raise NotFound("report", data["report_id"])
    record = repo.lock_grant(uow.session, report.grant_id)
    if accepted:
        condition = record.grant.reports[report.id].condition if report.id in record.grant.reports else None
        unlocks = [t.number for t in record.grant.schedule if condition and t.condition == condition]
        if unlocks:  # money moves on this acceptance: a second person
            require_second_person(
                "report.four_eyes",
                report.submitted_by,
                _user(uow),
                f"{report.submitted_by} submitted this report, which unlocks tranche "
                f"{', '.join(map(str, unlocks))}, and may not accept it",
                [{"submitted_by": report.submitted_by, "acceptor": _user(uow), "tranches": unlocks}],
            )
        events = record.grant.accept_report(report.id, now)
    else:
        events = record.grant.return_report(report.id, data["reason"], now)
    repo.save(uow.session, record, _user(uow), now)
    repo.emit(uow, events, now)
    return report_view(record.reports[report.id])


# --- exchange rates -------------------------------------------------------------------------------------------


def set_rates(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Publish one month's rates of one kind. A rate already published with the same value is left as it is (a
    file loaded twice changes nothing); with another value the whole request is refused: a published rate is
    never changed, so every report converted with it can be re-derived."""
    table = domain.rate_table(data["month"], data["rate_type"], data["source"], data["rates"])
    session = uow.session
    existing = {
        row.currency: row
        for row in session.execute(
            select(ExchangeRateRow)
            .where(
                ExchangeRateRow.rate_type == table[0].rate_type.value,
                ExchangeRateRow.month == table[0].month,
                ExchangeRateRow.currency.in_([r.currency for r in table]),
            )
            .with_for_update()
        ).scalars()
    }
    differing = [
        {
            "currency": r.currency,
            "published": domain.currencies.rate_str(repo.plain(existing[r.currency].rate)),
            "given": domain.currencies.rate_str(r.rate),
        }
        for r in table
        if r.currency in existing and repo.plain(existing[r.currency].rate) != r.rate
    ]
    if differing:
        named = ", ".join(d["currency"] for d in differing)
        raise Conflict(
            "rates.already_published",
            f"the {table[0].rate_type.value} rates of {table[0].month} for "
            f"{named} are published with other values and are never changed",
            differing,
        )
    new = [r for r in table if r.currency not in existing]
    for r in new:
        session.add(
            ExchangeRateRow(
                rate_type=r.rate_type.value,
                month=r.month,
                currency=r.currency,
                rate=r.rate,
                source=r.source,
                published_by=_user(uow),
                published_at=now,
            )
        )
    _flush_unique(
        session,
        "rates.already_published",
        f"the rates of {table[0].month} were published at the same time: list them and load again",
    )
    if new:
        uow.audit(
            "grants.set_rates",
            f"rates:{table[0].rate_type.value}:{table[0].month}",
            {"source": table[0].source, "rates": {r.currency: domain.currencies.rate_str(r.rate) for r in new}},
        )
        uow.emit(
            "rates_published",
            {
                "month": table[0].month,
                "rate_type": table[0].rate_type.value,
                "source": table[0].source,
                "rates": [{"currency": r.currency, "rate": r.rate} for r in new],
                "published_by": _user(uow),
                "published_at": now,
            },
            occurred_at=now,
        )
    return {
        "month": table[0].month,
        "rate_type": table[0].rate_type.value,
        "source": table[0].source,
        "published": [r.currency for r in new],
        "unchanged": sorted(set(existing)),
    }


def list_rates(uow: UnitOfWork, data: dict) -> list[dict]:
    query = (
        select(ExchangeRateRow)
        .order_by(ExchangeRateRow.month, ExchangeRateRow.rate_type, ExchangeRateRow.currency)
        .limit(data["limit"])
    )
    for column, key in (
        (ExchangeRateRow.month, "month"),
        (ExchangeRateRow.currency, "currency"),
        (ExchangeRateRow.rate_type, "rate_type"),
    ):
        if data[key]:
            query = query.where(column == data[key])
    if data["from_month"]:
        query = query.where(ExchangeRateRow.month >= data["from_month"])
    if data["to_month"]:
        query = query.where(ExchangeRateRow.month <= data["to_month"])
    return [
        {
            "rate_type": row.rate_type,
            "month": row.month,
            "currency": row.currency,
            "rate": domain.currencies.rate_str(repo.plain(row.rate)),
            "source": row.source,
            "published_by": row.published_by,
            "published_at": row.published_at,
        }
        for row in uow.session.execute(query).scalars()
    ]


# --- reallocations and amendments -----------------------------------------------------------------------------


def reallocate_budget(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    record = repo.lock_grant(uow.session, data["grant_id"])
    limits = repo.call_limits(repo.call_copy(uow.session, record.row.call_id))
    events = record.grant.reallocate(str(uuid.uuid4()), data["new_budget"], limits, data["reason"])
    return _amended(uow, record, events, now)


def amend_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Apply an amendment — except one that raises the award: money moves, so it waits for a second person
    (`approve_amendment`), after every rule has been checked (and nothing stored but the proposal)."""
    session = uow.session
    record = repo.lock_grant(session, data["grant_id"])
    row = record.row
    budgets = repo.lock_budgets(session, row.programme_id, row.call_id, row.window)
    amendment = domain.Amendment(
        str(uuid.uuid4()),
        data["kind"],
        data["reason"],
        data["new_budget"],
        data["new_duration_months"],
        data["new_amount_eur"],
        tuple(data["new_annual_budgets"]) if data["new_annual_budgets"] else None,
        new_targets=data["new_targets"],
    )
    current = record.grant.amount
    targets_before = domain.targets_of(record.grant.logframe)
    events = record.grant.amend(
        amendment, repo.call_limits(repo.call_copy(session, row.call_id)), budgets.window, budgets.programme
    )
    if (
        amendment.kind == domain.AmendmentKind.AMOUNT
        and amendment.new_amount is not None
        and amendment.new_amount > current
    ):
        # checked, not applied: the grant, its budgets and the events stay as they were
        pending = PendingAmendmentRow(
            id=amendment.amendment_id,
            grant_id=row.id,
            kind=amendment.kind.value,
            reason=amendment.reason,
            current_amount=current,
            new_amount=amendment.new_amount,
            new_budget={k: str(v) for k, v in amendment.new_budget.items()} if amendment.new_budget else None,
            new_annual_budgets=[str(v) for v in amendment.new_annual_budgets] if amendment.new_annual_budgets else None,
            status="awaiting_approval",
            requested_by=_user(uow),
            requested_at=now,
        )
        session.add(pending)
        uow.audit("grants.amend_grant", f"grant:{row.id}", pending_amendment_view(pending))
        return pending_amendment_view(pending)
    budgets.store()
    targets = None
    if amendment.kind == domain.AmendmentKind.TARGETS:
        after = domain.targets_of(record.grant.logframe)
        targets = [
            {"code": code, "before": targets_before[code], "after": after[code]}
            for code in after
            if after[code] != targets_before.get(code)
        ]
        uow.audit("grants.amend_targets", f"grant:{record.row.id}", {"reason": data["reason"], "targets": targets})
    return _amended(uow, record, events, now, targets)


def approve_amendment(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """A second person applies an amendment that raises the award (four eyes), every rule checked again now."""
    session = uow.session
    pending = session.get(PendingAmendmentRow, data["amendment_id"], with_for_update=True)
    if pending is None:
        raise NotFound("amendment", data["amendment_id"])
    if pending.status != "awaiting_approval":
        raise Conflict(
            "amendment.not_pending",
            f"amendment {pending.id} is {pending.status}",
            [{"amendment_id": pending.id, "status": pending.status, "decided_by": pending.decided_by}],
        )
    require_second_person(
        "amendment.four_eyes",
        pending.requested_by,
        _user(uow),
        f"{pending.requested_by} proposed raising the award and may not approve it",
        [{"requested_by": pending.requested_by, "approver": _user(uow)}],
    )
    record = repo.lock_grant(session, pending.grant_id)
    row = record.row
    if record.grant.amount != pending.current_amount:
        raise Conflict(
            "amendment.stale",
            f"the award changed since the amendment was proposed (now "
            f"{record.grant.amount}, then {pending.current_amount}): propose it again",
            [{"amendment_id": pending.id}],
        )
    budgets = repo.lock_budgets(session, row.programme_id, row.call_id, row.window)
    amendment = domain.Amendment(
        pending.id,
        domain.AmendmentKind(pending.kind),
        pending.reason,
        {k: Decimal(v) for k, v in pending.new_budget.items()} if pending.new_budget else None,
        None,
        pending.new_amount,
        tuple(Decimal(v) for v in pending.new_annual_budgets) if pending.new_annual_budgets else None,
    )
    events = record.grant.amend(
        amendment, repo.call_limits(repo.call_copy(session, row.call_id)), budgets.window, budgets.programme
    )
    budgets.store()
    pending.status, pending.decided_by, pending.decided_at = "approved", _user(uow), now
    return {**_amended(uow, record, events, now), "requested_by": pending.requested_by, "approved_by": _user(uow)}


def pending_amendment_view(row: "PendingAmendmentRow") -> dict:
    return {
        "amendment_id": row.id,
        "grant_id": row.grant_id,
        "kind": row.kind,
        "reason": row.reason,
        "status": row.status,
        "current_amount_eur": row.current_amount,
        "new_amount_eur": row.new_amount,
        "new_budget": row.new_budget,
        "new_annual_budgets": row.new_annual_budgets,
        "requested_by": row.requested_by,
        "requested_at": row.requested_at,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
    }


def _amended(uow: UnitOfWork, record, events, now: datetime, targets: list | None = None) -> dict:
    repo.save(uow.session, record, _user(uow), now)
    change = events[0].data
    uow.session.add(
        AmendmentRow(
            id=change["amendment_id"],
            grant_id=record.row.id,
            kind=change["kind"],
            reason=change["reason"],
            amount=record.grant.amount,
            duration_months=record.grant.duration_months,
            budget=repo.wire_money_map(change["budget"]),
            decided_by=_user(uow),
            decided_at=now,
            targets=targets,
        )
    )
    repo.emit(uow, events, now)
    return {**grant_view(record), "amendment_id": change["amendment_id"]}


# --- closure --------------------------------------------------------------------------------------------------


def close_grant(uow: UnitOfWork, data: dict, now: datetime) -> dict:
    """Close the grant; what its award keeps above the final amount goes back to the window and the programme
    in the same transaction (budget rows locked after the grant, as awards lock them)."""
    session = uow.session
    record = repo.lock_grant(session, data["grant_id"])
    row = record.row
    budgets = repo.lock_budgets(session, row.programme_id, row.call_id, row.window)
    decommitment_id = str(uuid.uuid4())
    events = record.grant.close(now, budgets.window, budgets.programme, decommitment_id=decommitment_id)
    budgets.store()
    repo.save(session, record, _user(uow), now)
    decommitted = record.grant.decommitted  # what the closure gave back
    following = None
    if decommitted > 0:
        session.add(
            DecommitmentRow(
                id=decommitment_id,
                grant_id=row.id,
                amount=decommitted,
                committed_before=record.grant.amount,
                reason=record.grant.decommitment_reason(),
                decided_by=_user(uow),
                decided_at=now,
            )
        )
        ranking = repo.ranking_of(session, row.call_id, row.window)
        following = repo.reserve_places(session, ranking).next_in_line if ranking is not None else None
    repo.emit(uow, events, now)
    return {**grant_view(record), "next_reserve_proposal_id": following}


# --- reads ----------------------------------------------------------------------------------------------------


def get_grant(uow: UnitOfWork, grant_id: str) -> dict:
    pending = uow.session.execute(
        select(PendingAmendmentRow)
        .where(PendingAmendmentRow.grant_id == grant_id, PendingAmendmentRow.status == "awaiting_approval")
        .order_by(PendingAmendmentRow.requested_at)
    ).scalars()
    return {
        **grant_view(repo.get_grant(uow.session, grant_id)),
        "amendments_awaiting_approval": [pending_amendment_view(p) for p in pending],
    }


def list_grants(uow: UnitOfWork, data: dict) -> list[dict]:
    query = select(GrantRow).order_by(GrantRow.reference).limit(data["limit"])
    for column, key in (
        (GrantRow.programme_id, "programme_id"),
        (GrantRow.call_id, "call_id"),
        (GrantRow.window, "window"),
        (GrantRow.country, "country"),
        (GrantRow.status, "status"),
    ):
        if data[key]:
            query = query.where(column == data[key])
    return [grant_summary(row) for row in uow.session.execute(query).scalars()]


def ledger(uow: UnitOfWork, programme_id: str | None = None) -> dict:
    """Committed and paid per grant: what the reporting service must agree with, to the cent. A declined
    grant commits nothing; a closed grant commits its award less what closure decommitted, and shows what is
    to be recovered."""
    query = select(GrantRow).order_by(GrantRow.reference)
    if programme_id:
        query = query.where(GrantRow.programme_id == programme_id)
    grants = uow.session.execute(query).scalars()
    return {
        "grants": [
            {
                "grant_id": g.id,
                "reference": g.reference,
                "programme_id": g.programme_id,
                "call_id": g.call_id,
                "window": g.window,
                "country": g.country,
                "status": g.status,
                "awarded_eur": g.amount,
                "committed_eur": committed(g),
                "decommitted_eur": g.decommitted or ZERO,
                "paid_eur": g.paid,
                "recovery_eur": g.recovery or ZERO,
            }
            for g in grants
        ]
    }


def _flush_unique(session, rule: str, reason: str):
    """A unique constraint met by a concurrent transaction is a refused rule, not an internal error."""
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(rule, reason) from None
