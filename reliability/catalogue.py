"""Every RPC of the system, discovered from the service classes: each operation's wrapper is a nameko @rpc
entrypoint made by services.common.entrypoints.operation, whose closure holds the marshmallow schema that
validates its input; the role matrix (services/common/roles.py) says who may call it."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from marshmallow import Schema
from nameko.rpc import Rpc

from services.common.auth import ROLES
from services.common.roles import allowed_roles
from services.common.runner import service_class
from services.common.topology import SERVICES


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    schema: Schema | None
    roles: frozenset

    @property
    def key(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def wrong_roles(self) -> list[str]:
        return [r for r in ROLES if r not in self.roles]


def input_schema(method) -> Schema | None:
    return inspect.getclosurevars(method).nonlocals.get("input_schema")


def operations(services=SERVICES) -> list[Operation]:
    found = []
    for service in services:
        cls = service_class(service)
        for name in sorted(dir(cls)):
            method = getattr(cls, name, None)
            if not any(isinstance(e, Rpc) for e in getattr(method, "nameko_entrypoints", ())):
                continue
            found.append(Operation(service, name, input_schema(method), frozenset(allowed_roles(service, name))))
    return found
