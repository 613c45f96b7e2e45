"""Projections: how each event becomes reporting facts.

Each projector only adds rows keyed by the event's own identity (grant, payment, amendment, event id), so
applying an event twice changes nothing: the inbox guards live delivery, and a rebuild replays the archive
into emptied tables. No projector reads the clock: a rebuild gives exactly the live rows.
"""

from sqlalchemy import delete, select, text

from services.common.contracts.events import Event, parse_event
from services.common.storage.db import UnitOfWork

from .domain.budget_report import budget_fact, budget_lines, expenditure_fact
from .models import (
    PROJECTION_TABLES,
    AmendmentRow,
    ArchivedEvent,
    BudgetLineRow,
    BudgetRow,
    CallClosureRow,
    CallRow,
    ClosureRow,
    ContractRow,
    DecommitmentRow,
    ExpenditureLineRow,
    ExpenditureRow,
    GrantReportRow,
    GrantRow,
    IndicatorResultRow,
    PaymentCancellationRow,
    PaymentRequestRow,
    ProgrammeRow,
    ProposalOutcomeRow,
    ProposalRow,
    ReportExpenditureRow,
    TerminationRow,
    TrancheRow,
    WindowRow,
)
from .repository import FactWriter


AWARD = "award"  # the source of a grant's budget lines as awarded (an amendment's are its id)


def _money_map(values: dict) -> dict:
    return {heading: str(amount) for heading, amount in values.items()}


# --- calls ---------------------------------------------------------------------------------------------------


def _call_opened(writer, evt: Event):
    d = evt.data
    writer.add(
        ProgrammeRow,
        d["programme_id"],
        programme_id=d["programme_id"],
        name=d["programme_name"],
        envelope=d["envelope_eur"],
        period_start=d["programme_start"],
        period_end=d["programme_end"],
    )
    writer.add(
        CallRow,
        d["call_id"],
        call_id=d["call_id"],
        programme_id=d["programme_id"],
        title=d["title"],
        rule_profile=d["rule_profile"],
        deadline=d["deadline"],
        opened_at=evt.occurred_at,
    )
    for position, w in enumerate(d["windows"]):
        writer.add(
            WindowRow,
            (d["call_id"], w["window"]),
            call_id=d["call_id"],
            window=w["window"],
            programme_id=d["programme_id"],
            name=w["name"] or w["window"],
            allocation=w["allocation_eur"],
            position=position,
        )


def _call_closed(writer, evt: Event):
    d = evt.data
    writer.add(CallClosureRow, d["call_id"], call_id=d["call_id"], closed_at=d["closed_at"], proposals=d["proposals"])


def _proposal_submitted(writer, evt: Event):
    d = evt.data
    writer.add(
        ProposalRow,
        d["proposal_id"],
        proposal_id=d["proposal_id"],
        reference=d["reference"],
        call_id=d["call_id"],
        programme_id=d["programme_id"],
        window=d["window"],
        country=d["target_country"],
        applicant_type=d["applicant_type"],
        requested=d["ec_amount_requested_eur"],
        submitted_on=d["submitted_at"].date(),
    )


def _outcome(writer, evt: Event, proposal_id: str, call_id: str, kind: str, outcome: str, score=None, on=None):
    writer.add(
        ProposalOutcomeRow,
        (evt.event_id, proposal_id),
        event_id=evt.event_id,
        proposal_id=proposal_id,
        call_id=call_id,
        kind=kind,
        outcome=outcome,
        score=score,
        occurred_at=evt.occurred_at,
        decided_on=on or evt.occurred_at.date(),
    )


def _proposal_withdrawn(writer, evt: Event):
    d = evt.data
    _outcome(writer, evt, d["proposal_id"], d["call_id"], "withdrawn", "withdrawn", on=d["withdrawn_at"].date())


def _proposal_screened(writer, evt: Event):
    d = evt.data
    _outcome(writer, evt, d["proposal_id"], d["call_id"], "screened", d["outcome"])


def _proposal_evaluated(writer, evt: Event):
    d = evt.data
    _outcome(
        writer,
        evt,
        d["proposal_id"],
        d["call_id"],
        "evaluated",
        f"{d['stage']}:{'passed' if d['passed'] else 'failed'}",
        score=d["score"],
    )


def _ranking_published(writer, evt: Event):
    d = evt.data
    on = d["published_at"].date()
    for list_name in ("main", "reserve"):
        for ranked in d[list_name]:
            _outcome(writer, evt, ranked["proposal_id"], d["call_id"], "ranked", list_name, ranked["score"], on)
    for proposal_id in d["excluded"]:
        _outcome(writer, evt, proposal_id, d["call_id"], "ranked", "excluded", on=on)


def _proposal_rejected(writer, evt: Event):
    d = evt.data
    _outcome(writer, evt, d["proposal_id"], d["call_id"], "rejected", "rejected")


# --- grants --------------------------------------------------------------------------------------------------


