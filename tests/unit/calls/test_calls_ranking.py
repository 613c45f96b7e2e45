from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from calls_builders import UTC
from services.calls.domain import ScoredProposal, rank, ranking_to_dict
from services.common.values.errors import InvalidInput

T0 = datetime(2009, 3, 1, tzinfo=UTC)


def sp(pid, score, amount, country="MA", minutes=0, window="remittances", reference=None):
    return ScoredProposal(
        pid,
        reference or f"JMDI-2009-{country}-{pid[-4:]:0>4}",
        window,
        country,
        Decimal(amount),
        Decimal(score),
        T0 + timedelta(minutes=minutes),
    )


def ids(items):
    return [s.proposal_id for s in items]


def test_threshold_and_greedy_fill():
    proposals = [
        sp("0001", "90", "150000.00"),
        sp("0002", "85", "100000.00"),  # does not fit (150k + 100k > 200k) -> reserve
        sp("0003", "80", "50000.00"),  # fits exactly -> main
        sp("0004", "70", "60000.00"),  # allocation exhausted -> reserve
        sp("0005", "60", "50000.00"),  # exactly at the threshold: ranked, reserve
        sp("0006", "59.99", "50000.00"),  # under the threshold: excluded
    ]
    r = rank("remittances", "200000.00", proposals, "60")
    assert ids(r.main) == ["0001", "0003"]
    assert ids(r.reserve) == ["0002", "0004", "0005"]
    assert ids(r.excluded) == ["0006"]
    assert r.main_total == Decimal("200000.00") and r.remaining == Decimal("0.00")


def test_ties_broken_by_submission_time_then_reference():
    proposals = [
        sp("0003", "75", "50000.00", minutes=5),
        sp("0002", "75", "50000.00", minutes=1, reference="JMDI-2009-SN-0002"),
        sp("0001", "75", "50000.00", minutes=1, reference="JMDI-2009-MA-0001"),
    ]
    r = rank("remittances", "100000.00", proposals, "60")
    assert ids(r.main) == ["0001", "0002"] and ids(r.reserve) == ["0003"]
    assert rank("remittances", "100000.00", list(reversed(proposals)), "60") == r


def test_per_country_breakdown():
    proposals = [
        sp("0001", "90", "100000.00", "SN"),
        sp("0002", "80", "100000.00", "MA"),
        sp("0003", "70", "100000.00", "SN"),
        sp("0004", "10", "100000.00", "MA"),
    ]
    r = rank("remittances", "200000.00", proposals, "60")
    assert list(r.by_country) == ["MA", "SN"]
    ma, sn = r.by_country["MA"], r.by_country["SN"]
    assert (ma.main, ma.main_amount, ma.reserve, ma.excluded) == (1, Decimal("100000.00"), 0, 1)
    assert (sn.main, sn.reserve, sn.reserve_amount) == (1, 1, Decimal("100000.00"))


def test_empty_window():
    r = rank("remittances", "3750000.00", [], "60")
    assert (r.main, r.reserve, r.excluded, r.by_country) == ([], [], [], {})
    assert r.remaining == Decimal("3750000.00")


def test_input_errors():
    with pytest.raises(InvalidInput) as exc:
        rank("remittances", 1.5, [sp("0001", "70", "1.00", window="migrants_rights"), "x"], "-1")
    assert {"allocation", "threshold", "scored_proposals.0.window", "scored_proposals.1"} <= set(exc.value.errors)
    with pytest.raises(InvalidInput):
        rank("remittances", "10.00", [sp("0001", "70", "1.00"), sp("0001", "71", "1.00")], "60")
    with pytest.raises(InvalidInput):
        ScoredProposal("x", "r", "remittances", "MA", 1.0, "50", datetime(2009, 1, 1))


def test_ranking_to_dict():
    r = rank("remittances", "200000.00", [sp("0001", "90.5", "150000.00"), sp("0002", "80", "100000.00")], "60")
    d = ranking_to_dict(r)
    assert d["main"] == [
        {
            "position": 1,
            "proposal_id": "0001",
            "reference": "JMDI-2009-MA-0001",
            "country": "MA",
            "ec_amount": "150000.00",
            "score": "90.5",
            "submitted_at": "2009-03-01T00:00:00+00:00",
        }
    ]
    assert d["reserve"][0]["position"] == 1 and d["remaining"] == "50000.00"
    assert d["by_country"]["MA"] == {
        "main": 1,
        "main_amount": "150000.00",
        "reserve": 1,
        "reserve_amount": "100000.00",
        "excluded": 0,
    }
