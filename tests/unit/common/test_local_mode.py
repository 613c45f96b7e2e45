"""`make run`'s local mode and the start-up check of every service's keys."""

from services.common.contracts.topology import SERVICES
from services.common.security.auth import identity_problem
from services.common.security.keys import KeyDirectory
from services.common.security.keys import local_mode_environments


def test_local_mode_makes_the_keys_once_and_gives_each_service_only_its_own(tmp_path, capsys):
    keys = KeyDirectory(tmp_path)
    envs = local_mode_environments({"PATH": "/bin"}, SERVICES, keys=keys)
    announced = capsys.readouterr().out
    assert "Local mode" in announced and "event producer check is OFF" in announced
    assert envs["reporting"]["JMDI_SERVICE_KEY"] == str(keys.service_key("reporting"))
    assert envs["notifications"]["JMDI_SERVICE_KEY"] == str(keys.service_key("notifications"))
    assert "JMDI_SERVICE_KEY" not in envs["calls"] and "JMDI_SERVICE_KEY" not in envs["grants"]
    for env in envs.values():
        assert env["JMDI_JWKS"] == str(keys.issuer_jwks) and env["EVENT_PRODUCER_CHECK"] == "false"
        assert str(keys.issuer_key) not in env.values(), "no service is given the issuer's private key"
    before = keys.issuer_key.read_bytes()
    local_mode_environments({}, SERVICES, keys=keys)
    assert keys.issuer_key.read_bytes() == before


def test_with_jmdi_jwks_set_there_is_no_local_mode(tmp_path):
    envs = local_mode_environments(
        {"JMDI_JWKS": "https://sso.example.org/certs"}, SERVICES, keys=KeyDirectory(tmp_path)
    )
    assert all(env == {"JMDI_JWKS": "https://sso.example.org/certs"} for env in envs.values())
    assert not any(tmp_path.iterdir())


def test_a_service_without_its_keys_says_why_in_one_line(tmp_path):
    keys = KeyDirectory(tmp_path)
    keys.ensure(["reporting"], issuer=True)
    problem = identity_problem("grants", {"SERVICE_NAME": "grants"})
    assert problem.startswith("JMDI_JWKS is not set") and "\n" not in problem
    assert identity_problem("grants", {"SERVICE_NAME": "grants", "JMDI_JWKS": str(keys.issuer_jwks)}) is None
    reporting = {"SERVICE_NAME": "reporting", "JMDI_JWKS": str(keys.issuer_jwks)}
    assert identity_problem("reporting", reporting).startswith("JMDI_SERVICE_KEY is not set")
    assert identity_problem("reporting", {**reporting, "JMDI_SERVICE_KEY": str(keys.service_key("reporting"))}) is None


def test_a_service_started_without_keys_refuses_with_one_line():
    import os
    import subprocess
    import sys
    from services.common.runtime.config import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("JMDI_")}
    result = subprocess.run(
        [sys.executable, "-m", "services.common.launch.runner", "grants", "--no-migrate"],
        cwd=REPO_ROOT,
        env={**env, "AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("grants: JMDI_JWKS is not set")
    assert "Traceback" not in result.stderr