def _grant_awarded(writer, evt: Event):
    d = evt.data
    writer.add(
        GrantRow,
        d["grant_id"],
        grant_id=d["grant_id"],
        proposal_id=d["proposal_id"],
        programme_id=d["programme_id"],
        reference=d["reference"],
        title=d["title"],
        call_id=d["call_id"],
        window=d["window"],
        country=d["country"],
        applicant_type=d["applicant_type"],
        lead_organisation=d["lead_organisation"],
        amount=d["amount_eur"],
        budget=_money_map(d["budget"]),
        decision_reference=d["decision_reference"],
        decision_date=d["decision_date"],
        awarded_at=d["awarded_at"],
    )
    _add_budget(writer, d["grant_id"], AWARD, d["amount_eur"], d["budget"])


def _add_budget(writer, grant_id: str, source: str, amount, budget: dict):
    """A budget's lines (one row per heading) and the same figures in one row (a column per heading)."""
    lines = budget_lines(grant_id, source, amount, budget)
    for line in lines:
        writer.add(BudgetLineRow, (grant_id, source, line["heading"]), **line)
    if lines:
        writer.add(BudgetRow, (grant_id, source), **budget_fact(grant_id, source, lines))


def _contract_signed(writer, evt: Event):
    d = evt.data
    writer.add(
        ContractRow,
        d["grant_id"],
        grant_id=d["grant_id"],
        amount=d["amount_eur"],
        start_date=d["start_date"],
        end_date=d["end_date"],
        duration_months=d["duration_months"],
        signed_on=d["signed_at"].date(),
    )


def _grant_amended(writer, evt: Event):
    d = evt.data
    # the contract carries no decision date: the amendment counts from the day it was recorded
    writer.add(
        AmendmentRow,
        d["amendment_id"],
        amendment_id=d["amendment_id"],
        grant_id=d["grant_id"],
        kind=d["kind"],
        amount=d["amount_eur"],
        duration_months=d["duration_months"],
        budget=_money_map(d["budget"]),
        occurred_at=evt.occurred_at,
        effective_on=evt.occurred_at.date(),
    )
    _add_budget(writer, d["grant_id"], d["amendment_id"], d["amount_eur"], d["budget"])


def _payment_requested(writer, evt: Event):
    d = evt.data
    writer.add(
        PaymentRequestRow,
        d["payment_id"],
        payment_id=d["payment_id"],
        grant_id=d["grant_id"],
        tranche_number=d["tranche_number"],
        amount=d["amount_eur"],
        requested_on=d["requested_at"].date(),
    )


def _payment_cancelled(writer, evt: Event):
    d = evt.data
    writer.add(
        PaymentCancellationRow,
        d["payment_id"],
        payment_id=d["payment_id"],
        grant_id=d["grant_id"],
        cancelled_on=d["cancelled_at"].date(),
    )


def _tranche_paid(writer, evt: Event):
    d = evt.data
    writer.add(
        TrancheRow,
        d["payment_id"],
        payment_id=d["payment_id"],
        grant_id=d["grant_id"],
        tranche_number=d["tranche_number"],
        amount=d["amount_eur"],
        value_date=d["value_date"],
        bank_reference=d["bank_reference"],
        paid_at=evt.occurred_at,
    )


def _report_submitted(writer, evt: Event):
    d = evt.data
    writer.add(
        GrantReportRow,
        evt.event_id,
        event_id=evt.event_id,
        report_id=d["report_id"],
        grant_id=d["grant_id"],
        kind=d["kind"],
        status="submitted",
        total=d["total_eur"],
        decided_on=d["submitted_at"].date(),
    )
    for n, line in enumerate(d.get("lines") or (), start=1):  # a report in local currencies: its lines
        writer.add(
            ExpenditureLineRow,
            (d["report_id"], n),
            report_id=d["report_id"],
            line_no=n,
            grant_id=d["grant_id"],
            heading=line["heading"],
            amount=line["amount"],
            currency=line["currency"],
            incurred_on=line["incurred_on"],
            description=line["description"],
            rate=line["rate"],
            rate_type=line["rate_type"],
            rate_month=line["rate_month"],
            amount_eur=line["amount_eur"],
        )


def _report_accepted(writer, evt: Event):
    d = evt.data
    on = d["decided_at"].date()
    writer.add(
        GrantReportRow,
        evt.event_id,
        event_id=evt.event_id,
        report_id=d["report_id"],
        grant_id=d["grant_id"],
        kind=d["kind"],
        status=d["outcome"],
        total=d["total_eur"],
        decided_on=on,
    )
    if d["outcome"] != "accepted":
        return  # a returned report's figures are not expenditure
    for heading, amount in d["expenditure"].items():
        writer.add(
            ExpenditureRow,
            (evt.event_id, heading),
            event_id=evt.event_id,
            heading=heading,
            report_id=d["report_id"],
            grant_id=d["grant_id"],
            amount=amount,
            accepted_on=on,
        )
    writer.add(
        ReportExpenditureRow,
        evt.event_id,
        **expenditure_fact(evt.event_id, d["report_id"], d["grant_id"], on, d["expenditure"]),
    )


