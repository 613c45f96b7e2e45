"""No weak secret starts (services/common/security/secrecy.py), values are read raw (config.py), and the runner refuses
to start outside local mode with one line naming every weak setting."""

import base64
import os
import secrets
import subprocess
import sys

import pytest

from services.common.runtime import config
from services.common.runtime.config import REPO_ROOT
from services.common.security import secrecy
from services.common.security.keys import KeyDirectory

# what the refusal message recommends (`openssl rand -base64 32`): 44 characters, the padding always among them
OPENSSL_BASE64 = base64.b64encode(secrets.token_bytes(32)).decode()
STRONG_HEX = secrets.token_hex(32)
# a password that goes into the URLs below: URL-safe, and 64 characters pass whatever classes chance gives them
STRONG = secrets.token_urlsafe(48)


@pytest.mark.parametrize("value", ["s3cret #tail", "null", "false", "0", "  spaced value  ", "a: b", "~", "[1]"])
def test_secrets_are_read_raw_never_through_yaml(tmp_path, value):
    path = tmp_path / "config.yml"
    path.write_text(
        "AMQP_URI: ${AMQP_URI:amqp://x/}\nDATABASE_URL: ${DB:sqlite:///var/t.db}\n"
        "SMTP_PASSWORD: ${SMTP_PASSWORD:}\nJMDI_JWKS: ${JMDI_JWKS:}\nOTHER: ${OTHER:}\n"
    )
    loaded = config.load_config(
        "notifications", env={"SMTP_PASSWORD": value, "JMDI_JWKS": value, "OTHER": "10"}, path=path
    )
    assert loaded["SMTP_PASSWORD"] == value and loaded["JMDI_JWKS"] == value
    assert loaded["OTHER"] == 10  # other settings keep their YAML types
    unset = config.load_config("notifications", env={}, path=path)
    assert unset["SMTP_PASSWORD"] == "" and unset["AMQP_URI"] == "amqp://x/"


def test_every_service_reads_its_secrets_raw():
    for service in ("calls", "grants", "notifications", "reporting", "gateway"):
        text = (config.SERVICES_DIR / service / "config.yml").read_text()
        for line in text.splitlines():
            if line.startswith(("AMQP_URI:", "DATABASE_URL:", "JMDI_JWKS:", "SMTP_PASSWORD:", "JMDI_SERVICE_KEY:")):
                name = line.split("${", 1)[1].split(":", 1)[0]
                assert name in config.RAW_SETTINGS, (service, name)


@pytest.mark.parametrize(
    "value, why",
    [
        (None, "missing"),
        ("", "missing"),
        ("guest", "a known default"),
        ("calls-dev-password", "a known default"),
        ("REPLACE_ME", "a known default"),
        ("null", "a known default"),
        ("false", "a known default"),
        ("0", "a known default"),
        ("s3cret #tail", "too short"),
        ("correct horse battery", "too short"),
        ("a" * 80, "too short"),
        ("ab" * 40, "too short"),
        (secrets.token_hex(16), "too short"),
    ],
)
def test_weak_secrets_are_named(value, why):
    assert secrecy.weakness(value).startswith(why)


@pytest.mark.parametrize("value", [OPENSSL_BASE64, STRONG_HEX, STRONG])
def test_secrets_of_32_random_bytes_pass(value):
    assert secrecy.weakness(value) is None


def service_config(**overrides):
    base = {
        "AMQP_URI": f"amqp://calls:{STRONG}@rabbit:5672/jmdi",
        "DATABASE_URL": f"postgresql+psycopg2://jmdi_calls:{STRONG_HEX}@db:5432/calls",
    }
    return {**base, **overrides}


def test_a_service_with_strong_secrets_has_no_problem():
    assert secrecy.problems("calls", service_config(), env={}) == []


def test_each_weak_setting_is_named():
    found = secrecy.problems(
        "notifications",
        service_config(
            AMQP_URI="amqp://guest:guest@localhost:5672/",
            DATABASE_URL="postgresql://jmdi:short@db/notifications",
            SMTP_USER="jmdi",
            SMTP_PASSWORD="null",
        ),
        env={},
    )
    assert [p.split(":")[0] for p in found] == ["AMQP_URI", "NOTIFICATIONS_DATABASE_URL", "SMTP_PASSWORD"]
    no_password = secrecy.problems("calls", service_config(AMQP_URI="amqp://rabbit:5672/jmdi"), env={})
    assert no_password == ["AMQP_URI: the broker password is missing"]
    assert secrecy.problems("calls", service_config(DATABASE_URL="sqlite:///var/calls.db"), env={}) == []


def test_local_mode_keys_and_weak_rsa_keys_are_refused_outside_local_mode(tmp_path):
    import base64
    import json

    local = str(REPO_ROOT / "var" / "keys" / "jwks" / "issuer.jwks.json")
    assert "var/keys" in secrecy.problems("calls", service_config(JMDI_JWKS=local), env={})[0]
    weak = tmp_path / "weak.jwks.json"
    modulus = base64.urlsafe_b64encode(b"\x80" + b"\x01" * 127).rstrip(b"=").decode()  # 1024 bits
    weak.write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "old", "n": modulus, "e": "AQAB"}]}))
    assert secrecy.problems("calls", service_config(JMDI_JWKS=str(weak)), env={}) == [
        "JMDI_JWKS: RSA key old is shorter than 2048 bits"
    ]
    keys = KeyDirectory(tmp_path / "keys")
    keys.ensure(["reporting"], issuer=True)
    key = keys.service_key("reporting")
    assert secrecy.problems("reporting", service_config(JMDI_SERVICE_KEY=str(key)), env={}) == []
    key.chmod(0o644)
    assert (
        "readable by every user" in secrecy.problems("reporting", service_config(JMDI_SERVICE_KEY=str(key)), env={})[0]
    )


def test_local_mode_accepts_development_secrets_only_when_set_explicitly():
    weak = service_config(AMQP_URI="amqp://guest:guest@localhost:5672/")
    assert secrecy.startup_problem("calls", weak, env={"JMDI_LOCAL_MODE": "true"}) is None
    for env in ({}, {"JMDI_LOCAL_MODE": "false"}, {"JMDI_LOCAL_MODE": ""}):
        assert secrecy.startup_problem("calls", weak, env=env).startswith("refusing to start with weak secrets")


def runner(env_overrides: dict, tmp_path) -> subprocess.CompletedProcess:
    keys = KeyDirectory(tmp_path / "keys")
    keys.ensure([], issuer=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JMDI_", "AMQP_", "CALLS_"))}
    env.update(
        {
            "JMDI_JWKS": str(keys.issuer_jwks),
            "CALLS_DATABASE_URL": f"sqlite:///{tmp_path / 'calls.db'}",
            **env_overrides,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "services.common.launch.runner", "calls", "--no-migrate", "--broker-wait", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("password", ["guest", "null", "s3cret #tail"])
def test_the_runner_refuses_weak_secrets_outside_local_mode_in_one_line(tmp_path, password):
    from urllib.parse import quote

    result = runner({"AMQP_URI": f"amqp://calls:{quote(password)}@127.0.0.1:1/"}, tmp_path)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("calls: refusing to start with weak secrets") and "AMQP_URI" in last, last
    assert password not in last and "Traceback" not in result.stderr


def test_the_runner_announces_local_mode_and_goes_on(tmp_path):
    result = runner({"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/", "JMDI_LOCAL_MODE": "true"}, tmp_path)
    assert "LOCAL MODE" in result.stdout + result.stderr
    assert "No RabbitMQ broker answers" in result.stderr.strip().splitlines()[-1]  # past the secrets check
