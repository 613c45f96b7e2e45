import json
import logging

from services.common.launch.logs import ExpectedErrorsWithoutTraceback, JsonFormatter


def record(msg, exc=False):
    exc_info = None
    if exc:
        try:
            raise ValueError("bad amount")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("nameko.containers", logging.WARNING, __file__, 1, msg, (), exc_info)


def test_json_lines_carry_service_level_and_message():
    line = json.loads(JsonFormatter("grants").format(record("payment approved")))
    assert line["service"] == "grants" and line["level"] == "warning" and line["message"] == "payment approved"
    assert line["ts"].endswith("Z")


def test_expected_refusals_are_logged_without_traceback_and_failures_with_it():
    refused, failed = record("(expected) error handling worker: invalid input", exc=True), record("boom", exc=True)
    ExpectedErrorsWithoutTraceback().filter(refused)
    ExpectedErrorsWithoutTraceback().filter(failed)
    assert "exception" not in json.loads(JsonFormatter("calls").format(refused))
    assert "ValueError: bad amount" in json.loads(JsonFormatter("calls").format(failed))["exception"]
