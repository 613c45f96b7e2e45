"""Staff identity: a JWT (HS256, signed with JMDI_SECRET) carried in nameko context data as `authorization`.

Every service verifies the token itself; the role matrix (roles.py) decides which role may call which operation.
Without JMDI_SECRET ("local mode") a development secret is generated once under var/ and shared by the services
and the `jmdi` CLI run from the same checkout.
"""
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt

from .config import REPO_ROOT
from .errors import NotAllowed

ROLES = ("programme_manager", "assessor", "committee", "finance_officer", "finance_approver", "auditor",
         "ec_reporter", "service")
DEV_SECRET_FILE = REPO_ROOT / "var" / "dev-secret"
ALGORITHM = "HS256"
ISSUER = "jmdi"


@dataclass(frozen=True)
class Identity:
    user: str
    roles: tuple[str, ...]
    expires_at: datetime


def resolve_secret(configured: str | None = None, dev_file: Path = DEV_SECRET_FILE) -> str:
    """JMDI_SECRET when configured; otherwise the local development secret (created on first use)."""
    secret = configured if configured is not None else os.environ.get("JMDI_SECRET", "")
    if secret:
        return secret
    if not dev_file.exists():
        dev_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dev_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return dev_file.read_text().strip()


def issue_token(secret: str, user: str, roles, ttl: timedelta = timedelta(hours=8), now: datetime | None = None) -> str:
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(unknown)}")
    now = now or datetime.now(timezone.utc)
    claims = {"sub": user, "roles": list(roles), "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp()), "iss": ISSUER}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token, secret: str) -> Identity:
    if not token:
        raise NotAllowed("no identity: pass a signed token (JMDI_TOKEN)")
    if not isinstance(token, str):
        raise NotAllowed("malformed token")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "sub", "iss"]})
    except jwt.ExpiredSignatureError:
        raise NotAllowed("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise NotAllowed(f"invalid token: {exc}") from None
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise NotAllowed("invalid token: roles missing")
    return Identity(user=str(claims["sub"]), roles=tuple(roles),
                    expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc))
