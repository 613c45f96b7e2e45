"""Key material for identities: Ed25519 key pairs, public keys as JWKS, and where each key lives.

Who holds what (docs/access.md): the staff token issuer holds its private key (in production the organisation's
OIDC provider; in `make run` a key pair under var/keys, read only by the `jmdi` CLI); a service that calls another
service holds its own private key; every service and the gateway hold public keys only (JMDI_JWKS for the staff
issuer, JMDI_SERVICE_JWKS for the services).

    python -m services.common.security.keys init DIR [--issuer] [--service NAME ...]

creates, once, the key pairs and JWKS files in DIR (compose's key volumes, a Kubernetes secret store):
DIR/issuer/issuer.pem, DIR/<service>/service.pem, DIR/jwks/issuer.jwks.json, DIR/jwks/services.jwks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from ..runtime.config import REPO_ROOT
from .roles import SERVICE_CALLS

LOCAL_KEYS_DIR = REPO_ROOT / "var" / "keys"
ISSUER_KEY_FILE = "issuer/issuer.pem"
ISSUER_JWKS_FILE = "jwks/issuer.jwks.json"
SERVICES_JWKS_FILE = "jwks/services.jwks.json"


class KeyProblem(Exception):
    """A key or key set is missing or unusable; the message is one line an operator can act on."""


def service_key_file(service: str) -> str:
    return f"{service}/service.pem"


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private_key(path: Path, key) -> None:
    """Written once, readable by its owner only; an existing key is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem(key))


def load_private_key(path: str | Path):
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyProblem(f"cannot read the private key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{path}: only Ed25519 keys sign JMDI tokens (found {type(key).__name__})")
    return key


def public_jwk(key, kid: str | None = None) -> dict:
    """The public half as a JWK (RFC 8037 OKP), with `kid` = its RFC 7638 thumbprint unless one is given."""
    jwk = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk = {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"]}
    jwk.update({"kid": kid or thumbprint(jwk), "use": "sig", "alg": "EdDSA"})
    return jwk


def thumbprint(jwk: dict) -> str:
    """RFC 7638 thumbprint of an OKP key (SHA-256 of the required members in lexicographic order)."""
    import base64
    import hashlib

    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def service_kid(service: str, key) -> str:
    """A service key's id names its owner: `<service>:<thumbprint>`; verification ties the id to the subject."""
    return f"{service}:{thumbprint(public_jwk(key, kid='-'))[:16]}"


def write_jwks(path: Path, keys: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
    tmp.replace(path)


@dataclass(frozen=True)
class KeyDirectory:
    """One directory laid out as `init` writes it (var/keys in local mode)."""

    root: Path

    @property
    def issuer_key(self) -> Path:
        return self.root / ISSUER_KEY_FILE

    @property
    def issuer_jwks(self) -> Path:
        return self.root / ISSUER_JWKS_FILE

    @property
    def services_jwks(self) -> Path:
        return self.root / SERVICES_JWKS_FILE

    def service_key(self, service: str) -> Path:
        return self.root / service_key_file(service)

    def ensure(self, services, issuer: bool = True) -> list[str]:
        """Create the missing key pairs (existing ones are kept) and rewrite the JWKS; return what was created."""
        created = []
        if issuer and not self.issuer_key.exists():
            write_private_key(self.issuer_key, generate_private_key())
            created.append("issuer")
        for service in services:
            if not self.service_key(service).exists():
                write_private_key(self.service_key(service), generate_private_key())
                created.append(service)
        if self.issuer_key.exists():
            write_jwks(self.issuer_jwks, [public_jwk(load_private_key(self.issuer_key))])
        service_keys = []
        for service in sorted(services):
            key = load_private_key(self.service_key(service))
            service_keys.append(public_jwk(key, kid=service_kid(service, key)))
        write_jwks(self.services_jwks, service_keys)
        return created


def local_mode_environments(environ, services, keys: KeyDirectory | None = None) -> dict[str, dict]:
    """`make run`: service -> environment of its process; without JMDI_JWKS (local mode) with the local keys,
    created once."""
    if environ.get("JMDI_JWKS"):
        return {name: dict(environ) for name in services}
    keys = keys or KeyDirectory(LOCAL_KEYS_DIR)
    signing = [name for name in services if name in SERVICE_CALLS]
    created = keys.ensure(signing, issuer=True)
    print(
        f"Local mode: staff tokens are signed by the local issuer key {keys.issuer_key} (read by `jmdi` only)"
        f"{'; created ' + ', '.join(created) if created else ''}. The services hold public keys only "
        f"({keys.issuer_jwks.parent}); the event producer check is OFF (every service is the same broker user).",
        flush=True,
    )
    shared = {
        **environ,
        "JMDI_JWKS": str(keys.issuer_jwks),
        "JMDI_SERVICE_JWKS": str(keys.services_jwks),
        "EVENT_PRODUCER_CHECK": "false",
    }
    return {
        name: {**shared, **({"JMDI_SERVICE_KEY": str(keys.service_key(name))} if name in signing else {})}
        for name in services
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.common.security.keys", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the key pairs and JWKS files (once)")
    init.add_argument("directory", type=Path)
    init.add_argument("--issuer", action="store_true", help="also a local staff token issuer key pair")
    init.add_argument("--service", action="append", default=[], help="a service that signs its own calls")
    args = parser.parse_args(argv)
    created = KeyDirectory(args.directory).ensure(args.service, issuer=args.issuer)
    print(f"keys in {args.directory}: created {', '.join(created) or 'nothing (all present)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
