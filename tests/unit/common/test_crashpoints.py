"""Crash points fire only in test mode, only where named, once per marker folder."""

import pytest

from services.common.messaging import crashpoints


@pytest.fixture
def fired(monkeypatch):
    calls = []
    monkeypatch.setattr(crashpoints, "crash", lambda: calls.append(1))
    for name in ("JMDI_TEST_MODE", "JMDI_TEST_CRASH_AT", "JMDI_TEST_CRASH_MARKERS"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_a_named_point_fires_once_per_marker_folder_in_test_mode(monkeypatch, tmp_path, fired):
    monkeypatch.setenv("JMDI_TEST_MODE", "true")
    monkeypatch.setenv("JMDI_TEST_CRASH_AT", "outbox.after_publish, inbox.after_apply")
    monkeypatch.setenv("JMDI_TEST_CRASH_MARKERS", str(tmp_path))
    crashpoints.crash_point("outbox.before_publish")  # not named
    assert fired == []
    crashpoints.crash_point("outbox.after_publish")
    crashpoints.crash_point("outbox.after_publish")  # the restarted process goes on
    crashpoints.crash_point("inbox.after_apply")
    assert fired == [1, 1] and sorted(p.name for p in tmp_path.iterdir()) == [
        "inbox.after_apply",
        "outbox.after_publish",
    ]


@pytest.mark.parametrize("mode", [None, "", "false", "0", "production"])
def test_outside_test_mode_nothing_fires_and_nothing_is_written(monkeypatch, tmp_path, fired, mode):
    if mode is not None:
        monkeypatch.setenv("JMDI_TEST_MODE", mode)
    monkeypatch.setenv("JMDI_TEST_CRASH_AT", ",".join(crashpoints.POINTS))
    monkeypatch.setenv("JMDI_TEST_CRASH_MARKERS", str(tmp_path))
    for point in crashpoints.POINTS:
        crashpoints.crash_point(point)
        assert not crashpoints.fires(point)
    assert fired == [] and list(tmp_path.iterdir()) == []


def test_test_mode_without_a_marker_folder_fires_nothing(monkeypatch, fired):
    monkeypatch.setenv("JMDI_TEST_MODE", "true")
    monkeypatch.setenv("JMDI_TEST_CRASH_AT", "outbox.before_publish")
    crashpoints.crash_point("outbox.before_publish")
    assert fired == []


def test_every_point_is_called_where_the_kit_says():
    from pathlib import Path

    kit = Path(crashpoints.__file__).parent
    source = "".join((kit / name).read_text() for name in ("outbox.py", "publisher.py", "inbox.py", "batch.py"))
    for point in crashpoints.POINTS:
        assert f'"{point}"' in source, point
