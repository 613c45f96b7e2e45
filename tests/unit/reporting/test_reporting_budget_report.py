"""The budget report model: totals reconcile to the cent, as_of filters facts, JSON uses decimal strings."""

import json
import re
from datetime import date
from decimal import Decimal

import pytest

from services.reporting.domain.budget_report import (
    BudgetReport,
    GrantFact,
    ProposalCounts,
    ReportError,
    TrancheFact,
    build_budget_report,
    report_to_json,
)
from tests.support.report_facts import JMDI_COUNTRIES, JMDI_WINDOWS, generate_facts, jmdi_programme

D = Decimal
MONEY = re.compile(r"^-?\d+\.\d{2}$")


def _sum(values):
    return sum(values, D("0.00"))


def assert_reconciles(report: BudgetReport, tranches, as_of=None):
    counted = [t for t in tranches if as_of is None or t.value_date <= as_of]
    assert report.disbursed == _sum(t.amount for t in counted)
    for field in ("committed", "disbursed"):
        total = getattr(report, field)
        for lines in (report.by_window, report.by_country, report.by_year, report.by_month, report.by_applicant_type):
            assert _sum(getattr(line, field) for line in lines) == total, (field, lines)
    assert _sum(g.committed for g in report.grants) == report.committed
    assert _sum(g.paid for g in report.grants) == report.disbursed
    assert _sum(g.outstanding for g in report.grants) == report.committed - report.disbursed
    assert (
        sum(w.grants for w in report.by_window)
        == sum(c.grants for c in report.by_country)
        == report.counts.awards
        == len(report.grants)
    )
    assert report.remaining == report.envelope - report.committed
    for value in (report.committed, report.disbursed, report.contracted, report.remaining):
        assert isinstance(value, Decimal) and value == value.quantize(D("0.01"))


def test_hand_made_facts_give_known_totals(small):
    programme, grants, tranches, expenditures, counts = small
    report = build_budget_report(programme, grants, tranches, expenditures, counts)
    assert report.envelope == D("15000000.00")
    assert report.committed == D("400000.00")  # 150000.00 + 50000.01 + 199999.99
    assert report.contracted == D("200000.01")
    assert report.disbursed == D("176000.12")
    assert report.remaining == D("14600000.00")
    assert report.absorption_rate == D("0.4400")  # 176000.12 / 400000.00 = 0.4400003
    assert report.counts.proposals == 547 and report.counts.eligible_proposals == 310
    assert report.counts.awards == 3
    windows = {w.window: w for w in report.by_window}
    assert list(windows) == list(JMDI_WINDOWS)  # every window of the programme, in programme order
    assert windows["migrant_communities"].committed == D("0.00") and windows["migrant_communities"].grants == 0
    assert windows["remittances"].disbursed == D("136000.10")
    assert windows["remittances"].available == D("3600000.00")
    assert [c.country for c in report.by_country] == ["MA", "PH", "SN"]
    assert [(y.year, y.committed, y.disbursed) for y in report.by_year] == [
        (2009, D("200000.01"), D("136000.01")),
        (2010, D("199999.99"), D("40000.11")),
    ]
    headings = {h.heading: h for h in report.by_heading}
    assert [h.heading for h in report.by_heading] == ["human_resources", "travel", "other", "indirect_costs"]
    assert headings["human_resources"].budgeted == D("140000.00")
    assert headings["human_resources"].reported_expenditure == D("70001.00")
    assert headings["travel"].reported_expenditure == D("12345.67")
    assert report.reported_expenditure == D("82346.67")
    g1 = report.grants[0]
    assert (g1.grant_id, g1.reference, g1.paid, g1.outstanding) == ("G1", "2008-0001", D("136000.10"), D("13999.90"))
    assert [p.tranche_number for p in g1.payments] == [1, 2]
    assert_reconciles(report, tranches)


def test_as_of_excludes_later_facts(small):
    programme, grants, tranches, expenditures, counts = small
    report = build_budget_report(programme, grants, tranches, expenditures, counts, as_of=date(2009, 12, 31))
    assert report.as_of == date(2009, 12, 31)
    assert [g.grant_id for g in report.grants] == ["G1", "G2"]  # G3 awarded in 2010
    assert report.committed == D("200000.01")
    assert report.disbursed == D("136000.01")  # G1's second tranche is paid in 2010
    assert report.reported_expenditure == D("0.00")  # accepted in 2010 and 2011
    assert all(h.reported_expenditure == 0 for h in report.by_heading)
    assert report.counts.awards == 2
    assert_reconciles(report, tranches, as_of=date(2009, 12, 31))

    # the as-of day itself counts
    on_the_day = build_budget_report(programme, grants, tranches, expenditures, counts, as_of=date(2010, 8, 1))
    assert on_the_day.reported_expenditure == D("82345.67")
    before = build_budget_report(programme, grants, tranches, expenditures, counts, as_of=date(2009, 6, 30))
    assert before.committed == before.disbursed == D("0.00")
    assert before.absorption_rate == D("0") and before.grants == ()
    assert sum(w.grants for w in before.by_window) == 0


def test_generated_report_reconciles_at_every_as_of(facts):
    for as_of in (None, date(2009, 9, 30), date(2010, 3, 31), date(2010, 12, 31), date(2011, 6, 30)):
        report = facts.report(as_of=as_of)
        assert_reconciles(report, facts.tranches, as_of)
    full = facts.report()
    assert full.counts.awards == 55
    assert full.committed == _sum(g.committed for g in facts.grants)


