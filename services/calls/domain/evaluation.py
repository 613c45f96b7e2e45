"""Scoring: assessments against a stage's grid, a proposal's score, and when a third assessor is needed.

An assessment is validated against the grid before it is accepted, so a total can always be recomputed from the
stored item scores; totals and averages are Decimals with two places (rounded half up like the EC grids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Mapping

from services.common.values.errors import Conflict, InvalidInput

from .profile import Grid, RuleProfile, Stage

POINTS = Decimal("0.01")


def _points(value: Decimal) -> Decimal:
    return Decimal(value).quantize(POINTS, rounding=ROUND_HALF_UP)


def validate_scores(grid: Grid, scores: Mapping) -> dict[str, int]:
    """Every criterion of the grid scored once, each an integer on its scale; InvalidInput names the criteria."""
    errors: dict[str, list[str]] = {}
    if not isinstance(scores, Mapping):
        raise InvalidInput({"scores": ["must map each criterion to a score"]})
    codes = set(grid.codes)
    for code in sorted(set(map(str, scores)) - codes):
        errors[f"scores.{code}"] = [f"unknown criterion for the {grid.stage.value} grid"]
    for criterion in grid.criteria:
        field_name = f"scores.{criterion.code}"
        if criterion.code not in scores:
            errors[field_name] = ["is missing"]
            continue
        value = scores[criterion.code]
        if isinstance(value, bool) or not isinstance(value, int):
            errors[field_name] = [f"must be a whole number from {criterion.scale_min} to {criterion.scale_max}"]
        elif not criterion.scale_min <= value <= criterion.scale_max:
            errors[field_name] = [f"{value} is outside {criterion.scale_min}..{criterion.scale_max}"]
    if errors:
        raise InvalidInput(errors)
    return {c.code: scores[c.code] for c in grid.criteria}


def assessment_total(grid: Grid, scores: Mapping) -> Decimal:
    """Sum of score x weight over the grid (a doubled item counts twice)."""
    valid = validate_scores(grid, scores)
    return _points(sum((c.weight * valid[c.code] for c in grid.criteria), Decimal(0)))


def section_totals(grid: Grid, scores: Mapping) -> dict[str, Decimal]:
    valid = validate_scores(grid, scores)
    weights = {c.code: c.weight for c in grid.criteria}
    return {s.code: _points(sum((weights[c] * valid[c] for c in s.criteria), Decimal(0))) for s in grid.sections}


@dataclass(frozen=True)
class Assessment:
    """One assessor's scores for one proposal at one stage; build it with `Assessment.create` to validate."""

    proposal_id: str
    assessor: str
    stage: Stage
    scores: dict
    total: Decimal
    comments: str = ""

    @classmethod
    def create(
        cls, grid: Grid, *, proposal_id: str, assessor: str, scores: Mapping, comments: str = "", stage=None
    ) -> "Assessment":
        errors: dict[str, list[str]] = {}
        if stage is not None and Stage(stage) is not grid.stage:
            errors["stage"] = [f"{Stage(stage).value} assessment scored on the {grid.stage.value} grid"]
        if not isinstance(assessor, str) or not assessor.strip():
            errors["assessor"] = ["is required"]
        if not isinstance(proposal_id, str) or not proposal_id.strip():
            errors["proposal_id"] = ["is required"]
        if not isinstance(comments, str):
            errors["comments"] = ["must be text"]
        try:
            valid = validate_scores(grid, scores)
        except InvalidInput as exc:
            errors.update(exc.errors)
        if errors:
            raise InvalidInput(errors)
        return cls(proposal_id.strip(), assessor.strip(), grid.stage, valid, assessment_total(grid, valid), comments)


def _totals(assessments: Iterable) -> list[Decimal]:
    items = list(assessments)
    stages = {a.stage for a in items if isinstance(a, Assessment)}
    if len(stages) > 1:
        raise InvalidInput({"assessments": ["mixes stages: score each stage separately"]})
    proposals = {a.proposal_id for a in items if isinstance(a, Assessment)}
    if len(proposals) > 1:
        raise InvalidInput({"assessments": ["belong to different proposals"]})
    assessors = [a.assessor for a in items if isinstance(a, Assessment)]
    if len(assessors) != len(set(assessors)):
        raise InvalidInput({"assessments": ["an assessor scored the same proposal twice"]})
    return [a.total if isinstance(a, Assessment) else Decimal(a) for a in items]


def proposal_score(assessments: Iterable) -> Decimal:
    """Average of the assessors' totals, two places; accepts Assessments or bare totals."""
    totals = _totals(assessments)
    if not totals:
        raise Conflict("assessment.none", "a proposal without assessments has no score")
    return _points(sum(totals, Decimal(0)) / len(totals))


def needs_third_assessor(totals: Iterable, gap: Decimal) -> bool:
    """True when the assessors' totals differ by more than `gap` (exactly `gap` apart is acceptable)."""
    values = [a.total if isinstance(a, Assessment) else Decimal(a) for a in totals]
    return len(values) >= 2 and max(values) - min(values) > Decimal(gap)


@dataclass(frozen=True)
class EvaluationStatus:
    """Where one proposal stands at one stage: can it be scored yet, and does it need another assessor?"""

    assessments: int
    complete: bool
    needs_third_assessor: bool
    score: Decimal | None
    passed: bool | None
    missing: list = field(default_factory=list)


def evaluation_status(profile: RuleProfile, grid: Grid, assessments: Iterable[Assessment]) -> EvaluationStatus:
    """Complete once `min_assessors` have scored and, if their totals diverge beyond the scaled gap,
    one more has; the score is then the average of all totals."""
    items = list(assessments)
    totals = _totals(items)
    missing = []
    if len(items) < profile.min_assessors:
        missing.append(f"{profile.min_assessors - len(items)} more assessment(s)")
    gap = profile.third_assessor_gap_for(grid)
    third = len(items) == profile.min_assessors and needs_third_assessor(totals, gap)
    if third:
        missing.append("a third assessor (totals differ by more than %s)" % gap.normalize())
    complete = not missing
    score = proposal_score(items) if complete else None
    return EvaluationStatus(
        len(items), complete, third, score, None if score is None else score >= grid.threshold, missing
    )
