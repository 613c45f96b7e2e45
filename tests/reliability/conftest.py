import pytest

from tests.support.system import System


@pytest.fixture(scope="module")
def system():
    with System() as running:
        yield running
