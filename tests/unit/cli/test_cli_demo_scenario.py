"""The demo's data: deterministic, valid for the calls service, within the PRAG budget caps, realistic spread."""

import random
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import yaml

from jmdi import demo, scenario
from jmdi.payload import programme_from_yaml
from services.calls.schemas import SubmitProposal
from services.grants.domain.organisations import validate_iban

STARTING = date(2026, 12, 1)
PROGRAMME = programme_from_yaml(yaml.safe_load(demo.PROGRAMME_FILE.read_text(encoding="utf-8")))


def test_the_same_seed_gives_the_same_call():
    one = scenario.build(PROGRAMME, "JMDI-2008", 60, seed=7, starting=STARTING)
    two = scenario.build(PROGRAMME, "JMDI-2008", 60, seed=7, starting=STARTING)
    other = scenario.build(PROGRAMME, "JMDI-2008", 60, seed=8, starting=STARTING)
    assert [c.payload for c in one.consortia] == [c.payload for c in two.consortia]
    assert [c.payload for c in one.consortia] != [c.payload for c in other.consortia]


def test_every_proposal_passes_the_calls_input_schema_and_the_budget_caps():
    built = scenario.build(PROGRAMME, "JMDI-2008", 300, seed=2008, starting=STARTING)
    for consortium in built.consortia:
        loaded = SubmitProposal().load(consortium.payload)
        budget = loaded["budget"]
        subtotal = sum(
            budget[h]
            for h in (
                "human_resources",
                "travel",
                "equipment_supplies",
                "local_office",
                "other_costs_services",
                "other",
            )
        )
        direct = subtotal + budget["contingency"]
        total = direct + budget["indirect_costs"]
        assert total == loaded["total_eligible_cost_eur"]
        assert budget["contingency"] <= subtotal * Decimal("0.05")
        assert budget["indirect_costs"] <= direct * Decimal("0.07")
        assert Decimal("50000") <= loaded["ec_amount_requested_eur"] <= Decimal("200000")
        assert loaded["ec_amount_requested_eur"] <= total * Decimal("0.90")
        assert loaded["co_financing_eur"] == total - loaded["ec_amount_requested_eur"]


def test_the_call_spreads_over_every_country_and_window_with_some_ineligible():
    built = scenario.build(PROGRAMME, "JMDI-2008", 300, seed=2008, starting=STARTING)
    countries = Counter(c.payload["target_country"] for c in built.consortia)
    windows = Counter(c.payload["window"] for c in built.consortia)
    assert set(countries) == set(PROGRAMME["eligible_countries"]) and len(countries) == 16
    assert set(windows) == {w["code"] for w in PROGRAMME["windows"]}
    flaws = Counter(c.flaw for c in built.consortia)
    assert 3 <= flaws["excluded"] <= 20 and 3 <= flaws["no_eu_partner"] <= 20
    assert len(built.exclusions) == flaws["excluded"]
    assert len({c.lead["name"] for c in built.consortia}) == 300
    eu = set(yaml.safe_load(demo.PROGRAMME_FILE.read_text())["eu_member_states"])
    for consortium in built.consortia:
        has_eu_partner = any(a["country"] in eu for a in consortium.payload["applicants"])
        assert has_eu_partner == (consortium.flaw != "no_eu_partner")


def test_assessors_score_within_the_grid():
    grid = [{"code": c} for c in ("1.1", "1.2", "2.1")]
    rng = random.Random(1)
    for quality in (0.0, 0.5, 1.0):
        scores = scenario.criterion_scores(grid, quality, 0.2, rng)
        assert set(scores) == {"1.1", "1.2", "2.1"} and all(1 <= v <= 5 for v in scores.values())


def test_ibans_are_well_formed_for_every_programme_country():
    rng = random.Random(3)
    for country in PROGRAMME["eligible_countries"]:
        assert validate_iban(demo.iban_for(country, rng))


def test_a_demo_contract_ends_by_the_end_of_the_programme():
    from datetime import date

    assert demo.months_between(date(2026, 12, 1), date(2029, 11, 30)) == 36
    assert demo.months_between(date(2026, 12, 2), date(2029, 11, 30)) == 35
    assert demo.months_between(date(2026, 1, 31), date(2026, 2, 26)) == 0
    assert demo.months_between(date(2026, 1, 31), date(2026, 2, 27)) == 1  # the grants domain's month arithmetic


def test_every_proposal_has_a_logframe_of_two_to_four_indicators_ending_with_its_action():
    from services.common.values.logframe import parse_logframe

    built = scenario.build(PROGRAMME, "JMDI-2008", 60, seed=2008, starting=STARTING)
    for consortium in built.consortia:
        logframe = parse_logframe(consortium.payload["logframe"])
        assert [r["type"] for r in logframe] == ["outcome", "output"]
        indicators = [i for r in logframe for i in r["indicators"]]
        assert 2 <= len(indicators) <= 4
        assert {i["baseline_year"] for i in indicators} == {2026}
        months = consortium.payload["duration_months"]
        ends = date(2026 + (11 + months) // 12, (11 + months) % 12 + 1, 1)  # the first day after the action
        assert {i["target_date"] for i in indicators} == {(ends - timedelta(days=1)).isoformat()}