def _grant_closed(writer, evt: Event):
    d = evt.data
    writer.add(
        ClosureRow,
        d["grant_id"],
        grant_id=d["grant_id"],
        kind=d["kind"],
        paid=d["paid_eur"],
        accepted_expenditure=d["accepted_expenditure_eur"],
        recovery=d["recovery_eur"],
        closed_on=d["closed_at"].date(),
    )


def _grant_decommitted(writer, evt: Event):
    d = evt.data
    writer.add(
        DecommitmentRow,
        d["decommitment_id"],
        decommitment_id=d["decommitment_id"],
        grant_id=d["grant_id"],
        amount=d["amount_eur"],
        reason=d["reason"],
        decommitted_on=d["decommitted_at"].date(),
    )


def _results_reported(writer, evt: Event):
    d = evt.data
    for r in d["results"]:
        writer.add(
            IndicatorResultRow,
            (d["report_id"], r["code"]),
            report_id=d["report_id"],
            code=r["code"],
            grant_id=d["grant_id"],
            reference=d["reference"],
            programme_id=d["programme_id"],
            window=d["window"],
            country=d["country"],
            report_kind=d["kind"],
            report_number=d["number"],
            period_start=d["period_start"],
            period_end=d["period_end"],
            result_type=r["result_type"],
            result_title=r["result_title"],
            title=r["title"],
            measure=r["measure"],
            unit=r["unit"],
            baseline_value=r["baseline_value"],
            baseline_year=r["baseline_year"],
            target_value=r["target_value"],
            target_date=r["target_date"],
            actual_value=r["actual_value"],
            comment=r["comment"],
            decided_on=d["decided_at"].date(),
        )


def _grant_terminated(writer, evt: Event):
    d = evt.data
    writer.add(
        TerminationRow,
        d["grant_id"],
        grant_id=d["grant_id"],
        effective_on=d["effective_date"],
        terminated_on=d["terminated_at"].date(),
        reason=d["reason"],
    )


PROJECTORS = {
    "call_opened": _call_opened,
    "call_closed": _call_closed,
    "proposal_submitted": _proposal_submitted,
    "proposal_withdrawn": _proposal_withdrawn,
    "proposal_screened": _proposal_screened,
    "proposal_evaluated": _proposal_evaluated,
    "ranking_published": _ranking_published,
    "grant_awarded": _grant_awarded,
    "proposal_rejected": _proposal_rejected,
    "contract_signed": _contract_signed,
    "payment_requested": _payment_requested,
    "payment_cancelled": _payment_cancelled,
    "tranche_paid": _tranche_paid,
    "report_submitted": _report_submitted,
    "report_accepted": _report_accepted,
    "grant_amended": _grant_amended,
    "grant_closed": _grant_closed,
    "grant_decommitted": _grant_decommitted,
    "results_reported": _results_reported,
    "grant_terminated": _grant_terminated,
}


def project(uow: UnitOfWork, event: Event, writer: FactWriter | None = None):
    """Project one event; with a writer, its rows wait for the writer's flush (batches, rebuild)."""
    projector = PROJECTORS.get(event.event_type)
    if projector is None:
        return
    own_writer = writer is None
    writer = writer or FactWriter(uow.session)
    projector(writer, event)
    if own_writer:
        writer.flush()


REBUILD_PAGE = 1000


def rebuild(uow: UnitOfWork) -> int:
    """Empty the projections and replay the whole archive in arrival order; returns the events replayed. The path
    SQLite takes, and the reference the set-based rebuild on PostgreSQL (rebuild_sql) is tested against.

    On PostgreSQL the archive is locked against new rows until the rebuild commits: an event arriving
    meanwhile waits, then is archived and projected onto the rebuilt facts (never projected twice)."""
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"LOCK TABLE {ArchivedEvent.__tablename__} IN EXCLUSIVE MODE"))
    for table in PROJECTION_TABLES:
        session.execute(delete(table))
    return replay_archive(session)


def replay_archive(session, after_seq: int = 0) -> int:
    """Project the archived events after `after_seq` through the projectors, in arrival order; returns their
    number."""
    count, last_seq = 0, after_seq
    while True:  # pages by sequence number: no cursor stays open while the projectors write
        page = session.execute(
            select(ArchivedEvent.seq, ArchivedEvent.body)
            .where(ArchivedEvent.seq > last_seq)
            .order_by(ArchivedEvent.seq)
            .limit(REBUILD_PAGE)
        ).all()
        if not page:
            return count
        writer = FactWriter(session)
        for seq, body in page:
            event = parse_event(body)
            projector = PROJECTORS.get(event.event_type)
            if projector is not None:
                projector(writer, event)
            last_seq = seq
        writer.flush()
        count += len(page)
