"""A flush that changes many rows (a batch's grants, say) reaches PostgreSQL in pages, not a round trip per row."""

from decimal import Decimal

import psycopg2.extensions
import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, registry

from .conftest import tranche_ledger

pytestmark = pytest.mark.integration


class LedgerRow:
    pass


registry().map_imperatively(LedgerRow, tranche_ledger)


def test_a_flush_updating_250_rows_takes_three_round_trips(pg_databases):
    core = pg_databases("reporting")
    with core.engine.begin() as conn:
        conn.execute(
            insert(tranche_ledger),
            [{"event_id": f"e-{n}", "payment_id": f"pay-{n}", "amount": Decimal("100.00")} for n in range(250)],
        )
    sent: list[str] = []

    class CountingCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            sent.append("execute")
            return super().execute(query, vars)

        def executemany(self, query, vars_list):
            vars_list = list(vars_list)
            sent.extend("executemany" for _ in vars_list)  # psycopg2 sends each parameter set on its own
            return super().executemany(query, vars_list)

    event.listen(
        core.engine, "connect", lambda dbapi_conn, _record: setattr(dbapi_conn, "cursor_factory", CountingCursor)
    )
    core.engine.dispose()  # the pool's connections were opened before the listener
    with Session(core.engine) as session:
        for row in session.scalars(select(LedgerRow)):
            row.amount = row.amount + Decimal("0.01") * int(row.payment_id.removeprefix("pay-"))
        sent.clear()
        session.flush()
        flushed = list(sent)
        session.commit()
    assert flushed == ["execute"] * 3, flushed  # 100 UPDATEs to a page
    with core.engine.connect() as conn:
        assert conn.execute(select(func.sum(tranche_ledger.c.amount))).scalar_one() == Decimal("25000.00") + sum(
            Decimal("0.01") * n for n in range(250)
        )
