from decimal import Decimal

import pytest

from calls_builders import budget, lead, make_proposal, partner
from services.calls.domain import (
    ApplicantType,
    Budget,
    Language,
    Role,
    proposal_from_dict,
    proposal_reference,
    proposal_to_dict,
)
from services.common.values.errors import InvalidInput


def test_budget_derived_lines():
    b = budget()
    assert b.subtotal_direct == Decimal("100000.00")  # line 7
    assert b.total_direct == Decimal("105000.00")  # line 9
    assert b.total_eligible == Decimal("112350.00")  # line 11
    assert Budget().total_eligible == Decimal("0.00")


def test_budget_refuses_floats_negatives_and_sub_cents():
    with pytest.raises(InvalidInput) as exc:
        Budget(travel=10.5, other="-1.00", local_office="1.001")
    assert set(exc.value.errors) == {"travel", "other", "local_office"}


def test_applicant_normalises_and_validates():
    a = lead(country="fr", email=" x@y.org ")
    assert a.country == "FR" and a.email == "x@y.org"
    assert a.type is ApplicantType.NGO and a.language is Language.FR and a.role is Role.LEAD
    with pytest.raises(InvalidInput) as exc:
        lead(type="company", country="XX", email="nope", language="de", role="boss", name="")
    assert set(exc.value.errors) == {"type", "country", "email", "language", "role", "name"}


def test_proposal_shape():
    p = make_proposal()
    assert p.lead.name == "Migrations et Développement"
    assert p.consortium_countries == ("FR", "MA")
    with pytest.raises(InvalidInput) as exc:
        make_proposal(
            applicants=(), duration_months=0, target_country="Morocco", ec_amount_requested=None, co_financing=1.0
        )
    assert {"applicants", "duration_months", "target_country", "co_financing"} <= set(exc.value.errors)


def test_lead_is_none_unless_exactly_one():
    assert make_proposal(applicants=(partner(),)).lead is None
    assert make_proposal(applicants=(lead(), lead(name="Other"))).lead is None


def test_reference_format():
    assert proposal_reference("JMDI", 2008, "MA", 42) == "JMDI-2008-MA-0042"
    assert proposal_reference("jmdi", 2009, "sn", 9999) == "JMDI-2009-SN-9999"
    with pytest.raises(InvalidInput) as exc:
        proposal_reference("JMDI", 8, "ZZ", 0)
    assert set(exc.value.errors) == {"year", "country", "sequence"}
    with pytest.raises(InvalidInput):
        proposal_reference("JMDI", 2008, "MA", 10000)


def test_round_trip_through_dict():
    p = make_proposal(reference="JMDI-2008-MA-0001", call_id="CALL-2008-1", submitted_at="2009-02-01T09:00:00+00:00")
    data = proposal_to_dict(p)
    assert data["budget"]["indirect_costs"] == "7350.00" and data["ec_amount_requested"] == "89880.00"
    assert data["applicants"][0]["role"] == "lead"
    assert proposal_from_dict(data) == p


def test_from_dict_names_nested_fields():
    data = proposal_to_dict(make_proposal())
    data["applicants"][1]["email"] = "bad"
    data["budget"]["travel"] = 3.5
    data["title"] = ""
    with pytest.raises(InvalidInput) as exc:
        proposal_from_dict(data)
    assert set(exc.value.errors) == {"applicants.1.email", "budget.travel", "title"}
    data = proposal_to_dict(make_proposal())
    data["budget"]["catering"] = "1.00"
    with pytest.raises(InvalidInput) as exc:
        proposal_from_dict(data)
    assert "unknown budget lines" in exc.value.errors["budget"][0]
    with pytest.raises(InvalidInput):
        proposal_from_dict([])
