"""The kit's PreparedStatement on a real PostgreSQL: prepared once on each connection that runs it, its values
processed by their bind types as a plain statement's are, and prepared again on the fresh connection that
replaces a dropped one."""

from decimal import Decimal

import pytest
from sqlalchemy import JSON, Numeric, String, bindparam, event, text
from sqlalchemy.exc import DBAPIError

from services.common.storage.prepared import PreparedStatement
from tests.support.infra import Postgres

pytestmark = pytest.mark.integration

STATEMENT = text(
    "SELECT CAST(:label AS VARCHAR(20)) || '%' AS label, CAST(:amount AS NUMERIC(14, 2)) * 2 AS doubled,"
    " CAST(:detail AS JSON) ->> 'who' AS who, :label = CAST(:label AS VARCHAR(20)) AS twice"
).bindparams(
    bindparam("label", type_=String(20)), bindparam("amount", type_=Numeric(14, 2)), bindparam("detail", type_=JSON)
)


@pytest.fixture
def recorded(pg_databases):
    """A database and the kind (PREPARE, EXECUTE) of each statement sent to it, with its connection."""
    core = pg_databases("calls")
    sent: list[tuple[int, str]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((id(conn.connection.dbapi_connection), statement.split(" ", 1)[0]))

    event.listen(core.engine, "before_cursor_execute", record)
    yield core, sent
    event.remove(core.engine, "before_cursor_execute", record)


def run(core, prepared: PreparedStatement, **values):
    with core.engine.connect() as conn:
        return prepared.run(conn, values).one()._asdict()


def test_a_statement_is_prepared_once_per_connection_and_its_values_bound_by_their_types(recorded):
    core, sent = recorded
    prepared = PreparedStatement(STATEMENT, "kit_test")
    first = run(core, prepared, label="it's 100", amount="12.345", detail={"who": "amina.pm"})
    second = run(core, prepared, label="\\x", amount=1, detail={"who": "farid"})
    assert first == {"label": "it's 100%", "doubled": Decimal("24.70"), "who": "amina.pm", "twice": True}
    assert second == {"label": "\\x%", "doubled": Decimal("2.00"), "who": "farid", "twice": True}
    assert [kind for _, kind in sent] == ["PREPARE", "EXECUTE", "EXECUTE"] and len({c for c, _ in sent}) == 1


def test_the_fresh_connection_after_a_dropped_one_prepares_it_again(recorded):
    core, sent = recorded
    prepared = PreparedStatement(STATEMENT, "kit_test")
    run(core, prepared, label="a", amount=1, detail={})
    with Postgres()._admin() as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (core.engine.url.database,),
        )
    with pytest.raises(DBAPIError) as dropped:
        run(core, prepared, label="b", amount=1, detail={})
    assert dropped.value.connection_invalidated
    assert run(core, prepared, label="c", amount=3, detail={"who": "x"})["who"] == "x"
    kinds = [kind for _, kind in sent]
    assert kinds == ["PREPARE", "EXECUTE", "EXECUTE", "PREPARE", "EXECUTE"]
    assert sent[0][0] == sent[1][0] == sent[2][0]
