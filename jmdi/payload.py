"""Turning command-line values into RPC arguments (the conversions the declared table names by `kind`)."""
import json
from pathlib import Path

import yaml

from services.common.wire import to_wire

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
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageProblem(f"--{option} expects key=value, got {item!r}")
        value = value.strip()
        if as_int:
            try:
                value = int(value)
            except ValueError:
                raise UsageProblem(f"--{option} {key}: {value!r} is not a whole number") from None
        out[key.strip()] = value
    return out


def convert(kind: str, value, option: str):
    """The RPC value for one option (None when the option was not given)."""
    if value is None or (kind in ("list", "pairs", "pairs_int") and not value):
        return None
    if kind == "pairs":
        return pairs(value, option=option)
    if kind == "pairs_int":
        return pairs(value, as_int=True, option=option)
    if kind == "json":
        return json_value(value)
    if kind == "file":
        return read_document(value)
    if kind == "text":
        return read_text(value)
    if kind == "programme":
        # a file is sent as its definition; anything else is the id of a programme the service ships
        return read_document(value) if Path(value).is_file() else value
    return value


def windows_from_pairs(value: dict) -> list[dict]:
    return [{"window": window, "allocation_eur": amount} for window, amount in value.items()]


def programme_from_yaml(document: dict) -> dict:
    """The figures of a programme YAML (services/calls/data/programmes/*.yaml) the demo plans with: money as
    `*_eur` strings, window names in English. (load_programme itself takes the YAML as it is.)"""
    if not isinstance(document, dict) or "ec_contribution_eur" in document:
        return document
    programme = {
        "id": document.get("id"), "name": document.get("name"),
        "ec_contribution_eur": str(document.get("ec_contribution")),
        "eligible_countries": document.get("eligible_countries"),
        "windows": [{"code": w.get("code"), "name": w.get("name_en") or w.get("name") or w.get("code"),
                     "allocation_eur": str(w.get("allocation"))} for w in document.get("windows") or []],
    }
    for key in ("funder", "budget_line", "eu_member_states", "rule_profile"):
        if key in document:
            programme[key] = document[key]
    return programme


# per-operation shaping of arguments the options cannot express directly
ADAPTERS = {
    "calls.create_call": lambda p: {**p, "windows": windows_from_pairs(p["windows"])}
    if isinstance(p.get("windows"), dict) else p,
    "calls.amend_call": lambda p: {**p, "windows": windows_from_pairs(p["windows"])}
    if isinstance(p.get("windows"), dict) else p,
}


def adapt(operation: str, payload: dict) -> dict:
    adapter = ADAPTERS.get(operation)
    return adapter(payload) if adapter else payload
