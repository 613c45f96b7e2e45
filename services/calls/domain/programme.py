"""A funding programme (JMDI) and its windows, loaded from a reviewed data file rather than hard-coded.

The founding documents leave some facts unconfirmed (the country list): keeping them as data means a correction
is a data change, not a code change. The same validation serves the YAML file and RPC/storage dicts.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import yaml

from services.common.values.errors import InvalidInput, NotFound
from services.common.values.money import money_str

from . import _parse as p

PROGRAMMES_DIR = p.DATA_DIR / "programmes"


@dataclass(frozen=True)
class Window:
    """A call window ("fenêtre"): a theme with its share of the EC contribution."""

    code: str
    name_en: str
    name_fr: str
    allocation: Decimal

    def name(self, language: str = "en") -> str:
        return self.name_fr if language == "fr" else self.name_en


@dataclass(frozen=True)
class Programme:
    id: str
    name: str
    funder: str
    administered_by: str
    budget_line: str
    ec_contribution: Decimal
    period_start: date
    period_end: date
    eligible_countries: tuple[str, ...]
    eu_member_states: tuple[str, ...]
    windows: tuple[Window, ...]
    rule_profile: str
    name_fr: str | None = None
    budget_line_fr: str | None = None
    currency: str = "EUR"

    @property
    def window_codes(self) -> tuple[str, ...]:
        return tuple(w.code for w in self.windows)

    @property
    def total_allocated(self) -> Decimal:
        return sum((w.allocation for w in self.windows), Decimal("0.00"))

    def window(self, code: str) -> Window:
        for w in self.windows:
            if w.code == code:
                return w
        raise NotFound("window", code)

    def has_window(self, code: str) -> bool:
        return code in self.window_codes

    def is_eligible_country(self, country: str) -> bool:
        return isinstance(country, str) and country.upper() in self.eligible_countries

    def is_eu_member_state(self, country: str) -> bool:
        return isinstance(country, str) and country.upper() in self.eu_member_states


ON_LOAD = "on_load"  # `period: {start: on_load, months: 36}`: the period starts the day the programme is loaded


def load_programme(path, loaded_on: date | None = None) -> Programme:
    """Read and validate a programme YAML file; a bare id ("jmdi") means the packaged data file. `loaded_on`
    anchors a period that starts on the day of loading."""
    return programme_from_dict(read_programme_file(path), loaded_on)


def read_programme_file(path) -> dict:
    """The definition in a programme YAML file, unvalidated; a bare id ("jmdi") means the packaged data file."""
    path = Path(path)
    if not path.suffix and len(path.parts) == 1:
        # a bare id, whatever happens to exist under that name in the working directory (e.g. the jmdi/ package)
        path = PROGRAMMES_DIR / f"{path.name.lower()}.yaml"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound("programme file", str(path)) from None
    except yaml.YAMLError as exc:
        raise InvalidInput({"_file": [f"not valid YAML: {exc}"]}) from None


FIELDS = frozenset(
    {
        "id",
        "name",
        "name_fr",
        "funder",
        "administered_by",
        "budget_line",
        "budget_line_fr",
        "currency",
        "ec_contribution",
        "period",
        "rule_profile",
        "eligible_countries",
        "eu_member_states",
        "windows",
    }
)
WINDOW_FIELDS = frozenset({"code", "name_en", "name_fr", "allocation"})


def starts_on_load(data) -> bool:
    """The definition's period starts on the day it is loaded (rather than on a fixed date)."""
    return isinstance(data, dict) and isinstance(data.get("period"), dict) and data["period"].get("start") == ON_LOAD


