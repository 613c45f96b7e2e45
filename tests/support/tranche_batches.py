"""A batch of tranche facts through reporting's FactWriter, as the live consumer writes them: the tests of the
payments row kept per grant (grant_payments) on SQLite and PostgreSQL."""

from datetime import date, datetime, timezone
from decimal import Decimal

from services.reporting.models import TrancheRow
from services.reporting.repository import FactWriter


def write_tranches(session, tranches):
    """(payment_id, grant_id, tranche number, amount) rows added and flushed in one batch; the caller commits."""
    writer = FactWriter(session)
    for payment_id, grant_id, number, amount in tranches:
        writer.add(
            TrancheRow,
            payment_id,
            payment_id=payment_id,
            grant_id=grant_id,
            tranche_number=number,
            amount=Decimal(amount),
            value_date=date(2010, 1, 1),
            bank_reference="B",
            paid_at=datetime(2010, 1, 1, tzinfo=timezone.utc),
        )
    writer.flush()
