"""No weak secret starts: outside local mode a service (and the gateway) refuses to start with a missing, short or
known-default secret or key, saying which setting and why in one line each.

Local mode (JMDI_LOCAL_MODE=true) is what `make run` and the test suite set: the broker's `guest` login, databases
without passwords and the keys under var/keys are accepted there, and the runner announces it at start.

What is checked (values read raw from the environment, never through YAML: services/common/runtime/config.py):
- the password in AMQP_URI and in the service's database URL (a PostgreSQL URL needs one; SQLite has none);
- SMTP_PASSWORD when SMTP_USER is set (notifications);
- JMDI_JWKS, JMDI_SERVICE_JWKS, JMDI_SERVICE_KEY: not the local issuer's keys under var/keys; RSA keys of at least
  2048 bits; a private key file not readable by everyone.
A secret is strong enough when it is none of the known defaults (guest, postgres, admin, REPLACE_ME,
<user>-dev-password, ...) and holds at least 256 bits (32 bytes) of entropy, estimated as length x log2(size of
the character classes it uses), with at least 10 different characters: `openssl rand -base64 32` or
`openssl rand -hex 32` make one.
"""

from __future__ import annotations

import json
import math
import os
import stat
import string
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..runtime.config import REPO_ROOT, as_bool

MIN_ENTROPY_BITS = 256
MIN_DISTINCT_CHARACTERS = 10
MIN_RSA_BITS = 2048
KNOWN_DEFAULTS = frozenset(
    {
        "guest",
        "postgres",
        "admin",
        "password",
        "changeme",
        "change-me",
        "secret",
        "s3cret",
        "replace_me",
        "replaceme",
        "default",
        "jmdi",
        "rabbitmq",
        "example",
        "test",
        "null",
        "none",
        "false",
        "true",
        "0",
    }
)
KNOWN_DEFAULT_PARTS = ("dev-password", "replace_me", "changeme", "change-me", "example-secret")
LOCAL_KEYS = REPO_ROOT / "var" / "keys"


def local_mode(env=None) -> bool:
    env = os.environ if env is None else env
    return as_bool(env.get("JMDI_LOCAL_MODE", "false"))


def entropy_bits(value: str) -> float:
    """length x log2(pool), the pool being the character classes the value uses."""
    pool = 0
    for alphabet, size in ((string.ascii_lowercase, 26), (string.ascii_uppercase, 26), (string.digits, 10)):
        if any(ch in alphabet for ch in value):
            pool += size
    if any(not (ch.isascii() and ch.isalnum()) for ch in value):
        pool += 33
    return len(value) * math.log2(pool) if pool else 0.0


def weakness(value: str | None) -> str | None:
    """Why a secret is not good enough, or None."""
    if value is None or value == "":
        return "missing"
    folded = value.strip().lower()
    if folded in KNOWN_DEFAULTS or any(part in folded for part in KNOWN_DEFAULT_PARTS):
        return "a known default"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS or entropy_bits(value) < MIN_ENTROPY_BITS:
        return (
            f"too short (about {int(entropy_bits(value))} bits; at least {MIN_ENTROPY_BITS} bits — 32 bytes — "
            f"of entropy: `openssl rand -base64 32`)"
        )
    return None


def _url_password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


def _under_local_keys(location: str) -> bool:
    if location.startswith(("http://", "https://")):
        return False
    path = Path(location)
    path = path if path.is_absolute() else REPO_ROOT / path
    try:
        return path.resolve().is_relative_to(LOCAL_KEYS.resolve())
    except OSError:
        return False


def _short_rsa_keys(location: str) -> list[str]:
    """kids of RSA keys under MIN_RSA_BITS in a JWKS file (URLs are checked by their provider)."""
    if location.startswith(("http://", "https://")):
        return []
    path = Path(location)
    path = path if path.is_absolute() else REPO_ROOT / path
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return []  # unreadable: the identity check names that
    short = []
    for entry in document.get("keys", []) if isinstance(document, dict) else []:
        if isinstance(entry, dict) and entry.get("kty") == "RSA" and isinstance(entry.get("n"), str):
            import base64

            modulus = base64.urlsafe_b64decode(entry["n"] + "=" * (-len(entry["n"]) % 4))
            if len(modulus.lstrip(b"\0")) * 8 < MIN_RSA_BITS:
                short.append(str(entry.get("kid")))
    return short


def problems(service: str, config: dict, env=None) -> list[str]:
    """Every reason the service must not start with these secrets and keys (empty: fine)."""
    env = os.environ if env is None else env
    found = []
    amqp = str(config.get("AMQP_URI") or "")
    why = weakness(_url_password(amqp))
    if why:
        found.append(f"AMQP_URI: the broker password is {why}")
    database = str(config.get("DATABASE_URL") or "")
    if database.startswith("postgresql"):
        why = weakness(_url_password(database))
        if why:
            found.append(f"{service.upper()}_DATABASE_URL: the database password is {why}")
    if service == "notifications" and str(config.get("SMTP_USER") or "").strip():
        why = weakness(config.get("SMTP_PASSWORD"))
        if why:
            found.append(f"SMTP_PASSWORD: {why} (SMTP_USER is set)")
    for name in ("JMDI_JWKS", "JMDI_SERVICE_JWKS", "JMDI_SERVICE_KEY"):
        location = str(config.get(name) or "")
        if location and _under_local_keys(location):
            found.append(f"{name}: {location} is a key of `make run`'s local mode (var/keys), not for a deployment")
        if location and name != "JMDI_SERVICE_KEY":
            for kid in _short_rsa_keys(location):
                found.append(f"{name}: RSA key {kid} is shorter than {MIN_RSA_BITS} bits")
    key = str(config.get("JMDI_SERVICE_KEY") or "")
    if key:
        path = Path(key) if Path(key).is_absolute() else REPO_ROOT / key
        try:
            if path.stat().st_mode & stat.S_IROTH:
                found.append(f"JMDI_SERVICE_KEY: {key} is readable by every user of the machine (chmod o-r)")
        except OSError:
            pass  # missing: the identity check names that
    return found


def startup_problem(service: str, config: dict, env=None) -> str | None:
    """One line for the operator, or None (always None in local mode)."""
    if local_mode(env):
        return None
    found = problems(service, config, env)
    if not found:
        return None
    return "refusing to start with weak secrets or keys (outside local mode; `make run` is local mode): " + "; ".join(
        found
    )
