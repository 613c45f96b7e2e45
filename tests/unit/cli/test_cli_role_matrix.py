"""The role matrix covers every RPC the services expose and every operation of the gateway, and the CLI has a
command for every staff operation."""

import pytest

from services.common.runtime.config import service_class
from services.common.security import roles
from services.common.security.auth import ROLES

SERVICES = ("calls", "grants", "notifications", "reporting")


def rpc_operations(service: str) -> set[str]:
    """Every nameko RPC entrypoint on the service class (nameko records them on the methods)."""
    from nameko.rpc import Rpc

    cls = service_class(service)
    return {
        f"{service}.{name}"
        for name in dir(cls)
        if any(isinstance(e, Rpc) for e in getattr(getattr(cls, name, None), "nameko_entrypoints", ()))
    }


def gateway_operations() -> set[str]:
    """The gateway's own operations (health of every service, its audit of refusals)."""
    from services.gateway.http import ApiEntrypoint
    from services.gateway.service import GatewayService

    return {
        e.operation
        for name in dir(GatewayService)
        for e in getattr(getattr(GatewayService, name, None), "nameko_entrypoints", ())
        if isinstance(e, ApiEntrypoint) and e.operation and not e.public
    }


IMPLEMENTED = sorted({op for service in SERVICES for op in rpc_operations(service)} | gateway_operations())


@pytest.mark.parametrize("operation", IMPLEMENTED)
def test_every_rpc_of_every_service_is_in_the_role_matrix(operation):
    assert operation in roles.MATRIX, f"{operation} is an RPC but roles.py does not say who may call it"
    assert roles.MATRIX[operation], f"{operation} is allowed to no role"


def test_the_role_matrix_names_only_operations_that_exist():
    stale = sorted(set(roles.MATRIX) - set(IMPLEMENTED))
    assert not stale, f"roles.py lists operations no service has: {stale}"


def test_the_matrix_uses_known_roles_and_read_only_roles_only_read():
    for operation, allowed in roles.MATRIX.items():
        assert allowed <= set(ROLES) | {roles.service_role(s) for s in roles.SERVICE_CALLS}, operation
    # auditors and EC reporters change nothing: the operations they may call are reads (or reports)
    writes = (
        "load_",
        "update_",
        "create_",
        "amend_",
        "open_",
        "close_",
        "submit_",
        "withdraw_",
        "decide_",
        "declare_",
        "assign_",
        "record_",
        "publish_",
        "award_",
        "reject_",
        "decline_",
        "register_",
        "validate_",
        "sign_",
        "request_",
        "approve_",
        "accept_",
        "return_",
        "reallocate_",
        "pay_",
        "replay_",
        "discard_",
        "retry_",
        "send_",
        "rebuild_",
    )
    for operation, allowed in roles.MATRIX.items():
        name = operation.split(".", 1)[1]
        if name.startswith(writes):
            assert not allowed & {roles.AUDITOR, roles.EC_REPORTER}, f"read-only role may {operation}"


def test_requesting_and_approving_a_payment_are_different_roles():
    assert roles.FINANCE_APPROVER not in roles.allowed_roles("grants", "request_payment")
    assert roles.FINANCE_OFFICER not in roles.allowed_roles("grants", "approve_payment")


@pytest.mark.parametrize("operation", sorted(roles.MATRIX))
def test_every_staff_operation_has_a_cli_command(operation):
    from jmdi.table import command_for

    staff_roles = roles.MATRIX[operation] & set(roles.STAFF_ROLES)
    if staff_roles:
        assert command_for(operation), f"no jmdi command calls {operation}"


def test_cli_commands_call_operations_in_the_matrix():
    from jmdi.table import COMMANDS

    unknown = [cmd.path for cmd in COMMANDS if cmd.operation not in roles.MATRIX]
    assert not unknown, f"commands calling operations no role may call: {unknown}"
