"""Grant rule profiles (EC PRAG, UNDP) and their evaluation grids, as data.

The design says the profile is chosen per programme and that thresholds are configuration: so caps, grant bounds,
grids and thresholds live in YAML and the code only interprets them. A profile may `extends:` another one
(mappings are deep-merged, lists replaced) so that UNDP states only where it differs from PRAG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path

import yaml

from services.common.values.errors import InvalidInput, NotFound

from . import _parse as p

PROFILES_DIR = p.DATA_DIR / "profiles"


class Stage(str, Enum):
    """The two scored stages of the evaluation (design §2)."""

    CONCEPT_NOTE = "concept_note"
    FULL_APPLICATION = "full_application"


@dataclass(frozen=True)
class Criterion:
    """One scored item: the assessor gives 1..5, the grid multiplies by `weight` (2 = "doubled")."""

    code: str
    label: str
    section: str
    weight: Decimal = Decimal("1")
    scale_min: int = 1
    scale_max: int = 5

    @property
    def max_points(self) -> Decimal:
        return self.weight * self.scale_max


@dataclass(frozen=True)
class Section:
    code: str
    label: str
    criteria: tuple[str, ...]
    max_points: Decimal


@dataclass(frozen=True)
class Grid:
    """An evaluation grid for one stage; `out_of` is checked against the criteria so the file cannot lie."""

    stage: Stage
    out_of: Decimal
    threshold: Decimal
    sections: tuple[Section, ...]
    criteria: tuple[Criterion, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.criteria)

    def criterion(self, code: str) -> Criterion:
        for c in self.criteria:
            if c.code == code:
                return c
        raise NotFound("criterion", code)


@dataclass(frozen=True)
class RuleProfile:
    name: str
    label: str
    min_grant: Decimal
    max_grant: Decimal
    max_ec_share: Decimal
    contingency_cap: Decimal
    indirect_cap: Decimal
    min_assessors: int
    third_assessor_gap: Decimal
    gap_basis: Decimal
    grids: dict = field(default_factory=dict)  # Stage -> Grid
    min_duration_months: int | None = None
    max_duration_months: int | None = None
    currency_conversion: str = "ec_monthly"  # ec_monthly | ec_prefinancing | undp_monthly (grants converts)

    def grid(self, stage) -> Grid:
        stage = Stage(stage)
        if stage not in self.grids:
            raise NotFound("grid", stage.value)
        return self.grids[stage]

    def third_assessor_gap_for(self, grid: Grid) -> Decimal:
        """The gap is stated on a /100 basis; a /50 concept note grid uses the proportional gap (20 -> 10)."""
        return self.third_assessor_gap * grid.out_of / self.gap_basis


CONVERSION_RULES = ("ec_monthly", "ec_prefinancing", "undp_monthly")


def available_profiles() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in PROFILES_DIR.glob("*.yaml")))


def load_profile(name_or_path) -> RuleProfile:
    """Load a profile by name ("ec_prag") from the packaged data, or from a YAML file path."""
    return profile_from_dict(_read(name_or_path, seen=()))


def profile_document(name_or_path) -> dict:
    """The profile as one plain mapping (`extends` resolved): what a call keeps as its own copy of the rules,
    so that `profile_from_dict(profile_document(x)) == load_profile(x)`."""
    return _read(name_or_path, seen=())


def _read(name_or_path, seen: tuple) -> dict:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound("rule profile", str(name_or_path)) from None
    except yaml.YAMLError as exc:
        raise InvalidInput({"_file": [f"not valid YAML: {exc}"]}) from None
    if not isinstance(data, dict):
        raise InvalidInput({"_schema": ["a rule profile must be a mapping"]})
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if parent in seen:
        raise InvalidInput({"extends": [f"circular extends through {parent!r}"]})
    parent_path = path.parent / f"{parent}.yaml"
    base = _read(parent_path if parent_path.exists() else parent, seen + (data.get("name"),))
    return _merge(base, data)


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def profile_from_dict(data: dict) -> RuleProfile:
    errors = p.Errors()
    name = p.code(data.get("name"), "name", errors)
    label = p.text(data.get("label", name), "label", errors)
    grant = data.get("grant") or {}
    budget = data.get("budget") or {}
    assessment = data.get("assessment") or {}
    duration = data.get("duration_months") or {}

    min_grant = p.money(grant.get("min"), "grant.min", errors, minimum=Decimal("0.01"))
    max_grant = p.money(grant.get("max"), "grant.max", errors, minimum=Decimal("0.01"))
    if min_grant and max_grant and min_grant > max_grant:
        errors.add("grant.max", "must not be below grant.min")
    share = p.decimal(grant.get("max_ec_share"), "grant.max_ec_share", errors, Decimal("0.01"), Decimal("1"))
    contingency = p.decimal(budget.get("contingency_cap"), "budget.contingency_cap", errors, Decimal(0), Decimal(1))
    indirect = p.decimal(budget.get("indirect_cap"), "budget.indirect_cap", errors, Decimal(0), Decimal(1))
    min_dur = p.integer(duration.get("min"), "duration_months.min", errors, low=1, required=False)
    max_dur = p.integer(duration.get("max"), "duration_months.max", errors, low=1, required=False)
    if min_dur and max_dur and min_dur > max_dur:
        errors.add("duration_months.max", "must not be below duration_months.min")
    min_assessors = p.integer(assessment.get("min_assessors"), "assessment.min_assessors", errors, low=1)
    gap = p.decimal(assessment.get("third_assessor_gap"), "assessment.third_assessor_gap", errors, low=Decimal(0))
    basis = p.decimal(assessment.get("gap_basis", "100"), "assessment.gap_basis", errors, low=Decimal("1"))

    grids = {}
    raw_grids = data.get("grids")
    if not isinstance(raw_grids, dict) or not raw_grids:
        errors.add("grids", "must map each stage to a grid")
    else:
        for stage_name, raw in raw_grids.items():
            try:
                stage = Stage(stage_name)
            except ValueError:
                errors.add(f"grids.{stage_name}", f"unknown stage (expected one of {[s.value for s in Stage]})")
                continue
            grid = _grid(stage, raw, f"grids.{stage_name}", errors)
            if grid is not None:
                grids[stage] = grid
    conversion = data.get("currency_conversion", "ec_monthly")
    if conversion not in CONVERSION_RULES:
        errors.add("currency_conversion", f"must be one of {list(CONVERSION_RULES)}")
    errors.raise_if_any()
    return RuleProfile(
        name=p.checked(name),
        currency_conversion=conversion,
        label=p.checked(label),
        min_grant=p.checked(min_grant),
        max_grant=p.checked(max_grant),
        max_ec_share=p.checked(share),
        contingency_cap=p.checked(contingency),
        indirect_cap=p.checked(indirect),
        min_assessors=p.checked(min_assessors),
        third_assessor_gap=p.checked(gap),
        gap_basis=p.checked(basis),
        grids=grids,
        min_duration_months=min_dur,
        max_duration_months=max_dur,
    )


def grid_from_dict(stage, raw: dict) -> Grid:
    """Build one grid (used by tests and by callers that keep a grid outside a profile)."""
    errors = p.Errors()
    grid = _grid(Stage(stage), raw, "grid", errors)
    errors.raise_if_any()
    return p.checked(grid)


def _grid(stage: Stage, raw, field: str, errors: p.Errors) -> Grid | None:
    if not isinstance(raw, dict):
        errors.add(field, "must be a mapping")
        return None
    before = len(errors.errors)
    out_of = p.decimal(raw.get("out_of"), f"{field}.out_of", errors, low=Decimal("1"))
    threshold = p.decimal(raw.get("threshold"), f"{field}.threshold", errors, low=Decimal("0"))
    sections: list[Section] = []
    criteria: list[Criterion] = []
    codes: set[str] = set()
    raw_sections = raw.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        errors.add(f"{field}.sections", "must be a non-empty list")
        raw_sections = []
    for i, sec in enumerate(raw_sections):
        sfield = f"{field}.sections.{i}"
        if not isinstance(sec, dict):
            errors.add(sfield, "must be a mapping")
            continue
        scode = p.code(sec.get("code"), f"{sfield}.code", errors)
        slabel = p.text(sec.get("label"), f"{sfield}.label", errors)
        items = sec.get("criteria")
        if not isinstance(items, list) or not items:
            errors.add(f"{sfield}.criteria", "must be a non-empty list")
            continue
        section_codes = []
        points = Decimal(0)
        for j, item in enumerate(items):
            cfield = f"{sfield}.criteria.{j}"
            if not isinstance(item, dict):
                errors.add(cfield, "must be a mapping")
                continue
            ccode = item.get("code")
            if not isinstance(ccode, str) or not ccode.strip():
                errors.add(f"{cfield}.code", "must be a non-empty string")
                continue
            if ccode in codes:
                errors.add(f"{cfield}.code", f"duplicate criterion {ccode!r}")
                continue
            clabel = p.text(item.get("label"), f"{cfield}.label", errors)
            weight = p.decimal(item.get("weight", 1), f"{cfield}.weight", errors, low=Decimal("0.01"))
            if clabel is None or weight is None:
                continue
            codes.add(ccode)
            criterion = Criterion(ccode, clabel, scode or "", weight)
            criteria.append(criterion)
            section_codes.append(ccode)
            points += criterion.max_points
        if scode and slabel:
            sections.append(Section(scode, slabel, tuple(section_codes), points))
    total = sum((c.max_points for c in criteria), Decimal(0))
    if out_of is not None and criteria and total != out_of:
        errors.add(f"{field}.out_of", f"is {out_of} but the criteria add up to {total}")
    if out_of is not None and threshold is not None and threshold > out_of:
        errors.add(f"{field}.threshold", f"must not exceed out_of ({out_of})")
    if len(errors.errors) > before or out_of is None or threshold is None:  # (a None left an error)
        return None
    return Grid(stage, out_of, threshold, tuple(sections), tuple(criteria))
