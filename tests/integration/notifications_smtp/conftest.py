import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "tests" / "unit" / "notifications"
HERE = Path(__file__).resolve().parent
for path in (ROOT, SAMPLES, HERE):  # repo (services), unit samples, this folder
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import pytest  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from smtp_servers import Mailbox, authenticate, free_port  # noqa: E402

from services.common.storage.db import DatabaseCore  # noqa: E402
from services.common.storage.migrations import upgrade  # noqa: E402
from tests.support.infra import Postgres, run_id  # noqa: E402


@pytest.fixture
def smtp_server():
    """Start a real aiosmtpd server on a free localhost port: smtp_server(handler, **controller_kwargs)."""
    controllers = []

    def start(handler=None, **kwargs):
        handler = handler or Mailbox()
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10, **kwargs)
        controller.start()
        controllers.append(controller)
        return controller, handler

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def authenticator():
    return authenticate


@pytest.fixture
def pg_core():
    """notifications' database on the real PostgreSQL, migrated, fresh for the test and dropped after it."""
    name = f"jmdi_notifications_pg_{run_id()}"
    url = Postgres().create_database(name)
    upgrade("notifications", url)
    database = DatabaseCore(url, "notifications")
    try:
        yield database
    finally:
        database.dispose()
        Postgres().drop_database(name)
