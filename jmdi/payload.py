"""Turning command-line values into RPC arguments (the conversions jmdi/table.py names by `kind`)."""

import json
from pathlib import Path

import yaml

from services.common.values.wire import to_wire

from .failures import UsageProblem


def read_document(path: str | Path):
    """A JSON or YAML file (YAML is a superset; money must be quoted strings in either)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        # YAML dates become ISO strings: RPC arguments are plain JSON
        return to_wire(json.loads(text) if path.suffix == ".json" else yaml.safe_load(text))
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise UsageProblem(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}") from None


def json_value(text: str):
    """`--data '{"a": 1}'`, or `--data @file.json` / `@file.yaml`."""
    if text.startswith("@"):
        return read_document(text[1:])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"not valid JSON: {exc.msg} (use @FILE to read a file)") from None


def pairs(values: list[str], as_int: bool = False, option: str = "") -> dict:
    out: dict[str, str | int] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageProblem(f"--{option} expects key=value, got {item!r}")
        text = text.strip()
        if not as_int:
            out[key.strip()] = text
            continue
        try:
            out[key.strip()] = int(text)
        except ValueError:
            raise UsageProblem(f"--{option} {key}: {text!r} is not a whole number") from None
    return out


def convert(kind: str, value, option: str):
    """The RPC value for one option (None when the option was not given)."""
    if value is None or (kind in ("list", "list_int", "pairs", "pairs_int") and not value):
        return None
    if kind == "list_int":
        try:
            return [int(item) for item in value]
        except ValueError:
            raise UsageProblem(f"--{option} expects whole numbers, got {', '.join(value)}") from None
    if kind == "pairs":
        return pairs(value, option=option)
    if kind == "pairs_int":
        return pairs(value, as_int=True, option=option)
    if kind == "json":
        return json_value(value)
    if kind == "any":  # JSON when it reads as JSON, else the text itself
        if value.startswith("@"):
            return json_value(value)
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if kind == "file":
        return read_document(value)
    if kind == "text":
        return read_text(value)
    if kind == "when":
        return moment(value, option)
    if kind == "programme":
        # a file is sent as its definition; anything else is the id of a programme the service ships
        return read_document(value) if Path(value).is_file() else value
    return value


RELATIVE = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def moment(value: str, option: str) -> str:
    """An ISO date-time as given, or `+N<s|m|h|d>` — that long from now (UTC) — as an ISO date-time."""
    text = value.strip()
    if not text.startswith("+"):
        return text
    number, unit = text[1:-1], text[-1:]
    if unit not in RELATIVE or not number.isdigit():
        raise UsageProblem(
            f"--{option}: {value!r} is neither an ISO date-time nor a time from now like +10m, +2h, +30d"
        )
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) + timedelta(**{RELATIVE[unit]: int(number)})).replace(microsecond=0).isoformat()


def moved_budget(current: dict, moves: list[str], amounts: dict) -> dict:
    """The budget after `--budget HEADING=AMOUNT` (new amounts) and `--move FROM:TO=AMOUNT` (amounts moved), as
    decimal strings; the total stays what it was unless an amount says otherwise."""
    from decimal import Decimal, InvalidOperation

    budget = {heading: Decimal(str(value)) for heading, value in current.items()}

    def amount_of(text: str, option: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise UsageProblem(f"--{option}: {text!r} is not an amount") from None
        if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
            raise UsageProblem(f"--{option}: {text!r} is not an amount in EUR with at most two decimals")
        return value

    for heading, value in amounts.items():
        budget[heading] = amount_of(value, "budget")
    for item in moves:
        route, sep, value = item.partition("=")
        source, colon, target = route.partition(":")
        if not sep or not colon or not source.strip() or not target.strip():
            raise UsageProblem(f"--move expects FROM:TO=AMOUNT, got {item!r}")
        source, target, value = source.strip(), target.strip(), amount_of(value.strip(), "move")
        if source not in budget:
            raise UsageProblem(f"--move: the grant's budget has no heading {source!r} ({', '.join(budget)})")
        budget[source] -= value
        budget[target] = budget.get(target, Decimal("0.00")) + value
    return {heading: f"{value:.2f}" for heading, value in budget.items()}


def windows_from_pairs(value: dict) -> list[dict]:
    return [{"window": window, "allocation_eur": amount} for window, amount in value.items()]


def programme_from_yaml(document: dict) -> dict:
    """The figures of a programme YAML (services/calls/data/programmes/*.yaml) the demo plans with: money as
    `*_eur` strings, window names in English. (load_programme itself takes the YAML as it is.)"""
    if not isinstance(document, dict) or "ec_contribution_eur" in document:
        return document
    programme = {
        "id": document.get("id"),
        "name": document.get("name"),
        "ec_contribution_eur": str(document.get("ec_contribution")),
        "eligible_countries": document.get("eligible_countries"),
        "windows": [
            {
                "code": w.get("code"),
                "name": w.get("name_en") or w.get("name") or w.get("code"),
                "allocation_eur": str(w.get("allocation")),
            }
            for w in document.get("windows") or []
        ],
    }
    for key in ("funder", "budget_line", "eu_member_states", "rule_profile"):
        if key in document:
            programme[key] = document[key]
    return programme


# per-operation shaping of arguments the options cannot express directly
ADAPTERS = {
    "calls.create_call": lambda p: (
        {**p, "windows": windows_from_pairs(p["windows"])} if isinstance(p.get("windows"), dict) else p
    ),
    "calls.amend_call": lambda p: (
        {**p, "windows": windows_from_pairs(p["windows"])} if isinstance(p.get("windows"), dict) else p
    ),
}


def adapt(operation: str, payload: dict) -> dict:
    adapter = ADAPTERS.get(operation)
    return adapter(payload) if adapter else payload
