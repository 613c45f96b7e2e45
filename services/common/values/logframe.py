"""The logical framework of an action: outcomes and outputs (IATI result types 2 and 1), each with indicators.

One module for the three services that handle it, so a logframe means the same thing in a proposal (calls), in
a contract and its amendments (grants) and in the EC and IATI reports (reporting). A logframe travels as plain
data (its wire form), which `parse_logframe` checks and normalises:

    [{"type": "outcome" | "output", "title": str, "indicators": [
        {"code": "OC1.1", "title": str, "measure": "unit" | "percentage" | "qualitative",
         "unit": str (what is counted; required for measure unit), "baseline_value": str, "baseline_year": int,
         "target_value": str, "target_date": "YYYY-MM-DD", "source_of_verification": str}, ...]}, ...]

Numeric values (measure unit or percentage) are decimal strings (never floats), at least 0, a percentage at most
100; a qualitative indicator's values are short texts. Indicator codes are unique within the logframe: reports
give actual values by code. Every refusal is an InvalidInput naming the field path ("logframe.0.indicators.1.
target_value"); nothing is guessed.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from .errors import InvalidInput

RESULT_TYPES = {"output": "1", "outcome": "2"}  # IATI ResultType codelist
MEASURES = {"unit": "1", "percentage": "2", "qualitative": "5"}  # IATI IndicatorMeasure codelist
NUMERIC = ("unit", "percentage")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, exactly: one regex, not a lookup per character
MAX_RESULTS = 30
MAX_INDICATORS = 20
MAX_VALUE_PLACES = 4
MAX_NUMBER = Decimal("1000000000000")
TITLE_MAX, UNIT_MAX, VALUE_MAX, SOURCE_MAX = 300, 60, 500, 500
RESULT_KEYS = {"type", "title", "indicators"}
INDICATOR_KEYS = {
    "code",
    "title",
    "measure",
    "unit",
    "baseline_value",
    "baseline_year",
    "target_value",
    "target_date",
    "source_of_verification",
}


class _Errors(dict[str, list[str]]):
    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)


def clean_text(value, field: str, errors: _Errors, max_length: int, required: bool = True) -> str | None:
    """A single-line text: a string, not empty (when required), no control characters, at most max_length."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(field, "is required")
        return "" if not required else None
    if not isinstance(value, str):
        errors.add(field, "must be a string")
        return None
    value = value.strip()
    if _CONTROL.search(value):
        errors.add(field, "must not contain control characters")
        return None
    if len(value) > max_length:
        errors.add(field, f"must be at most {max_length} characters")
        return None
    return value


def indicator_value(value, measure: str | None, field: str, errors: _Errors) -> str | None:
    """A value of an indicator in its measure: a decimal string for unit/percentage, a short text otherwise."""
    if measure not in NUMERIC:
        return clean_text(value, field, errors, VALUE_MAX)
    if isinstance(value, (bool, float)):
        errors.add(field, "must be a decimal string such as '120' or '35.5', not a float")
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, (str, Decimal)):
        errors.add(field, "is required" if value is None else "must be a decimal string")
        return None
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else value
    except InvalidOperation:
        errors.add(field, "must be a decimal number")
        return None
    if not number.is_finite() or number < 0 or number > MAX_NUMBER:
        errors.add(field, "must be a number from 0")
        return None
    exponent = number.as_tuple().exponent  # an int: the number is finite
    if isinstance(exponent, int) and exponent < -MAX_VALUE_PLACES and number != round(number, MAX_VALUE_PLACES):
        errors.add(field, f"must have at most {MAX_VALUE_PLACES} decimal places")
        return None
    if measure == "percentage" and number > 100:
        errors.add(field, "a percentage is at most 100")
        return None
    return format(number.normalize(), "f") if number == number.to_integral() else format(number, "f")


def _year(value, field: str, errors: _Errors) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1900 <= value <= 2100:
        errors.add(field, "must be a year (an integer from 1900 to 2100)")
        return None
    return value


def _date(value, field: str, errors: _Errors) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    errors.add(field, "must be a date (YYYY-MM-DD)")
    return None


