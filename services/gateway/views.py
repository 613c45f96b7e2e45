"""The staff API's OpenAPI 3.1 document, generated from the catalogue: every operation's request body is the
marshmallow schema its service validates with and its 200 answer the schema of what it returns (apispec's
MarshmallowPlugin, each a component), its roles come from the role matrix, and every failure is a problem document. Served at GET /api/v1/openapi.json; nothing here is written
by hand but the conventions."""

from __future__ import annotations

import functools
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from services.common.values.fields import Money
from services.common.values.problems import PROBLEM_JSON

from .catalogue import Operation, operations
from .schemas import AUDIT_ROWS, HEALTH, AuditQuery, HealthQuery

PREFIX = "/api/v1"
DESCRIPTION = """\
Every staff operation of the JMDI services: `POST /api/v1/<service>/<operation>` with the operation's arguments
as a JSON object (an empty body for none). Authenticate with a bearer token (a JWT naming the user and roles);
the role matrix decides who may call what, and every service checks it again. Money is a decimal string in EUR
with at most two places ("150000.00"), never a JSON float; dates are ISO 8601.

Failures are `application/problem+json` (RFC 9457) with a stable `code`: 400/413/415/422 the request is wrong
(`errors` maps each field to its messages), 401 no valid token, 403 the role may not, 404 not found (`entity`,
`key`) or no such operation, 405 another method than the path's (`Allow` names it), 408 the body did not arrive in
time (code `request_timeout`), 409 a programme rule refused it (`rule`, `details`), 429 too many refused requests
from this client (`Retry-After`), 500 internal failure (only a `correlation_id`) or, with code `setup_problem`, an
installation that lacks a file or setting (what is missing and the `remedy`, for the operators), 503 the service or
the broker is away, 504 no answer in time (the operation may still complete)."""

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details, with the typed error's fields",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {
            "type": "string",
            "enum": [
                "invalid_input",
                "request_timeout",
                "not_found",
                "unknown_operation",
                "conflict",
                "unauthenticated",
                "not_allowed",
                "too_many_refusals",
                "internal_error",
                "setup_problem",
                "service_unavailable",
                "timeout",
            ],
        },
        "errors": {
            "type": "object",
            "description": "field (nested for nested fields) -> messages: the first 50 fields with errors",
        },
        "errors_omitted": {"type": "integer", "description": "how many more fields had errors (not in `errors`)"},
        "entity": {"type": "string"},
        "key": {},
        "rule": {"type": "string", "description": "the programme rule that refused the operation"},
        "details": {"type": "array", "description": "every violation, with its figures"},
        "retry_after": {"type": "integer"},
        "correlation_id": {"type": "string", "description": "finds the request in the services' logs"},
        "remedy": {"type": "string", "description": "setup_problem: what the operators do to fix the installation"},
    },
}
OPENAPI = {
    "type": "object",
    "description": "this document (its own schema: https://spec.openapis.org/oas/3.1/schema)",
    "required": ["openapi", "info", "paths"],
    "properties": {"openapi": {"type": "string"}, "info": {"type": "object"}, "paths": {"type": "object"}},
}
FAILURES = {
    "400": "the body is not valid JSON",
    "401": "no token, or one that does not verify",
    "403": "the caller's roles may not call this operation",
    "404": "an entity named in the arguments does not exist",
    "405": "another method than the path's (POST; GET for this document), named in `Allow`",
    "408": "the body did not arrive in time (request_timeout); the connection is closed",
    "409": "a programme rule refused the operation",
    "413": "the body is larger than the operation's limit",
    "415": "the body is not application/json",
    "422": "the arguments do not validate",
    "429": "too many refused requests from this client",
    "500": "internal failure, or the installation lacks a file or setting (setup_problem)",
    "503": "the service or the message broker is not available",
    "504": "no answer within the request timeout",
}


def money_property(self, field, **kwargs) -> dict:
    if isinstance(field, Money):
        return {
            "type": ["string", "integer", *(["null"] if field.allow_none else [])],
            "pattern": r"^-?[0-9]+(\.[0-9]{1,2})?$",
            "description": "EUR amount: a decimal string with at most two places, or a whole number",
        }
    return {}


def plain_bounds(self, field, ret=None, **kwargs) -> dict:
    """JSON Schema bounds are JSON numbers: a Decimal bound (a share, "0.0000".."1.0000") is written as one."""
    return {
        key: float(value)
        for key, value in (ret or {}).items()
        if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") and isinstance(value, Decimal)
    }


