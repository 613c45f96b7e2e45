"""A stand-in for reporting's `get_report` RPC (being built by a colleague), run as its own process by tests.

`python tests/integration/notifications_smtp/stub_reporting.py` with AMQP_URI and JMDI_SECRET set: answers
get_report(report_id=...) with {"filename", "mimetype", "content_base64"} to callers holding the `service` role,
the reply contract the notifications service expects (docs/api/notifications.md).
"""
import eventlet

eventlet.monkey_patch()

import base64  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from nameko.extensions import DependencyProvider  # noqa: E402
from nameko.rpc import rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from services.common.auth import verify_token  # noqa: E402
from services.common.errors import EXPECTED_ERRORS, NotAllowed  # noqa: E402

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_bytes(report_id: str) -> bytes:
    """Deterministic binary content, so the test can compare the attachment byte for byte."""
    return (f"JMDI report {report_id}\n".encode() + bytes(range(256))) * 8


class Caller(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx.data.get("authorization")


class StubReporting:
    name = "reporting"
    token = Caller()

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_report(self, report_id):
        identity = verify_token(self.token, os.environ["JMDI_SECRET"])
        if "service" not in identity.roles:
            raise NotAllowed(f"{identity.user} may not reporting.get_report")
        return {"report_id": report_id, "filename": f"jmdi-{report_id}.xlsx", "mimetype": XLSX,
                "content_base64": base64.b64encode(report_bytes(report_id)).decode()}


if __name__ == "__main__":
    runner = ServiceRunner({"AMQP_URI": os.environ["AMQP_URI"]})
    runner.add_service(StubReporting)
    runner.start()
    print("stub reporting ready", flush=True)
    runner.wait()
