"""Builders shared by the grants unit tests (plain functions, no fixtures magic)."""

from datetime import datetime, timezone
from decimal import Decimal as D

from services.common.contracts.events import make_event
from services.grants.domain import CallLimits, DomainEvent, ProgrammeBudget, ProposalCopy, RankingList, WindowBudget

UTC = timezone.utc
LIMITS = CallLimits(D("50000.00"), D("200000.00"), D("0.90"), 36)
BUDGET_250K = {  # total eligible 250,000.00: an award of 200,000.00 is an EC share of 80%
    "human_resources": D("122000.00"),
    "travel": D("30000.00"),
    "equipment_supplies": D("20000.00"),
    "local_office": D("20000.00"),
    "other_costs_services": D("30000.00"),
    "other": D("2000.00"),
    "contingency": D("10000.00"),
    "indirect_costs": D("16000.00"),
}


def on_the_wire(events: list) -> list:
    """The domain's events as consumers receive them: each made into its wire form under its contract, as the unit
    of work does when it writes the outbox (an event that does not match its contract is refused here)."""
    return [DomainEvent(e.event_type, make_event(e.event_type, e.data, producer="grants").body["data"]) for e in events]


def at(y, mo, d, h=12):
    return datetime(y, mo, d, h, tzinfo=UTC)


def proposal(**overrides) -> ProposalCopy:
    values = dict(
        proposal_id="p-1",
        reference="JMDI-2009-001",
        call_id="call-1",
        window="remittances",
        country="MA",
        ec_amount_requested=D("200000.00"),
        programme_id="JMDI",
        title="Remittances for MA",
        lead_organisation="Association Migrations et Développement",
        applicant_type="ngo",
        duration_months=36,
        budget=dict(BUDGET_250K),
        ranking=RankingList.MAIN,
        rank=1,
        score=D("82.50"),
        threshold=D("60"),
    )
    values.update(overrides)
    return ProposalCopy(**values)


def budgets(window_remaining="3750000.00", programme_remaining="15000000.00"):
    window = WindowBudget("remittances", D("3750000.00"), D("3750000.00") - D(window_remaining))
    programme = ProgrammeBudget(D("15000000.00"), D("15000000.00") - D(programme_remaining))
    return window, programme