def schema_name(schema) -> str:
    """Component names qualified by the service that owns the schema (calls.CreateCall, grants.GrantId ...)."""
    cls = resolve_schema_cls(schema)
    assert isinstance(cls, type), "one schema per component: nothing here resolves to a list of them"
    # Schema.from_dict classes live in no module: their base (e.g. calls' Strict) tells the owner
    module = next((c.__module__ for c in cls.__mro__ if c.__module__.startswith("services.")), "services.common")
    owner = module.split(".")[1]
    name = f"{owner}.{cls.__name__}"
    modifiers = [
        f"{k}-{'-'.join(sorted(v))}"
        for k, v in (("only", getattr(schema, "only", None)), ("exclude", getattr(schema, "exclude", None)))
        if v
    ]
    return name + (f".{'.'.join(modifiers)}" if modifiers else "")


def _operation(op_id: str, summary: str, roles, schema, result, failures) -> dict:
    no_arguments = {"type": "object", "description": "no arguments (any given are ignored)"}
    required = schema is not None and any(f.required for f in schema.fields.values())
    body = {
        "required": required,
        "content": {"application/json": {"schema": no_arguments if schema is None else schema}},
    }
    answer = {} if result is None else result  # an operation declared without its result: anything
    responses = {"200": {"description": "the operation's result", "content": {"application/json": {"schema": answer}}}}
    responses.update({code: {"$ref": f"#/components/responses/{code}"} for code in failures})
    return {
        "operationId": op_id,
        "summary": summary or op_id,
        "tags": [op_id.split(".")[0]],
        "description": "Roles: " + (", ".join(sorted(roles)) or "none"),
        "x-roles": sorted(roles),
        "requestBody": body,
        "responses": responses,
    }


def _has_fields(schema) -> bool:
    return schema is not None and bool(schema.fields)


def service_operation(op: Operation) -> dict:
    failures = ["400", "401", "403", "404", "405", "408", "409", "413", "415", "422", "429", "500", "503", "504"]
    schema = op.schema if _has_fields(op.schema) else None
    return _operation(op.key, op.summary, op.staff_roles, schema, op.result, failures)


@functools.cache
def document() -> dict:
    try:
        release = version("jmdi")
    except PackageNotFoundError:
        release = "dev"
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(
        title="JMDI staff API",
        version=release,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": DESCRIPTION},
        servers=[{"url": "/"}],
        security=[{"bearer": []}],
    )
    assert plugin.converter is not None  # set by APISpec's init_spec above
    plugin.converter.add_attribute_function(money_property)
    plugin.converter.add_attribute_function(plain_bounds)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("Problem", PROBLEM)
    for code, meaning in FAILURES.items():
        response = {
            "description": meaning,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if code == "405":
            response["headers"] = {"Allow": {"description": "the methods the path takes", "schema": {"type": "string"}}}
        spec.components.response(code, response)
    for op in operations():
        spec.path(path=f"{PREFIX}/{op.service}/{op.name}", operations={"post": service_operation(op)})
    common = ["401", "403", "405", "408", "413", "415", "422", "429", "500"]
    from services.common.security.roles import allowed_roles

    spec.path(
        path=f"{PREFIX}/gateway/health",
        operations={
            "post": _operation(
                "gateway.health",
                "Health of the gateway and of every service, each asked with its own timeout",
                allowed_roles("gateway", "health"),
                HealthQuery(),
                HEALTH,
                common,
            )
        },
    )
    spec.path(
        path=f"{PREFIX}/gateway/query_audit",
        operations={
            "post": _operation(
                "gateway.query_audit",
                "Requests the gateway refused (no token, bad token, role, size, throttling)",
                allowed_roles("gateway", "query_audit"),
                AuditQuery(),
                AUDIT_ROWS,
                common,
            )
        },
    )
    spec.path(
        path=f"{PREFIX}/openapi.json",
        operations={
            "get": {
                "operationId": "gateway.openapi",
                "summary": "This document",
                "tags": ["gateway"],
                "security": [],
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": OPENAPI}}},
                    "405": {"$ref": "#/components/responses/405"},
                    "429": {"$ref": "#/components/responses/429"},
                },
            }
        },
    )
    return spec.to_dict()
