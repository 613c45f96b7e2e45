"""What the CLI knows of the staff operations: the gateway's OpenAPI document (services/gateway/views.py), read
as the operations' arguments — name, kind, required, help — and who may call them. The document is generated from
the marshmallow schema each service validates its input with, so the CLI's options follow the services' schemas
with no declaration of their own (jmdi/table.py only says how a command is shaped for people: its name, which
argument is positional, an option named otherwise than its field).

Generating the document imports every service, which takes seconds: the description is kept in a cache file
(JMDI_CACHE_DIR, default $XDG_CACHE_HOME/jmdi or ~/.cache/jmdi) named after the installed services' source files,
so a change to any of them makes a fresh one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import services

SERVICES_DIR = Path(services.__file__).resolve().parent


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # str | int | bool | list | list_int | pairs | pairs_int | json | any
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class OperationInfo:
    key: str  # "calls.open_call"
    summary: str
    fields: tuple[Field, ...]
    roles: tuple[str, ...]  # the staff roles that may call it (the role matrix)

    @property
    def service(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def _types(prop: dict) -> list[str]:
    kind = prop.get("type")
    return [t for t in (kind if isinstance(kind, list) else [kind]) if t and t != "null"]


def _scalar(prop: dict) -> str | None:
    """int, bool or str for a scalar property (None: an object, an array or a reference)."""
    if "$ref" in prop or "anyOf" in prop or "allOf" in prop or "oneOf" in prop:
        return None
    types = _types(prop)
    if not types or "object" in types or "array" in types:
        return None
    if types == ["integer"]:
        return "int"
    if types == ["boolean"]:
        return "bool"
    return "str"  # strings, money (string or whole number), decimals


def kind_of(prop: dict) -> str:
    """How a command-line option fills the property: a value, a repeated value, KEY=VALUE pairs, or JSON."""
    scalar = _scalar(prop)
    if scalar is not None:
        return scalar
    types = _types(prop)
    if not types and not any(k in prop for k in ("$ref", "anyOf", "allOf", "oneOf")):
        return "any"  # a field of any type: JSON if it reads as JSON, else the text
    if "array" in types:
        item = _scalar(prop.get("items") or {"type": "string"})
        return {"int": "list_int", "str": "list"}.get(item or "", "json")
    if "object" in types and isinstance(prop.get("additionalProperties"), dict):
        value = _scalar(prop["additionalProperties"] or {"type": "string"})
        return {"int": "pairs_int", "str": "pairs"}.get(value or "", "json")
    return "json"


def _help(prop: dict) -> str:
    text = (prop.get("description") or "").strip()
    values = [v for v in prop.get("enum") or (prop.get("items") or {}).get("enum") or () if v is not None]
    if values:
        text = f"{text} ({', '.join(map(str, values))})" if text else f"one of {', '.join(map(str, values))}"
    return text


def describe(document: dict) -> dict[str, OperationInfo]:
    """Every service operation of an OpenAPI document of the gateway, by "<service>.<operation>"."""
    components = document.get("components", {}).get("schemas", {})

    def resolve(schema: dict) -> dict:
        while "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    found = {}
    for path in document.get("paths", {}).values():
        post = path.get("post")
        if not post or post.get("operationId", "").startswith("gateway."):
            continue
        body = resolve(post["requestBody"]["content"]["application/json"]["schema"])
        required = set(body.get("required", ()))
        fields = tuple(
            Field(name, kind_of(prop), name in required, _help(prop))
            for name, prop in body.get("properties", {}).items()
        )
        key = post["operationId"]
        summary = post.get("summary") or ""
        found[key] = OperationInfo(key, "" if summary == key else summary, fields, tuple(post.get("x-roles", ())))
    return found


def _install() -> str:
    return hashlib.sha256(str(SERVICES_DIR).encode()).hexdigest()[:12]


def _source_stamp() -> str:
    """Changes whenever a source file of the services changes (their schemas, roles, docstrings)."""
    digest = hashlib.sha256()
    for path in sorted(SERVICES_DIR.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(SERVICES_DIR)}:{stat.st_mtime_ns}:{stat.st_size}\n".encode())
    return digest.hexdigest()[:24]


def cache_dir() -> Path:
    if os.environ.get("JMDI_CACHE_DIR"):
        return Path(os.environ["JMDI_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jmdi"


def _generate() -> dict:
    with warnings.catch_warnings():  # importing the services says eventlet is deprecated: not the staff's concern
        warnings.simplefilter("ignore")
        from services.gateway.views import document

        return document()


def _as_json(infos: dict[str, OperationInfo]) -> dict:
    return {
        key: {
            "summary": i.summary,
            "roles": list(i.roles),
            "fields": [[f.name, f.kind, f.required, f.help] for f in i.fields],
        }
        for key, i in infos.items()
    }


def _from_json(data: dict) -> dict[str, OperationInfo]:
    return {
        key: OperationInfo(key, d["summary"], tuple(Field(*f) for f in d["fields"]), tuple(d["roles"]))
        for key, d in data.items()
    }


@functools.cache
def operations() -> dict[str, OperationInfo]:
    """The staff operations of the installed services (from the cache when the sources have not changed)."""
    cached = cache_dir() / f"operations-{_install()}-{_source_stamp()}.json"
    try:
        return _from_json(json.loads(cached.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    infos = describe(_generate())
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        for old in cached.parent.glob(f"operations-{_install()}-*.json"):
            old.unlink(missing_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cached.parent, delete=False, suffix=".tmp", encoding="utf-8") as out:
            json.dump(_as_json(infos), out)
        os.replace(out.name, cached)
    except OSError:
        pass  # no cache where the home folder is read-only: described again next time
    return infos
