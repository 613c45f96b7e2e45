import dataclasses
from decimal import Decimal

import pytest
import yaml

from services.calls.domain import Stage, available_profiles, grid_from_dict, load_profile, profile_from_dict
from services.calls.domain.profile import PROFILES_DIR
from services.common.values.errors import InvalidInput, NotFound


def test_prag_profile(profile):
    assert profile.name == "ec_prag"
    assert (profile.min_grant, profile.max_grant) == (Decimal("50000.00"), Decimal("200000.00"))
    assert profile.max_ec_share == Decimal("0.90")
    assert (profile.contingency_cap, profile.indirect_cap) == (Decimal("0.05"), Decimal("0.07"))
    assert profile.min_assessors == 2
    cn = profile.grid("concept_note")
    assert cn.out_of == 50 and cn.threshold == 30
    assert [(s.code, s.max_points) for s in cn.sections] == [("relevance", 30), ("design", 20)]
    assert cn.criterion("1.1").weight == 2 and cn.criterion("1.3").weight == 1
    fa = profile.grid(Stage.FULL_APPLICATION)
    assert fa.out_of == 100 and fa.threshold == 60
    assert [s.code for s in fa.sections] == ["capacity", "relevance", "methodology", "sustainability", "budget"]
    assert sum(s.max_points for s in fa.sections) == 100


def test_third_assessor_gap_is_scaled_to_the_grid(profile):
    assert profile.third_assessor_gap_for(profile.grid("full_application")) == 20
    assert profile.third_assessor_gap_for(profile.grid("concept_note")) == 10


def test_undp_extends_prag_with_its_differences():
    undp = load_profile("undp")
    prag = load_profile("ec_prag")
    assert undp.name == "undp" and undp.max_ec_share == Decimal("1.00")
    assert undp.grid("full_application").threshold == 65
    assert undp.grid("concept_note") == prag.grid("concept_note")
    assert undp.min_grant == prag.min_grant and undp.indirect_cap == prag.indirect_cap


def test_available_profiles_and_unknown():
    assert {"ec_prag", "undp"} <= set(available_profiles())
    with pytest.raises(NotFound):
        load_profile("world_bank")
    without_grids = dataclasses.replace(load_profile("undp"), grids={})
    with pytest.raises(NotFound):
        without_grids.grid("concept_note")
    with pytest.raises(ValueError):
        without_grids.grid("interview")


@pytest.fixture
def raw():
    with open(PROFILES_DIR / "ec_prag.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def errors_of(data):
    with pytest.raises(InvalidInput) as exc:
        profile_from_dict(data)
    return exc.value.errors


def test_out_of_must_match_the_criteria(raw):
    raw["grids"]["concept_note"]["out_of"] = "45"
    assert "criteria add up to 50" in errors_of(raw)["grids.concept_note.out_of"][0]


def test_profile_validation_names_fields(raw):
    raw["grant"]["min"] = "300000.00"
    raw["grant"]["max_ec_share"] = 0.9
    raw["budget"]["indirect_cap"] = "1.5"
    raw["grids"]["interview"] = {}
    raw["grids"]["concept_note"]["threshold"] = "51"
    raw["grids"]["full_application"]["sections"][0]["criteria"][1]["code"] = "1.1"
    errors = errors_of(raw)
    assert {
        "grant.max",
        "grant.max_ec_share",
        "budget.indirect_cap",
        "grids.interview",
        "grids.concept_note.threshold",
        "grids.full_application.sections.0.criteria.1.code",
    } <= set(errors)


def test_profile_file_with_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nextends: b\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("name: b\nextends: a\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_profile(tmp_path / "a.yaml")


def test_profile_from_a_path_extending_a_packaged_one(tmp_path):
    path = tmp_path / "strict.yaml"
    path.write_text('name: strict\nextends: ec_prag\ngrant: {max_ec_share: "0.80"}\n', encoding="utf-8")
    strict = load_profile(path)
    assert strict.max_ec_share == Decimal("0.80") and strict.max_grant == Decimal("200000.00")


def test_grid_from_dict():
    grid = grid_from_dict(
        "concept_note",
        {
            "out_of": "10",
            "threshold": "6",
            "sections": [
                {
                    "code": "s",
                    "label": "S",
                    "criteria": [{"code": "a", "label": "A", "weight": 1}, {"code": "b", "label": "B"}],
                }
            ],
        },
    )
    assert grid.codes == ("a", "b") and grid.out_of == 10
    with pytest.raises(InvalidInput):
        grid_from_dict("concept_note", {"out_of": "10", "threshold": "6", "sections": []})


def test_profile_document_is_what_a_call_keeps():
    from services.calls.domain import load_profile, profile_document, profile_from_dict

    for name in ("ec_prag", "undp"):
        document = profile_document(name)
        assert "extends" not in document
        assert profile_from_dict(document) == load_profile(name)
    assert profile_document("undp")["grids"]["full_application"]["threshold"] == "65"
