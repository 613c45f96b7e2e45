"""Fixtures for the calls domain tests (no broker, no database).

The repository root (and this folder, for calls_builders) is put on sys.path because these tests may run before
any project-wide pytest configuration exists, and under --import-mode=importlib; a no-op when already importable.
"""

import sys
from datetime import date, datetime
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from calls_builders import UTC, make_call  # noqa: E402
from services.calls.domain import load_profile, load_programme  # noqa: E402


FOUNDED = date(2008, 12, 1)  # the shipped programme's 36 months, loaded on the day the JMDI started


@pytest.fixture(scope="session")
def programme():
    return load_programme("jmdi", loaded_on=FOUNDED)


@pytest.fixture(scope="session")
def profile():
    return load_profile("ec_prag")


@pytest.fixture
def call(programme, profile):
    return make_call(programme, profile)


@pytest.fixture
def open_call(call):
    call.open(datetime(2008, 12, 5, tzinfo=UTC))
    return call
