"""Alembic per service: each service has its own migration history in services/<name>/migrations."""

import zlib

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

from ..runtime.config import SERVICES_DIR


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head"):
    """Migrate; replicas starting together on PostgreSQL take turns (advisory lock), so each step runs once."""
    if not url.startswith("postgresql"):
        command.upgrade(alembic_config(service, url), revision)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    lock_key = zlib.crc32(f"jmdi-migrate-{service}".encode())
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key})
            try:
                command.upgrade(alembic_config(service, url), revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key})
    finally:
        engine.dispose()


def run_env(context, target_metadata):
    """Body of every service's migrations/env.py (online mode only: we migrate live databases)."""
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
