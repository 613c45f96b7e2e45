"""Builders for the calls domain tests: a valid JMDI call and proposal, changed one field at a time."""

from datetime import datetime, timezone
from decimal import Decimal

from services.calls.domain import Applicant, Budget, Call, Proposal

UTC = timezone.utc
DEADLINE = datetime(2009, 3, 31, 12, 0, tzinfo=UTC)
BEFORE = datetime(2009, 2, 1, 9, 0, tzinfo=UTC)


def make_call(programme, profile, **overrides):
    args = dict(
        id="CALL-2008-1",
        programme=programme,
        profile=profile,
        title="JMDI call for proposals 2008",
        windows={"remittances": "3750000.00", "migrants_rights": "3750000.00"},
        deadline=DEADLINE,
    )
    args.update(overrides)
    return Call.create(**args)


def lead(**kw):
    data = dict(
        name="Migrations et Développement",
        type="ngo",
        country="FR",
        registration_number="W123456789",
        email="contact@migdev.example",
        language="fr",
        role="lead",
    )
    data.update(kw)
    return Applicant(**data)


def partner(**kw):
    data = dict(
        name="Association Marocaine Solidarité",
        type="civil_society_organisation",
        country="MA",
        registration_number="MA-RC-4242",
        email="info@ams.example",
        language="fr",
        role="co_applicant",
    )
    data.update(kw)
    return Applicant(**data)


def budget(**kw):
    """Line 7 = 100,000.00; contingency 5,000.00 (5%); line 9 = 105,000.00; indirect 7,350.00 (7%); 11 = 112,350.00."""
    data = dict(
        human_resources="50000.00",
        travel="10000.00",
        equipment_supplies="15000.00",
        local_office="5000.00",
        other_costs_services="15000.00",
        other="5000.00",
        contingency="5000.00",
        indirect_costs="7350.00",
    )
    data.update(kw)
    return Budget(**data)


def make_proposal(**kw):
    b = kw.pop("budget", None) or budget()
    total = b.total_eligible
    ec = kw.pop("ec_amount_requested", None)
    ec = Decimal(ec) if ec is not None else (total * Decimal("0.80")).quantize(Decimal("0.01"))
    data = dict(
        id="P-1",
        window="remittances",
        target_country="MA",
        title="Remittances for local development",
        summary="Channel remittances into local investment.",
        duration_months=18,
        budget=b,
        total_eligible_cost=total,
        ec_amount_requested=ec,
        co_financing=total - ec,
        applicants=(lead(), partner()),
    )
    data.update(kw)
    return Proposal(**data)
