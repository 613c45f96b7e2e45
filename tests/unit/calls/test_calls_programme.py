import copy
from datetime import date
from decimal import Decimal

import pytest
import yaml

from services.calls.domain import load_programme, programme_from_dict, programme_to_dict
from services.common.values.errors import InvalidInput, NotFound

JMDI_COUNTRIES = {"MA", "DZ", "CV", "EC", "EG", "ET", "GE", "GH", "JM", "ML", "MD", "NG", "PH", "SN", "LK", "TN"}


def test_jmdi_file_holds_the_founding_facts(programme):
    """Loaded on 2008-12-01, the shipped file's 36 months are the founding documents' period."""
    assert programme.id == "JMDI"
    assert programme.funder == "European Commission"
    assert programme.administered_by == "UNDP"
    assert programme.budget_line == "Migration and Asylum"
    assert programme.budget_line_fr == "Migration et Asile"
    assert programme.ec_contribution == Decimal("15000000.00")
    assert (programme.period_start, programme.period_end) == (date(2008, 12, 1), date(2011, 11, 30))
    assert set(programme.eligible_countries) == JMDI_COUNTRIES and len(programme.eligible_countries) == 16
    assert programme.rule_profile == "ec_prag"
    assert programme.window_codes == ("remittances", "migrant_communities", "migrant_associations", "migrants_rights")
    assert programme.total_allocated == programme.ec_contribution
    assert programme.window("remittances").name("fr") == "Transfert de fonds des immigrés"
    assert programme.window("migrants_rights").name() == "Migrants' rights"


def test_the_shipped_programme_runs_36_months_from_the_day_it_is_loaded():
    loaded = load_programme("jmdi", loaded_on=date(2026, 3, 31))
    assert (loaded.period_start, loaded.period_end) == (date(2026, 3, 31), date(2029, 3, 30))
    with pytest.raises(InvalidInput) as missing:
        load_programme("jmdi")
    assert missing.value.errors == {"period.start": ["on_load needs the day the programme is loaded"]}


def test_a_period_starting_on_load_gives_months_and_nothing_else(raw):
    raw["period"] = {"start": "on_load", "months": 0, "end": "2011-11-30"}
    with pytest.raises(InvalidInput) as refused:
        programme_from_dict(raw, date(2026, 1, 1))
    assert set(refused.value.errors) == {"period.months", "period.end"}


def test_eu_member_states_are_data(programme):
    assert len(programme.eu_member_states) == 27
    assert programme.is_eu_member_state("fr") and programme.is_eu_member_state("GR")
    assert not programme.is_eu_member_state("MA")
    assert programme.is_eligible_country("ma") and not programme.is_eligible_country("FR")


def test_unknown_window_is_not_found(programme):
    with pytest.raises(NotFound):
        programme.window("tourism")


def test_round_trip_through_dict(programme):
    data = programme_to_dict(programme)
    assert data["ec_contribution"] == "15000000.00"
    assert data["windows"][0]["allocation"] == "3750000.00"
    assert data["period"] == {"start": "2008-12-01", "end": "2011-11-30"}
    assert programme_from_dict(data) == programme


@pytest.fixture
def raw(programme):
    return copy.deepcopy(programme_to_dict(programme))


def invalid(data) -> dict:
    with pytest.raises(InvalidInput) as exc:
        programme_from_dict(data)
    return exc.value.errors


def test_unknown_country_codes_are_named(raw):
    raw["eligible_countries"][2] = "XX"
    raw["eu_member_states"].append("EL")  # EU usage for Greece, not ISO 3166
    errors = invalid(raw)
    assert "unknown" in errors["eligible_countries.2"][0]
    assert "eu_member_states.27" in errors


def test_duplicate_country_and_window(raw):
    raw["eligible_countries"].append("MA")
    raw["windows"][1]["code"] = "remittances"
    errors = invalid(raw)
    assert "duplicate country" in errors["eligible_countries.16"][0]
    assert "duplicate window" in errors["windows.1.code"][0]


def test_allocations_may_equal_but_not_exceed_contribution(raw):
    raw["windows"][0]["allocation"] = "3749999.99"
    assert programme_from_dict(raw).total_allocated == Decimal("14999999.99")
    raw["windows"][0]["allocation"] = "3750000.01"
    assert "more than the EC contribution" in invalid(raw)["windows"][0]


def test_money_must_not_be_a_float(raw):
    raw["ec_contribution"] = 15000000.0
    raw["windows"][0]["allocation"] = "12.345"
    errors = invalid(raw)
    assert "float" in errors["ec_contribution"][0]
    assert "decimal places" in errors["windows.0.allocation"][0]


def test_every_problem_reported_at_once(raw):
    del raw["funder"]
    raw["period"] = {"start": "2011-11-30", "end": "2008-12-01"}
    raw["rule_profile"] = "world_bank"
    raw["windows"] = []
    raw["currency"] = "USD"
    errors = invalid(raw)
    assert {"funder", "period.end", "rule_profile", "windows", "currency"} <= set(errors)


def test_window_needs_both_names_and_a_code(raw):
    raw["windows"][3] = {"code": "Migrants Rights", "name_en": "", "allocation": "1.00"}
    errors = invalid(raw)
    assert {"windows.3.code", "windows.3.name_en", "windows.3.name_fr"} <= set(errors)


def test_load_programme_from_path_and_errors(tmp_path, raw):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert load_programme(path).id == "JMDI"  # fixed dates: no day of loading needed
    with pytest.raises(NotFound):
        load_programme(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_programme(bad)
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_programme(not_a_mapping)


def test_unknown_fields_are_named_not_ignored(raw):
    raw["ec_contributon"] = "1.00"
    raw["windows"][0]["allocaton"] = "1.00"
    errors = invalid(raw)
    assert errors["ec_contributon"] == ["unknown field"]
    assert errors["windows.0.allocaton"] == ["unknown field"]


def test_a_bare_id_means_the_shipped_file_whatever_the_working_directory_holds(tmp_path, monkeypatch):
    (tmp_path / "jmdi").mkdir()  # e.g. the jmdi/ CLI package at the repository root
    monkeypatch.chdir(tmp_path)
    assert load_programme("jmdi", date.today()).id == "JMDI"
    assert load_programme("JMDI", date.today()).id == "JMDI"
