"""Identities: who is calling, proven by a JWT signed with a key the services cannot use to sign.

Two kinds of caller, told apart by the key that signed the token (its `kid`):
- staff: tokens of the staff issuer — in production the organisation's OIDC provider (Keycloak), in `make run` a
  local key pair under var/keys. The services and the gateway hold the issuer's PUBLIC keys only (JMDI_JWKS: a
  JWKS file or URL). Roles come from a configurable claim (Keycloak: realm_access.roles or
  resource_access.<client>.roles), the user from preferred_username.
- services: a service calling another signs a short-lived token with its own private key (JMDI_SERVICE_KEY); the
  others hold the public keys (JMDI_SERVICE_JWKS). The key id names its owner and must match the subject, the
  audience is the called service, and the only role is `service:<name>` — a service identity can never carry a
  staff role, nor another service's.

The token travels in nameko's context data as `authorization`; every operation verifies it (entrypoints.py) and
the gateway verifies it first: two layers, each sufficient. Every refusal is NotAllowed with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from ..runtime.config import REPO_ROOT
from ..values.errors import NotAllowed
from ..values.inert import clean_text
from .keys import KeyProblem, load_private_key, public_jwk, service_kid
from .roles import SERVICE_CALLS, STAFF_ROLES, service_role

log = logging.getLogger(__name__)

SERVICE_ISSUER = "urn:jmdi:services"
SERVICE_TOKEN_TTL = timedelta(minutes=5)
SERVICE_TOKEN_MAX_LIFETIME = timedelta(minutes=10)
DEFAULT_ISSUER = "jmdi-local"
DEFAULT_AUDIENCE = "jmdi"
DEFAULT_ROLES_CLAIM = "realm_access.roles"
DEFAULT_USER_CLAIM = "preferred_username"
DEFAULT_MAX_LIFETIME = timedelta(hours=12)
CLOCK_LEEWAY_SECONDS = 30  # clocks of issuer and services may differ this much
MAX_TOKEN_CHARS = 16_384  # a token is hostile input: bounded before it is decoded
JWKS_REFRESH_SECONDS = 60  # an unknown key id refetches a JWKS URL at most this often (key rotation)
VERIFIED_TOKENS_KEPT = 4096  # identities of verified tokens kept per process (by the token's hash) until exp
SIGNATURE_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]

# kept for callers that list the roles a person may hold
ROLES = STAFF_ROLES


@dataclass(frozen=True)
class Identity:
    user: str
    roles: tuple[str, ...]
    expires_at: datetime
    kind: str = "staff"  # staff | service
    subject: str = ""
    token_id: str = ""


def _setting(config, name: str, default):
    value = config.get(name)
    return default if value is None or value == "" else value


def _lifetime(config) -> timedelta:
    raw = _setting(config, "JMDI_TOKEN_MAX_LIFETIME_SECONDS", int(DEFAULT_MAX_LIFETIME.total_seconds()))
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise KeyProblem(f"JMDI_TOKEN_MAX_LIFETIME_SECONDS: {raw!r} is not a number of seconds") from None
    if seconds <= 0:
        raise KeyProblem("JMDI_TOKEN_MAX_LIFETIME_SECONDS must be positive")
    return timedelta(seconds=seconds)


def token_settings(config) -> dict:
    """What staff tokens look like here — issuer, audience, claims, maximum lifetime — from the config or the
    environment; the verifier checks them and a local issuer writes them."""
    return {
        "issuer": str(_setting(config, "JMDI_ISSUER", DEFAULT_ISSUER)),
        "audience": str(_setting(config, "JMDI_AUDIENCE", DEFAULT_AUDIENCE)),
        "roles_claim": str(_setting(config, "JMDI_ROLES_CLAIM", DEFAULT_ROLES_CLAIM)),
        "user_claim": str(_setting(config, "JMDI_USER_CLAIM", DEFAULT_USER_CLAIM)),
        "max_lifetime": _lifetime(config),
    }


def _resolve(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else REPO_ROOT / candidate


def _usable_keys(document, source: str) -> dict[str, PyJWK]:
    """kid -> key for every signing key of a JWKS; encryption keys and symmetric keys are left out."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyProblem(f"{source} is not a JWKS (an object with a `keys` list)")
    found = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue
        if entry.get("alg") is not None and entry.get("alg") not in SIGNATURE_ALGORITHMS:
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            found[kid] = PyJWK(entry)
        except PyJWKError as exc:
            log.warning("%s: key %s left out: %s", source, kid, exc)
    if not found:
        raise KeyProblem(f"{source} holds no usable signing key")
    return found


