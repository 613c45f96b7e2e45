"""Each service's migrations, applied from nothing, give exactly the tables its models and the kit declare (the kit's
tables come from services/common/storage/kit_schema.py), and undo to nothing."""

import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool

from services.common.storage.migrations import alembic_config, upgrade
from services.common.storage.tables import kit_metadata


@pytest.mark.parametrize("service", ["calls", "grants", "notifications", "reporting"])
def test_migrations_give_the_models_tables_and_undo_to_nothing(service, tmp_path):
    url = f"sqlite:///{tmp_path / service}.db"
    upgrade(service, url)
    engine = create_engine(url, poolclass=pool.NullPool)
    models = importlib.import_module(f"services.{service}.models")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, [kit_metadata, models.Base.metadata]) == []
        assert {"outbox", "inbox", "dead_letters", "leases", "audit_log"} <= set(inspect(conn).get_table_names())
    command.downgrade(alembic_config(service, url), "base")
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == ["alembic_version"]
    engine.dispose()
