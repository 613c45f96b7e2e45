"""Each service's migration history builds exactly the tables its models declare (the kit's included, created by
one shared function), on SQLite and PostgreSQL, and takes them all down again."""

import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from services.common.storage import migrations
from services.common.storage.tables import kit_metadata
from tests.support.infra import Postgres, run_id

pytestmark = pytest.mark.integration

SERVICES = ("calls", "grants", "notifications", "reporting", "gateway")


def target_metadata(service: str) -> list:
    models = importlib.import_module(f"services.{service}.models")
    if service == "gateway":
        return [models.metadata]
    return [kit_metadata, models.Base.metadata]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    def make(service: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / (service + '.db')}"
        name = f"jmdi_migr_{run_id()}_{service}"
        made.append(name)
        return Postgres().create_database(name)

    made = []
    yield make
    for name in made:
        Postgres().drop_database(name)


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_build_what_the_models_declare_and_take_it_down(service, database_url):
    url = database_url(service)
    migrations.upgrade(service, url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, target_metadata(service))
            assert differences == []
            assert {"audit_log"} <= set(inspect(conn).get_table_names())

        command.downgrade(migrations.alembic_config(service, url), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