def _read_jwks(location: str) -> dict[str, PyJWK]:
    if location.startswith(("https://", "http://")):
        try:
            with urllib.request.urlopen(location, timeout=10) as response:
                document = json.loads(response.read(1_048_576))
        except (OSError, ValueError) as exc:
            raise KeyProblem(f"cannot fetch the JWKS {location}: {exc}") from None
        return _usable_keys(document, location)
    path = _resolve(location)
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise KeyProblem(f"cannot read the JWKS {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise KeyProblem(f"{path} is not JSON: {exc}") from None
    return _usable_keys(document, str(path))


class KeySet:
    """Public keys by id from a JWKS file or URL; an unknown id reloads it (rate limited), for key rotation."""

    def __init__(self, location: str):
        self.location = location
        self._keys = _read_jwks(location)
        self._loaded_at = time.monotonic()
        self._lock = threading.Lock()

    def get(self, kid: str) -> PyJWK | None:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at >= JWKS_REFRESH_SECONDS:
            with self._lock:
                self._loaded_at = time.monotonic()
                try:
                    self._keys = _read_jwks(self.location)
                except KeyProblem as exc:  # keep the keys we have; the token is refused as unknown
                    log.warning("refreshing keys: %s", exc)
            key = self._keys.get(kid)
        return key

    def __contains__(self, kid) -> bool:
        return kid in self._keys

    def kids(self) -> list[str]:
        return list(self._keys)


def _claim(claims: dict, path: str) -> object:
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _plain_name(value, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
        raise NotAllowed(f"invalid token: {what} is not a user name")
    return value


class TokenVerifier:
    """Verifies staff and service tokens against public keys only. `verify(token) -> Identity` or NotAllowed."""

    def __init__(
        self,
        staff_keys: KeySet,
        service_keys: KeySet | None,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        service_name: str | None = None,
        max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
        roles_claim: str = DEFAULT_ROLES_CLAIM,
        user_claim: str = DEFAULT_USER_CLAIM,
        leeway: float = CLOCK_LEEWAY_SECONDS,
    ):
        self.staff_keys = staff_keys
        self.service_keys = service_keys
        self.issuer = issuer
        self.audience = audience
        self.service_name = service_name
        self.max_lifetime = max_lifetime
        self.roles_claim = roles_claim
        self.user_claim = user_claim
        self.leeway = leeway
        # sha256 of a token -> (identity, exp): the same token again skips the signature and claim checks until
        # it expires (no revocation list to consult); only tokens that verified are kept
        self._verified: dict[bytes, tuple[Identity, float]] = {}

    @classmethod
    def from_config(cls, config: dict) -> "TokenVerifier":
        """From a service's nameko config (or the environment). Raises KeyProblem when keys are missing."""
        location = _setting(config, "JMDI_JWKS", "")
        if not location:
            raise KeyProblem(
                "JMDI_JWKS is not set: give the staff token issuer's public keys (a JWKS file or "
                "URL, e.g. <issuer>/protocol/openid-connect/certs), or start with `make run` "
                "for local mode"
            )
        staff = KeySet(str(location))
        service_location = _setting(config, "JMDI_SERVICE_JWKS", "")
        services = KeySet(str(service_location)) if service_location else None
        if services is not None:
            for kid in services.kids():
                if kid in staff:
                    raise KeyProblem(f"key id {kid} is both a staff issuer key and a service key")
                if ":" not in kid:
                    raise KeyProblem(f"{service_location}: service key id {kid!r} does not name its service")
        return cls(staff, services, service_name=config.get("SERVICE_NAME"), **token_settings(config))

    def verify(self, token) -> Identity:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            return self._verify(token)
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        # expired as jwt.decode sees it: exp <= now - leeway (then verified again, which refuses it)
        if cached is not None and cached[1] > time.time() - self.leeway:
            return cached[0]
        identity = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # simplest bound: the tokens still in use are verified again once
        self._verified[digest] = (identity, identity.expires_at.timestamp())
        return identity

    def _verify(self, token) -> Identity:
        if not token:
            raise NotAllowed("no identity: pass a signed token (JMDI_TOKEN)")
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise NotAllowed("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise NotAllowed("malformed token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise NotAllowed("invalid token: unsigned (alg none)")
        if not isinstance(kid, str) or not kid:
            raise NotAllowed("invalid token: no key id (kid)")
        if self.service_keys is not None and kid in self.service_keys:
            return self._verify_service(token, algorithm, kid)
        key = self.staff_keys.get(kid)
        if key is None:
            raise NotAllowed(f"invalid token: unknown key id {kid[:80]!r}")
        claims = self._decode(token, algorithm, key, kid, self.issuer, self.audience, self.max_lifetime)
        if claims.get("typ", "Bearer") != "Bearer":
            raise NotAllowed(f"invalid token: a {str(claims.get('typ'))[:20]} token is not an access token")
        user = _plain_name(_claim(claims, self.user_claim) or claims["sub"], self.user_claim)
        if user.startswith("service:"):
            raise NotAllowed("invalid token: a staff token cannot name a service")
        # Keycloak leaves the claim out when the user holds none of those roles: no roles, refused by the matrix
        roles = _claim(claims, self.roles_claim) or []
        if not isinstance(roles, list):
            raise NotAllowed(f"invalid token: {self.roles_claim} is not a list of roles")
        # an OIDC provider adds roles of its own (offline_access, default-roles-…): only JMDI staff roles count
        staff_roles = tuple(role for role in roles if isinstance(role, str) and role in STAFF_ROLES)
        return Identity(
            user=user,
            roles=staff_roles,
            expires_at=_expiry(claims),
            kind="staff",
            subject=str(claims["sub"]),
            token_id=str(claims["jti"]),
        )

    def _verify_service(self, token: str, algorithm: str, kid: str) -> Identity:
        owner = kid.split(":", 1)[0]
        if self.service_name is None:
            raise NotAllowed("invalid token: a service token is for a service")
        key = self.service_keys.get(kid) if self.service_keys is not None else None
        if key is None:  # verify() routes here only for a kid of the service keys
            raise NotAllowed(f"invalid token: unknown key id {kid[:80]!r}")
        claims = self._decode(
            token,
            algorithm,
            key,
            kid,
            SERVICE_ISSUER,
            self.service_name,
            SERVICE_TOKEN_MAX_LIFETIME,
        )
        if claims["sub"] != owner:
            raise NotAllowed(f"invalid token: {owner}'s key signed a token for {str(claims['sub'])[:80]!r}")
        return Identity(
            user=f"service:{owner}",
            roles=(service_role(owner),),
            expires_at=_expiry(claims),
            kind="service",
            subject=owner,
            token_id=str(claims["jti"]),
        )

    def _decode(self, token, algorithm, key: PyJWK, kid, issuer, audience, max_lifetime) -> dict:
        if algorithm != key.algorithm_name:
            # algorithm confusion (HS256 "signed" with a public key, RS256 for an EdDSA key...) stops here
            raise NotAllowed(f"invalid token: algorithm {_printable(algorithm[:20])} does not match key {kid[:80]!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=audience,
                issuer=issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise NotAllowed("token expired") from None
        except jwt.ImmatureSignatureError:
            raise NotAllowed("invalid token: not yet valid") from None
        except jwt.InvalidAudienceError:
            raise NotAllowed(f"invalid token: wrong audience (expected {audience})") from None
        except jwt.InvalidIssuerError:
            raise NotAllowed(f"invalid token: wrong issuer (expected {issuer})") from None
        except jwt.MissingRequiredClaimError as exc:
            raise NotAllowed(f"invalid token: no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise NotAllowed("invalid token: bad signature") from None
        except jwt.InvalidTokenError as exc:
            raise NotAllowed(f"invalid token: {exc}") from None
        if not isinstance(claims["exp"], (int, float)) or not isinstance(claims["iat"], (int, float)):
            raise NotAllowed("invalid token: exp and iat must be numbers")
        if claims["exp"] - claims["iat"] > max_lifetime.total_seconds():
            raise NotAllowed(f"invalid token: lifetime over the maximum of {_duration(max_lifetime)}")
        return claims

    def claimed(self, token) -> tuple[str | None, list[str]]:
        return claimed(token, self.user_claim, self.roles_claim)


def claimed(token, user_claim: str = DEFAULT_USER_CLAIM, roles_claim: str = DEFAULT_ROLES_CLAIM):
    """Who an UNVERIFIED token claims to be, as (user, roles): for the audit of a refusal and `jmdi whoami` —
    evidence, never proof."""
    try:
        readable = isinstance(token, str) and len(token) <= MAX_TOKEN_CHARS
        claims = jwt.decode(token, options={"verify_signature": False}) if readable else {}
    except jwt.InvalidTokenError:
        return None, []
    user = _claim(claims, user_claim) or claims.get("sub")
    roles = _claim(claims, roles_claim)
    roles = [_printable(str(r)[:60]) for r in roles][:10] if isinstance(roles, list) else []
    return (_printable(str(user)[:200]) if user else None), roles


def _printable(text: str) -> str:
    """An unverified token's text as the audit trail and a terminal may show it: no control character (an escape
    sequence in a forged token's user name would otherwise reach `jmdi audit`'s terminal), one line."""
    return clean_text(text).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _expiry(claims) -> datetime:
    return datetime.fromtimestamp(claims["exp"], timezone.utc)


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    return (
        f"{seconds // 3600} h"
        if seconds % 3600 == 0
        else f"{seconds // 60} min"
        if seconds % 60 == 0
        else f"{seconds} s"
    )


class StaffIssuer:
    """Signs staff tokens shaped like Keycloak's access tokens. Only for `make run`'s local issuer and tests:
    in production the organisation's OIDC provider issues them and no JMDI component holds its key."""

    def __init__(
        self,
        private_key,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        roles_claim: str = DEFAULT_ROLES_CLAIM,
        user_claim: str = DEFAULT_USER_CLAIM,
        max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
    ):
        self.private_key = private_key
        self.kid = public_jwk(private_key)["kid"]
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim
        self.user_claim = user_claim
        self.max_lifetime = max_lifetime

    @classmethod
    def from_key_file(cls, path, config=None) -> "StaffIssuer":
        config = config or {}
        return cls(load_private_key(path), **token_settings(config or {}))

    def issue(self, user: str, roles, ttl: timedelta = timedelta(hours=8), now: datetime | None = None) -> str:
        unknown = [role for role in roles if role not in STAFF_ROLES]
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(unknown)}")
        if ttl > self.max_lifetime:
            raise ValueError(f"a token lives at most {_duration(self.max_lifetime)} (JMDI_TOKEN_MAX_LIFETIME_SECONDS)")
        now = now or datetime.now(timezone.utc)
        issued = int(now.timestamp())
        claims = {
            "exp": issued + int(ttl.total_seconds()),
            "iat": issued,
            "auth_time": issued,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}/users/{user}")),
            "typ": "Bearer",
            "azp": "jmdi-cli",
            "scope": "openid profile",
        }
        _place(claims, self.user_claim, user)
        _place(claims, self.roles_claim, list(roles))
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid, "typ": "JWT"})


def _place(claims: dict, path: str, value):
    *parents, leaf = path.split(".")
    for part in parents:
        claims = claims.setdefault(part, {})
    claims[leaf] = value


class ServiceSigner:
    """A service's own identity for its calls to other services: short-lived tokens, audience = the callee."""

    def __init__(self, service: str, private_key):
        self.service = service
        self.private_key = private_key
        self.kid = service_kid(service, private_key)

    @classmethod
    def from_config(cls, config: dict) -> "ServiceSigner":
        service = config["SERVICE_NAME"]
        path = _setting(config, "JMDI_SERVICE_KEY", "")
        if not path:
            raise KeyProblem(
                f"JMDI_SERVICE_KEY is not set: {service} calls other services and needs its own "
                "private key (python -m services.common.security.keys init, or `make run` for local mode)"
            )
        return cls(service, load_private_key(_resolve(str(path))))

    def token_for(self, target: str, ttl: timedelta = SERVICE_TOKEN_TTL) -> str:
        issued = int(time.time())
        claims = {
            "iss": SERVICE_ISSUER,
            "sub": self.service,
            "aud": target,
            "iat": issued,
            "exp": issued + int(ttl.total_seconds()),
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})


def identity_problem(service: str, config: dict) -> str | None:
    """Why a service cannot start — it cannot verify its callers, or sign its own calls — in one line; or None."""
    try:
        TokenVerifier.from_config(config)
        if service in SERVICE_CALLS:
            ServiceSigner.from_config(config)
    except KeyProblem as exc:
        return str(exc)
    return None
