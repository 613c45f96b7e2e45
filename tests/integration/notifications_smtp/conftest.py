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
