"""Crash points: the moments the delivery guarantees are about, which tests can hit on purpose.

A random kill -9 rarely lands between a commit and the publish that follows it; these points make each window
deterministic. Each is one call at the exact place in the kit:

- `outbox.before_publish`: the relay holds committed outbox rows and has not published them;
- `outbox.after_publish`: the broker confirmed the rows, the relay has not marked them sent;
- `publisher.no_confirm`: the broker's confirm of a publish is lost (the publisher never hears it);
- `inbox.after_apply`: a consumer committed an event's change and its inbox row, the message is not acked;
- `batch.after_apply`: the same for a batch consumer.

They are inert unless the process runs in test mode (`JMDI_TEST_MODE=true`) with `JMDI_TEST_CRASH_AT` naming
points and `JMDI_TEST_CRASH_MARKERS` a folder: then each named point fires once per folder (a marker file is
created first, so the restarted process goes on) and the process dies at once, as kill -9 would (no clean-up,
no reply, no ack). A test process may replace `crash` to raise instead.
"""

import os
from pathlib import Path

POINTS = (
    "outbox.before_publish",
    "outbox.after_publish",
    "publisher.no_confirm",
    "inbox.after_apply",
    "batch.after_apply",
)
CRASH_STATUS = 86  # distinct from every status a service uses, so a test knows the point fired


def crash():
    os._exit(CRASH_STATUS)


def fires(point: str) -> bool:
    """True once per marker folder for a point named in test mode; False (and nothing read) otherwise."""
    if os.environ.get("JMDI_TEST_MODE", "").strip().lower() not in ("1", "true", "yes", "on"):
        return False
    named = {p.strip() for p in os.environ.get("JMDI_TEST_CRASH_AT", "").split(",")}
    markers = os.environ.get("JMDI_TEST_CRASH_MARKERS", "")
    if point not in named or not markers:
        return False
    try:
        fd = os.open(Path(markers) / point, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # fired already: the restarted process must go on
        return False
    os.close(fd)
    return True


def crash_point(point: str):
    if fires(point):
        crash()
