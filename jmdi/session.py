"""Who the CLI is and where it talks: the staff token, local mode, and the connection to the gateway.

- JMDI_TOKEN: a signed staff token (from the organisation's SSO; `jmdi token` with an issuer key); every request
  carries it.
- Local mode: run from a checkout with neither JMDI_TOKEN nor JMDI_ISSUER_KEY set, the CLI signs itself a
  short-lived token with the local issuer's private key (var/keys/issuer/issuer.pem, created by `make run`, whose
  services hold only its public key) for exactly the roles the operation needs (roles.MATRIX). Outside local mode
  nothing is implicit.
- JMDI_ISSUER_KEY: an issuer's private key file, for `jmdi token` and `jmdi demo` where staff tokens are not
  issued by an OIDC provider (a compose demo, tests). JMDI_ISSUER, JMDI_AUDIENCE, JMDI_ROLES_CLAIM shape them.
- JMDI_URL: the gateway, the staff API's only door (default http://127.0.0.1:8000); JMDI_TIMEOUT: how long to wait
  for an answer (seconds, default 120). The CLI never talks to the message broker.
"""

import os
from dataclasses import dataclass, field
from datetime import timedelta

from services.common.runtime.config import REPO_ROOT
from services.common.security import roles as role_matrix
from services.common.security.auth import StaffIssuer
from services.common.security.keys import LOCAL_KEYS_DIR, KeyDirectory, KeyProblem
from services.common.values.errors import NotAllowed

from .transport import DEFAULT_URL, Gateway

TOKEN_SETTINGS = (
    "JMDI_ISSUER",
    "JMDI_AUDIENCE",
    "JMDI_ROLES_CLAIM",
    "JMDI_USER_CLAIM",
    "JMDI_TOKEN_MAX_LIFETIME_SECONDS",
)
LOCAL_TOKEN_TTL = timedelta(minutes=30)
DEFAULT_TIMEOUT = 120.0


def local_user() -> str:
    return f"{os.environ.get('USER') or os.environ.get('USERNAME') or 'staff'}@local"


def is_checkout() -> bool:
    return (REPO_ROOT / "services" / "common" / "security" / "auth.py").exists() and (
        REPO_ROOT / "pyproject.toml"
    ).exists()


@dataclass
class Settings:
    url: str
    token: str | None
    issuer_key: str | None  # JMDI_ISSUER_KEY when configured
    user: str | None = None  # --user: who local mode signs as
    timeout: float = DEFAULT_TIMEOUT
    token_settings: dict = field(default_factory=dict, repr=False)  # JMDI_ISSUER, JMDI_AUDIENCE...
    _local_tokens: dict = field(default_factory=dict, repr=False)
    _issuer: StaffIssuer | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env=None, user: str | None = None) -> "Settings":
        env = os.environ if env is None else env
        timeout = float(env.get("JMDI_TIMEOUT") or DEFAULT_TIMEOUT)
        token_settings = {name: env[name] for name in TOKEN_SETTINGS if env.get(name)}
        return cls(
            url=env.get("JMDI_URL") or DEFAULT_URL,
            token=env.get("JMDI_TOKEN") or None,
            issuer_key=env.get("JMDI_ISSUER_KEY") or None,
            user=user,
            timeout=timeout,
            token_settings=token_settings,
        )

    @property
    def local_mode(self) -> bool:
        return not self.token and not self.issuer_key and is_checkout()

    def staff_issuer(self) -> StaffIssuer | None:
        """Who signs persona tokens (demo, `jmdi token`, local mode): JMDI_ISSUER_KEY, or the local issuer."""
        if self._issuer is None:
            path = self.issuer_key or (KeyDirectory(LOCAL_KEYS_DIR).issuer_key if is_checkout() else None)
            if path is None:
                return None
            try:
                self._issuer = StaffIssuer.from_key_file(path, self.token_settings)
            except KeyProblem as exc:
                hint = "" if self.issuer_key else " (start the services once with `make run`: it creates the key)"
                raise NotAllowed(f"no staff token issuer: {exc}{hint}") from None
        return self._issuer

    def token_for(self, service: str, operation: str) -> str:
        """The token sent with one RPC: JMDI_TOKEN, or in local mode one signed for the roles it needs."""
        if self.token:
            return self.token
        if not self.local_mode:
            raise NotAllowed("no identity: set JMDI_TOKEN (a signed staff token; see `jmdi token --help`)")
        needed = sorted(set(role_matrix.allowed_roles(service, operation)) & set(role_matrix.STAFF_ROLES))
        if not needed:
            raise NotAllowed(f"no staff role may call {service}.{operation}")
        key = tuple(needed)
        if key not in self._local_tokens:  # one token per role set, signed once per command
            issuer = self.staff_issuer()
            if issuer is None:
                raise NotAllowed("no identity: set JMDI_TOKEN, or JMDI_ISSUER_KEY to sign local tokens")
            self._local_tokens[key] = issuer.issue(self.user or local_user(), needed, LOCAL_TOKEN_TTL)
        return self._local_tokens[key]


@dataclass
class Connection:
    """The CLI's requests to the gateway: `call(service, operation, payload)` with this session's token."""

    settings: Settings
    _gateway: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = Gateway(self.settings.url, self.settings.timeout)
        return self._gateway

    def call(self, service: str, operation: str, payload: dict | None = None, token: str | None = None):
        token = token or self.settings.token_for(service, operation)
        return self.gateway.call(service, operation, payload or {}, token)

    def close(self):
        if self._gateway is not None:
            self._gateway.close()  # the persistent HTTP connections it holds

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
