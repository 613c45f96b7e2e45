from decimal import Decimal

import pytest

from services.calls.domain import (
    Assessment,
    Stage,
    assessment_total,
    evaluation_status,
    needs_third_assessor,
    proposal_score,
    section_totals,
    validate_scores,
)
from services.common.values.errors import Conflict, InvalidInput


def all_(grid, value):
    return {code: value for code in grid.codes}


@pytest.fixture
def cn(profile):
    return profile.grid("concept_note")


@pytest.fixture
def fa(profile):
    return profile.grid("full_application")


def test_totals_with_doubled_items(cn, fa):
    assert assessment_total(cn, all_(cn, 5)) == Decimal("50.00")
    assert assessment_total(cn, all_(cn, 1)) == Decimal("10.00")
    assert assessment_total(fa, all_(fa, 5)) == Decimal("100.00")
    scores = all_(cn, 3) | {"1.1": 5}  # doubled item: +4 over all-3
    assert assessment_total(cn, scores) == Decimal("34.00")
    scores = all_(cn, 3) | {"1.3": 5}  # single item: +2
    assert assessment_total(cn, scores) == Decimal("32.00")


def test_section_totals(cn):
    assert section_totals(cn, all_(cn, 5)) == {"relevance": Decimal("30.00"), "design": Decimal("20.00")}


def test_scores_validation_names_criteria(cn):
    scores = all_(cn, 3)
    del scores["2.2"]
    scores.update({"1.1": 6, "1.2": 0, "1.3": 2.5, "1.4": True, "9.9": 3})
    with pytest.raises(InvalidInput) as exc:
        validate_scores(cn, scores)
    assert set(exc.value.errors) == {"scores.2.2", "scores.1.1", "scores.1.2", "scores.1.3", "scores.1.4", "scores.9.9"}
    assert exc.value.errors["scores.2.2"] == ["is missing"]
    with pytest.raises(InvalidInput):
        validate_scores(cn, [3, 3])


@pytest.mark.parametrize("edge", [1, 5])
def test_scale_edges_accepted(cn, edge):
    assert validate_scores(cn, all_(cn, edge)) == all_(cn, edge)


def test_assessment_create(cn):
    a = Assessment.create(cn, proposal_id="P-1", assessor="alice", scores=all_(cn, 4), comments="Solid.")
    assert a.stage is Stage.CONCEPT_NOTE and a.total == Decimal("40.00")
    with pytest.raises(InvalidInput) as exc:
        Assessment.create(cn, proposal_id="", assessor=" ", scores={}, stage="full_application")
    assert {"proposal_id", "assessor", "stage", "scores.1.1"} <= set(exc.value.errors)


def test_proposal_score_is_the_average_rounded_half_up(cn):
    assert proposal_score([Decimal("40"), Decimal("35")]) == Decimal("37.50")
    assert proposal_score(["33", "34", "34"]) == Decimal("33.67")
    assert proposal_score([Decimal("0.005")]) == Decimal("0.01")
    a = Assessment.create(cn, proposal_id="P-1", assessor="a", scores=all_(cn, 4))
    b = Assessment.create(cn, proposal_id="P-1", assessor="b", scores=all_(cn, 3))
    assert proposal_score([a, b]) == Decimal("35.00")
    with pytest.raises(Conflict):
        proposal_score([])


def test_proposal_score_refuses_mixed_input(cn, fa):
    a = Assessment.create(cn, proposal_id="P-1", assessor="a", scores=all_(cn, 4))
    with pytest.raises(InvalidInput):
        proposal_score([a, Assessment.create(fa, proposal_id="P-1", assessor="b", scores=all_(fa, 4))])
    with pytest.raises(InvalidInput):
        proposal_score([a, Assessment.create(cn, proposal_id="P-2", assessor="b", scores=all_(cn, 4))])
    with pytest.raises(InvalidInput):
        proposal_score([a, Assessment.create(cn, proposal_id="P-1", assessor="a", scores=all_(cn, 2))])


@pytest.mark.parametrize(
    "totals, gap, expected",
    [
        (["80", "60"], "20", False),  # exactly the gap: acceptable
        (["80.00", "59.99"], "20", True),
        (["40", "30"], "10", False),
        (["40", "29"], "10", True),
        (["70"], "20", False),
        ([], "20", False),
    ],
)
def test_needs_third_assessor(totals, gap, expected):
    assert needs_third_assessor([Decimal(t) for t in totals], Decimal(gap)) is expected


def test_evaluation_status(profile, cn):
    def assess(who, value):
        return Assessment.create(cn, proposal_id="P-1", assessor=who, scores=all_(cn, value))

    one = evaluation_status(profile, cn, [assess("a", 4)])
    assert not one.complete and one.score is None and one.passed is None
    close = evaluation_status(profile, cn, [assess("a", 4), assess("b", 3)])  # 40 vs 30: gap 10 on /50, ok
    assert close.complete and close.score == Decimal("35.00") and close.passed
    far = evaluation_status(profile, cn, [assess("a", 5), assess("b", 3)])  # 50 vs 30: > 10
    assert far.needs_third_assessor and not far.complete
    third = evaluation_status(profile, cn, [assess("a", 5), assess("b", 3), assess("c", 2)])
    assert third.complete and not third.needs_third_assessor and third.score == Decimal("33.33")
    low = evaluation_status(profile, cn, [assess("a", 3), assess("b", 2)])  # 30 and 20 -> 25 < 30
    assert low.complete and low.passed is False


def test_a_score_exactly_at_the_threshold_passes(profile, cn, fa):
    def assess(who, scores, grid=cn):
        return Assessment.create(grid, proposal_id="P-1", assessor=who, scores=scores)

    at = evaluation_status(profile, cn, [assess("a", all_(cn, 3)), assess("b", all_(cn, 3))])
    assert at.score == Decimal("30.00") == cn.threshold and at.passed is True
    below = evaluation_status(profile, cn, [assess("a", all_(cn, 3)), assess("b", all_(cn, 3) | {"1.3": 2})])
    assert below.score == Decimal("29.50") and below.passed is False
    full = evaluation_status(profile, fa, [assess("a", all_(fa, 3), fa), assess("b", all_(fa, 3), fa)])
    assert full.score == Decimal("60.00") == fa.threshold and full.passed is True


def test_the_gap_on_the_full_application_is_20_points(profile, fa):
    def assess(who, scores):
        return Assessment.create(fa, proposal_id="P-1", assessor=who, scores=scores)

    at_gap = evaluation_status(profile, fa, [assess("a", all_(fa, 5)), assess("b", all_(fa, 4))])  # 100 vs 80
    assert at_gap.complete and at_gap.score == Decimal("90.00")
    beyond = evaluation_status(profile, fa, [assess("a", all_(fa, 5)), assess("b", all_(fa, 4) | {"1.1": 3})])
    assert beyond.needs_third_assessor and not beyond.complete and beyond.score is None
