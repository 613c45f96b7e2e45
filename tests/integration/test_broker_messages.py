"""`make run` (services.common.launch.supervisor) and each service's runner say in one line why the broker cannot be used:
"No RabbitMQ broker answers" only when nothing answers; a refused login, a missing virtual host and a user
without access to the virtual host are each named as such. Real broker, real processes."""

import os
import secrets
import subprocess
import sys
from urllib.parse import quote

import pytest

from services.common.security.keys import KeyDirectory
from tests.support.infra import REPO, Broker, free_port, run_id

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def public_keys(tmp_path_factory):
    """The issuer's public keys a service needs before it looks at the broker (the runner checks them first)."""
    keys = KeyDirectory(tmp_path_factory.mktemp("keys"))
    keys.ensure([], issuer=True)
    return str(keys.issuer_jwks)


@pytest.fixture(scope="module")
def broker():
    broker = Broker()
    vhost, user, password = f"jmdi-test-{run_id()}", f"jmdi-test-user-{run_id()}", secrets.token_urlsafe(12)
    broker.create_vhost(vhost)
    broker.api("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": ""})  # no permissions
    broker.vhost, broker.user_without_access, broker.user_password = vhost, user, password
    yield broker
    broker.api("DELETE", f"users/{quote(user, safe='')}")
    broker.delete_vhost(vhost)


def run(module_args: list[str], amqp_uri: str, jwks: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AMQP_URI": amqp_uri, "JMDI_JWKS": jwks, "JMDI_LOCAL_MODE": "true"}
    return subprocess.run(
        [sys.executable, "-m", *module_args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


MAKE_RUN = ["services.common.launch.supervisor"]
RUNNER = ["services.common.launch.runner", "calls", "--no-migrate", "--broker-wait", "0"]


@pytest.mark.parametrize("command", [MAKE_RUN, RUNNER], ids=["make run", "runner"])
def test_each_broker_problem_is_named_for_what_it_is(broker, public_keys, command):
    host = f"{broker.host}:{broker.port}"
    cases = {
        "nothing answers": (
            f"amqp://guest:guest@127.0.0.1:{free_port()}/",
            "No RabbitMQ broker answers at amqp://guest:***@127.0.0.1:",
        ),
        "wrong password": (
            f"amqp://{broker.user}:not-the-password@{host}/{broker.vhost}",
            f"refused the login of user '{broker.user}'",
        ),
        "no such vhost": (broker.amqp_uri(f"{broker.vhost}-missing"), f"has no virtual host '{broker.vhost}-missing'"),
        "no access to the vhost": (
            broker.amqp_uri(broker.vhost, broker.user_without_access, broker.user_password),
            f"does not let user '{broker.user_without_access}' use virtual host '{broker.vhost}'",
        ),
    }
    for case, (uri, expected) in cases.items():
        result = run(command, uri, public_keys)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, f"{case}: {result.returncode}\n{result.stderr}"
        assert expected in lines[-1], f"{case}: {lines}"
        assert ("No RabbitMQ broker answers" in lines[-1]) == (case == "nothing answers"), case
        assert "not-the-password" not in result.stderr and broker.user_password not in result.stderr