def parse_indicator(raw, field: str, errors: _Errors) -> dict | None:
    if not isinstance(raw, dict):
        errors.add(field, "must be an object")
        return None
    for key in sorted(set(raw) - INDICATOR_KEYS, key=str):
        errors.add(f"{field}.{key}", "unknown field")
    measure = raw.get("measure")
    if measure not in MEASURES:
        errors.add(f"{field}.measure", f"must be one of {', '.join(MEASURES)}")
        measure = None
    code = raw.get("code")
    if not isinstance(code, str) or not CODE_RE.match(code.strip()):
        errors.add(f"{field}.code", "must be a code of 1-20 letters, digits, '.', '_' or '-' such as 'OC1.1'")
        code = None
    indicator = {
        "code": code.strip() if code else None,
        "title": clean_text(raw.get("title"), f"{field}.title", errors, TITLE_MAX),
        "measure": measure,
        "unit": clean_text(raw.get("unit"), f"{field}.unit", errors, UNIT_MAX, required=measure == "unit"),
        "baseline_value": indicator_value(raw.get("baseline_value"), measure, f"{field}.baseline_value", errors),
        "baseline_year": _year(raw.get("baseline_year"), f"{field}.baseline_year", errors),
        "target_value": indicator_value(raw.get("target_value"), measure, f"{field}.target_value", errors),
        "target_date": _date(raw.get("target_date"), f"{field}.target_date", errors),
        "source_of_verification": clean_text(
            raw.get("source_of_verification"), f"{field}.source_of_verification", errors, SOURCE_MAX
        ),
    }
    if measure == "percentage" and not indicator["unit"]:
        indicator["unit"] = "%"
    baseline_year, target_date = indicator["baseline_year"], indicator["target_date"]
    if isinstance(baseline_year, int) and isinstance(target_date, str) and int(target_date[:4]) < baseline_year:
        errors.add(f"{field}.target_date", "must not be before the baseline year")
    return indicator


class ParsedLogframe(list):
    """A logframe `parse_logframe` returned: checked and normalised, so parsing it again gives it back as it is (a
    submission's logframe is parsed once, by the input's load, not again by the domain proposal and the event's
    load). Never changed in place: code that edits a logframe builds plain lists and parses them."""

    __slots__ = ()


def parse_logframe(raw, field: str = "logframe") -> list[dict]:
    """The logframe in its wire form, or InvalidInput naming every bad field by its path."""
    if type(raw) is ParsedLogframe:  # parse_logframe's own result (a client's JSON is never one)
        return raw
    errors = _Errors()
    if not isinstance(raw, list):
        raise InvalidInput({field: ["must be a list of results (outcomes and outputs)"]})
    if len(raw) > MAX_RESULTS:
        raise InvalidInput({field: [f"at most {MAX_RESULTS} results"]})
    results: list[dict] = []
    seen: dict[str, str] = {}  # indicator code -> the path that gave it first
    for i, item in enumerate(raw):
        path = f"{field}.{i}"
        if not isinstance(item, dict):
            errors.add(path, "must be an object")
            continue
        for key in sorted(set(item) - RESULT_KEYS, key=str):
            errors.add(f"{path}.{key}", "unknown field")
        kind = item.get("type")
        if kind not in RESULT_TYPES:
            errors.add(f"{path}.type", "must be outcome or output")
        title = clean_text(item.get("title"), f"{path}.title", errors, TITLE_MAX)
        indicators = item.get("indicators")
        parsed = []
        if not isinstance(indicators, list) or not indicators:
            errors.add(f"{path}.indicators", "give at least one indicator")
        elif len(indicators) > MAX_INDICATORS:
            errors.add(f"{path}.indicators", f"at most {MAX_INDICATORS} indicators per result")
        else:
            for j, raw_indicator in enumerate(indicators):
                ipath = f"{path}.indicators.{j}"
                indicator = parse_indicator(raw_indicator, ipath, errors)
                if indicator is None:
                    continue
                if indicator["code"] is not None:
                    if indicator["code"] in seen:
                        errors.add(
                            f"{ipath}.code", f"{indicator['code']!r} is already used by {seen[indicator['code']]}"
                        )
                    seen.setdefault(indicator["code"], ipath)
                parsed.append(indicator)
        results.append({"type": kind, "title": title, "indicators": parsed})
    if errors:
        raise InvalidInput(dict(errors))
    return ParsedLogframe(results)