def programme_from_dict(data: dict, loaded_on: date | None = None) -> Programme:
    """Build a Programme from a file or RPC dict; raises InvalidInput naming every bad field.

    The period is `{start, end}` (dates), or `{start: on_load, months: N}`: N months from `loaded_on`, the day the
    programme is loaded — a programme replayed now (the shipped JMDI file) keeps its calls' deadlines, awards and
    contracts within a period that has not ended. Unknown keys are refused too: a misspelt key in a data file
    would otherwise be silently ignored."""
    errors = p.Errors()
    if not isinstance(data, dict):
        errors.add("_schema", "a programme must be a mapping")
        errors.raise_if_any()
    for key in sorted(set(map(str, data)) - FIELDS):
        errors.add(key, "unknown field")

    pid = p.text(data.get("id"), "id", errors)
    name = p.text(data.get("name"), "name", errors)
    funder = p.text(data.get("funder"), "funder", errors)
    administered_by = p.text(data.get("administered_by"), "administered_by", errors)
    budget_line = p.text(data.get("budget_line"), "budget_line", errors)
    name_fr = p.text(data.get("name_fr"), "name_fr", errors, required=False)
    budget_line_fr = p.text(data.get("budget_line_fr"), "budget_line_fr", errors, required=False)
    currency = data.get("currency", "EUR")
    if currency != "EUR":
        errors.add("currency", "only EUR is supported")
    contribution = p.money(data.get("ec_contribution"), "ec_contribution", errors, minimum=Decimal("0.01"))

    start, end = _period(data.get("period"), loaded_on, errors)

    eligible = p.country_list(data.get("eligible_countries"), "eligible_countries", errors)
    eu = p.country_list(data.get("eu_member_states"), "eu_member_states", errors)

    profile_name = p.code(data.get("rule_profile"), "rule_profile", errors)
    if profile_name is not None:
        from .profile import available_profiles

        if profile_name not in available_profiles():
            errors.add("rule_profile", f"unknown rule profile {profile_name!r}")

    windows = _windows(data.get("windows"), contribution, errors)
    errors.raise_if_any(None)
    return Programme(
        id=p.checked(pid),
        name=p.checked(name),
        funder=p.checked(funder),
        administered_by=p.checked(administered_by),
        budget_line=p.checked(budget_line),
        ec_contribution=p.checked(contribution),
        period_start=p.checked(start),
        period_end=p.checked(end),
        eligible_countries=eligible,
        eu_member_states=eu,
        windows=windows,
        rule_profile=p.checked(profile_name),
        name_fr=name_fr,
        budget_line_fr=budget_line_fr,
        currency="EUR",
    )


def _period(period, loaded_on: date | None, errors: p.Errors) -> tuple[date | None, date | None]:
    if not isinstance(period, dict):
        errors.add("period", "is required (start and end dates, or start: on_load and months)")
        return None, None
    if period.get("start") == ON_LOAD:
        for key in sorted(set(map(str, period)) - {"start", "months"}):
            errors.add(f"period.{key}", "unknown field (a period starting on load has start and months)")
        months = p.integer(period.get("months"), "period.months", errors, low=1, high=240)
        if loaded_on is None:
            errors.add("period.start", "on_load needs the day the programme is loaded")
        if months is None or loaded_on is None:
            return None, None
        return loaded_on, _months_later(loaded_on, months) - timedelta(days=1)
    for key in sorted(set(map(str, period)) - {"start", "end"}):
        errors.add(f"period.{key}", "unknown field")
    start = p.a_date(period.get("start"), "period.start", errors)
    end = p.a_date(period.get("end"), "period.end", errors)
    if start and end and end <= start:
        errors.add("period.end", "must be after period.start")
    return start, end


def _months_later(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _windows(raw, contribution: Decimal | None, errors: p.Errors) -> tuple[Window, ...]:
    if not isinstance(raw, list) or not raw:
        errors.add("windows", "must be a non-empty list")
        return ()
    windows: list[Window] = []
    seen: set[str] = set()
    total = Decimal("0.00")
    for i, item in enumerate(raw):
        field = f"windows.{i}"
        if not isinstance(item, dict):
            errors.add(field, "must be a mapping")
            continue
        for key in sorted(set(map(str, item)) - WINDOW_FIELDS):
            errors.add(f"{field}.{key}", "unknown field")
        code = p.code(item.get("code"), f"{field}.code", errors)
        if code is not None and code in seen:
            errors.add(f"{field}.code", f"duplicate window {code!r}")
            code = None
        name_en = p.text(item.get("name_en"), f"{field}.name_en", errors)
        name_fr = p.text(item.get("name_fr"), f"{field}.name_fr", errors)
        allocation = p.money(item.get("allocation"), f"{field}.allocation", errors)
        if allocation is not None:
            total += allocation
        if code is None or name_en is None or name_fr is None or allocation is None:
            continue
        seen.add(code)
        windows.append(Window(code, name_en, name_fr, allocation))
    if contribution is not None and total > contribution:
        errors.add(
            "windows", f"allocations sum to {money_str(total)}, more than the EC contribution {money_str(contribution)}"
        )
    return tuple(windows)


def programme_to_dict(programme: Programme) -> dict:
    """JSON-safe form for storage and RPC: money as decimal strings, dates as ISO strings."""
    return {
        "id": programme.id,
        "name": programme.name,
        "name_fr": programme.name_fr,
        "funder": programme.funder,
        "administered_by": programme.administered_by,
        "budget_line": programme.budget_line,
        "budget_line_fr": programme.budget_line_fr,
        "currency": programme.currency,
        "ec_contribution": money_str(programme.ec_contribution),
        "period": {"start": programme.period_start.isoformat(), "end": programme.period_end.isoformat()},
        "rule_profile": programme.rule_profile,
        "eligible_countries": list(programme.eligible_countries),
        "eu_member_states": list(programme.eu_member_states),
        "windows": [
            {"code": w.code, "name_en": w.name_en, "name_fr": w.name_fr, "allocation": money_str(w.allocation)}
            for w in programme.windows
        ],
    }
