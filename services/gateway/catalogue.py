"""Every staff operation behind the gateway, discovered from the service classes: each `@operation` of the four
services (services/common/service/entrypoints.py) is a nameko RPC whose wrapper keeps the marshmallow schema that
validates its input (`input_schema`) and the schema of what it returns (`result_schema`); the role matrix (services/common/security/roles.py) says who may call it.

The gateway routes, limits and documents (OpenAPI) from this one list, so a new operation is reachable and
documented the moment a service declares it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from marshmallow import Schema
from nameko.rpc import Rpc

from services.common.contracts.topology import SERVICES
from services.common.runtime.config import service_class
from services.common.security.roles import STAFF_ROLES, allowed_roles

# operations that carry a whole file in their body (an exclusion list of thousands of organisations)
BULK = frozenset({"calls.load_exclusion_list"})
# operations that may take minutes: rebuilding projections, whole-programme reports and exports
LONG = frozenset(
    {
        "reporting.rebuild_projections",
        "reporting.budget_report",
        "reporting.iati_export",
        "reporting.giving360_export",
        "reporting.generate_report",
        "reporting.reconcile",
    }
)


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    schema: Schema | None
    roles: frozenset  # every role the service itself accepts (the second layer)
    summary: str = ""
    result: Schema | None = None  # what it returns (its wire form)

    @property
    def key(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def staff_roles(self) -> frozenset:
        """The roles that may call it through the gateway: service identities never come in by the staff door."""
        return self.roles & frozenset(STAFF_ROLES)

    @property
    def wrong_roles(self) -> list[str]:
        """The roles the matrix does not allow (each must be refused)."""
        from services.common.security.auth import ROLES

        return [r for r in ROLES if r not in self.roles]

    @property
    def bulk(self) -> bool:
        return self.key in BULK

    @property
    def long(self) -> bool:
        return self.key in LONG


def _summary(method) -> str:
    doc = (getattr(method, "__doc__", None) or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else ""


@functools.cache
def operations(services: tuple[str, ...] = SERVICES) -> tuple[Operation, ...]:
    found = []
    for service in services:
        cls = service_class(service)
        for name in sorted(dir(cls)):
            method = getattr(cls, name, None)
            if not any(isinstance(e, Rpc) for e in getattr(method, "nameko_entrypoints", ())):
                continue
            found.append(
                Operation(
                    service,
                    name,
                    getattr(method, "input_schema", None),
                    frozenset(allowed_roles(service, name)),
                    _summary(method),
                    getattr(method, "result_schema", None),
                )
            )
    return tuple(found)


@functools.cache
def by_key() -> dict[str, Operation]:
    return {op.key: op for op in operations()}


def find(service: str, name: str) -> Operation | None:
    return by_key().get(f"{service}.{name}")
