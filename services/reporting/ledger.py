"""The grants service's ledger, asked with reporting's own service identity (services.common.service.rpc.ServiceClient)."""

from nameko.exceptions import UnknownService

from services.common.service.rpc import NoAnswerInTime
from services.common.values.errors import Conflict


def fetch_ledger(grants, programme_id: str | None, timeout: float) -> dict:
    """The grants ledger; Conflict when the grants service does not answer in time."""
    try:
        return grants.call("ledger", timeout, programme_id=programme_id)
    except NoAnswerInTime:
        raise Conflict(
            "reconcile.grants_unavailable", f"the grants ledger did not answer within {timeout:g} s"
        ) from None
    except UnknownService:
        raise Conflict("reconcile.grants_unavailable", "no grants service is running") from None