def indicators(logframe) -> dict[str, dict]:
    """Code -> indicator with its result's type and title, in logframe order."""
    found = {}
    for result in logframe or ():
        for indicator in result["indicators"]:
            found[indicator["code"]] = {**indicator, "result_type": result["type"], "result_title": result["title"]}
    return found


def completeness(logframe) -> list[tuple[str, str, str]]:
    """What a full application's logframe lacks, as (rule, field, message); empty when it is complete."""
    if not logframe:
        return [
            (
                "logframe.missing",
                "logframe",
                "a full application carries its logframe: outcomes and outputs with their indicators",
            )
        ]
    kinds = {result["type"] for result in logframe}
    problems = []
    if "outcome" not in kinds:
        problems.append(("logframe.no_outcome", "logframe", "the logframe has no outcome"))
    if "output" not in kinds:
        problems.append(("logframe.no_output", "logframe", "the logframe has no output"))
    return problems


def _per_indicator(items: list, field: str, known: dict, allowed: set, errors: _Errors):
    """(path, item, code) of each entry naming an indicator of the logframe once; what does not is an error."""
    seen = set()
    for i, item in enumerate(items):
        path = f"{field}.{i}"
        if not isinstance(item, dict):
            errors.add(path, "must be an object")
            continue
        for key in sorted(set(item) - allowed, key=str):
            errors.add(f"{path}.{key}", "unknown field")
        code = item.get("code")
        if code not in known:
            errors.add(f"{path}.code", f"no indicator {code!r} in the grant's logframe")
        elif code in seen:
            errors.add(f"{path}.code", f"{code!r} is given twice")
        else:
            seen.add(code)
            yield path, item, code


def change_targets(logframe, changes, field: str = "new_targets") -> list[dict]:
    """A copy of the logframe with new targets: changes are [{code, target_value, target_date?}]. An unknown
    code, a duplicate or a value not in the indicator's measure is refused by name."""
    errors = _Errors()
    known = indicators(logframe)
    if not isinstance(changes, list) or not changes:
        raise InvalidInput({field: ["give at least one indicator target"]})
    wanted = {}
    for path, change, code in _per_indicator(changes, field, known, {"code", "target_value", "target_date"}, errors):
        value = indicator_value(change.get("target_value"), known[code]["measure"], f"{path}.target_value", errors)
        target_date = known[code]["target_date"]
        if change.get("target_date") is not None:
            target_date = _date(change["target_date"], f"{path}.target_date", errors)
        wanted[code] = (value, target_date)
    if errors:
        raise InvalidInput(dict(errors))
    amended = []
    for result in logframe:
        amended.append(
            {
                **result,
                "indicators": [
                    {**ind, "target_value": wanted[ind["code"]][0], "target_date": wanted[ind["code"]][1]}
                    if ind["code"] in wanted
                    else dict(ind)
                    for ind in result["indicators"]
                ],
            }
        )
    return amended


def parse_actuals(raw, logframe, field: str = "actuals") -> list[dict]:
    """Actual values of a report: [{code, value, comment?}], each code an indicator of the logframe, at most once,
    each value in its indicator's measure."""
    errors = _Errors()
    known = indicators(logframe)
    if not isinstance(raw, list):
        raise InvalidInput({field: ["must be a list of {code, value}"]})
    if not known and raw:
        raise InvalidInput({field: ["the grant has no logframe: there is no indicator to report on"]})
    actuals = []
    for path, item, code in _per_indicator(raw, field, known, {"code", "value", "comment"}, errors):
        value = indicator_value(item.get("value"), known[code]["measure"], f"{path}.value", errors)
        comment = clean_text(item.get("comment"), f"{path}.comment", errors, VALUE_MAX, required=False)
        actuals.append({"code": code, "value": value, "comment": comment or ""})
    if errors:
        raise InvalidInput(dict(errors))
    return actuals


def progress(baseline: str | None, target: str | None, actual: str | None, measure: str) -> Decimal | None:
    """Percent of the way from baseline to target reached by the actual value, to two places (numeric measures;
    None for qualitative values, or when the target equals the baseline). Above 100 when the actual exceeds the
    target; exact Decimal arithmetic, rounded half-even once."""
    if measure not in NUMERIC or actual is None or target is None:
        return None
    base = Decimal(baseline) if baseline is not None else Decimal(0)
    span = Decimal(target) - base
    if span == 0:
        return None
    return ((Decimal(actual) - base) / span * 100).quantize(Decimal("0.01"))
