"""Alembic per service: each service has its own migration history in services/<name>/migrations."""
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool

from .config import SERVICES_DIR


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head"):
    command.upgrade(alembic_config(service, url), revision)


def run_env(context, target_metadata):
    """Body of every service's migrations/env.py (online mode only: we migrate live databases)."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