def test_inconsistent_facts_are_refused(small):
    programme, grants, tranches, expenditures, counts = small
    orphan = TrancheFact("G9", 1, D("10.00"), date(2009, 8, 1))
    with pytest.raises(ReportError, match="G9"):
        build_budget_report(programme, grants, tranches + [orphan], expenditures, counts)
    twice = TrancheFact("G1", 1, D("10.00"), date(2009, 8, 2))
    with pytest.raises(ReportError, match="twice"):
        build_budget_report(programme, grants, tranches + [twice], expenditures, counts)
    # a tranche dated before its grant was awarded cannot be counted as of that date
    early = [TrancheFact("G3", 1, D("1.00"), date(2009, 12, 1))]
    with pytest.raises(ReportError, match="G3"):
        build_budget_report(programme, grants, early, [], counts, as_of=date(2009, 12, 31))


def test_counts_accept_a_mapping_or_none(small):
    programme, grants, tranches, expenditures, _ = small
    report = build_budget_report(programme, grants, tranches, expenditures, {"proposals": 10, "eligible_proposals": 4})
    assert (report.counts.proposals, report.counts.eligible_proposals) == (10, 4)
    report = build_budget_report(programme, grants, tranches, expenditures, None)
    assert report.counts.proposals == 0 and report.counts.awards == 3


def test_report_to_json_uses_decimal_strings(small):
    programme, grants, tranches, expenditures, counts = small
    report = build_budget_report(programme, grants, tranches, expenditures, counts, as_of=date(2011, 1, 1))
    data = report_to_json(report)
    text = json.dumps(data)  # plain json: no Decimal, no float left
    assert json.loads(text) == data
    for key in ("envelope_eur", "committed_eur", "contracted_eur", "disbursed_eur", "remaining_eur"):
        assert MONEY.match(data[key]), key
    assert data["committed_eur"] == "400000.00" and data["disbursed_eur"] == "176000.12"
    assert data["remaining_eur"] == "14600000.00"
    assert data["absorption_rate"] == "0.4400"
    assert data["as_of"] == "2011-01-01"
    assert data["counts"] == {"proposals": 547, "eligible_proposals": 310, "awards": 3}
    assert {"window", "name", "allocation_eur", "committed_eur", "disbursed_eur", "grants"} <= set(data["windows"][0])
    assert {"country", "committed_eur", "disbursed_eur", "grants"} <= set(data["countries"][0])
    assert {"grant_id", "reference", "committed_eur", "paid_eur", "outstanding_eur"} <= set(data["grants"][0])
    assert data["years"] and data["applicant_types"] and data["headings"]

    def walk(value):
        assert not isinstance(value, float)
        if isinstance(value, dict):
            for k, v in value.items():
                if k.endswith("_eur"):
                    assert isinstance(v, str) and MONEY.match(v), (k, v)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    assert sum(D(w["committed_eur"]) for w in data["windows"]) == D(data["committed_eur"])
    assert sum(D(c["disbursed_eur"]) for c in data["countries"]) == D(data["disbursed_eur"])
    assert report_to_json(build_budget_report(programme, [], [], [], None))["as_of"] is None


def test_generator_is_seeded_and_realistic():
    a = generate_facts(3, 200, 500)
    b = generate_facts(3, 200, 500)
    assert a.grants == b.grants and a.tranches == b.tranches
    assert generate_facts(4, 200, 500).grants != a.grants
    assert len(a.grants) == 200 and len(a.tranches) <= 500
    assert len(a.tranches) >= 480  # only an exhausted award stops its tranches early
    assert {g.country for g in a.grants} == set(JMDI_COUNTRIES)
    assert {g.window for g in a.grants} == set(JMDI_WINDOWS)
    paid = {}
    for t in a.tranches:
        assert t.amount > 0 and t.amount == t.amount.quantize(D("0.01"))
        paid[t.grant_id] = paid.get(t.grant_id, D(0)) + t.amount
    for g in a.grants:
        assert D("50000.00") <= g.committed <= D("200000.00")
        assert g.committed.as_tuple().exponent == -2
        assert paid.get(g.grant_id, D(0)) <= g.committed
        budget = g.budget_by_heading
        direct = sum((v for k, v in budget.items() if k not in ("contingency", "indirect_costs")), D(0))
        assert budget.get("contingency", D(0)) <= direct * D("0.05")
        assert budget["indirect_costs"] <= (direct + budget.get("contingency", D(0))) * D("0.07")
        assert sum(budget.values(), D(0)) >= g.committed  # the EC share is at most the eligible costs
    for t in a.tranches:
        grant = next(g for g in a.grants if g.grant_id == t.grant_id)
        assert t.value_date > grant.awarded_at
    assert a.counts.proposals >= a.counts.eligible_proposals >= len(a.grants)


def test_the_generator_builds_a_programme_scale_report():
    # how fast is the benchmarks' business (P4), not a test's
    facts = generate_facts(1, 20_000, 60_000)
    report = facts.report()
    assert report.counts.awards == 20_000 and len(facts.tranches) <= 60_000


def test_unknown_window_still_reconciles():
    programme = jmdi_programme()
    grants = [GrantFact("X", "R", "t", "pilot", "MA", "ngo", "org", date(2009, 1, 1), D("1.00"), True)]
    report = build_budget_report(programme, grants, [], [], ProposalCounts())
    assert report.by_window[-1].window == "pilot" and report.by_window[-1].allocation == D("0.00")
    assert_reconciles(report, [])
