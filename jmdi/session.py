"""Who the CLI is and where it talks: the staff token, local mode, and the RPC connection to the services.

- JMDI_TOKEN: a signed staff token (`jmdi token ...` prints one); every RPC carries it.
- Local mode: run from a checkout with neither JMDI_SECRET nor JMDI_TOKEN set, the CLI signs itself a short-lived
  token with the checkout's development secret (var/dev-secret, the one `make run` services use) for exactly the
  roles the operation needs (roles.MATRIX). Outside local mode nothing is implicit.
- AMQP_URI: the broker (default amqp://guest:guest@localhost:5672/).
"""
import os
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

from services.common import roles as role_matrix  # noqa: E402
from services.common.auth import DEV_SECRET_FILE, issue_token, resolve_secret  # noqa: E402
from services.common.config import REPO_ROOT  # noqa: E402
from services.common.errors import NotAllowed  # noqa: E402

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"
LOCAL_TOKEN_TTL = timedelta(minutes=30)
DEFAULT_TIMEOUT = 120.0


class BrokerUnreachable(Exception):
    """No RabbitMQ answers at AMQP_URI: nothing was sent."""


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return url


def local_user() -> str:
    return f"{os.environ.get('USER') or os.environ.get('USERNAME') or 'staff'}@local"


def is_checkout() -> bool:
    return (REPO_ROOT / "services" / "common" / "auth.py").exists() and (REPO_ROOT / "pyproject.toml").exists()


@dataclass
class Settings:
    amqp_uri: str
    token: str | None
    secret: str | None  # JMDI_SECRET when configured
    user: str | None = None  # --user: who local mode signs as
    timeout: float = DEFAULT_TIMEOUT
    _local_tokens: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env=None, user: str | None = None) -> "Settings":
        env = os.environ if env is None else env
        timeout = float(env.get("JMDI_RPC_TIMEOUT") or DEFAULT_TIMEOUT)
        return cls(amqp_uri=env.get("AMQP_URI") or DEFAULT_AMQP_URI, token=env.get("JMDI_TOKEN") or None,
                   secret=env.get("JMDI_SECRET") or None, user=user, timeout=timeout)

    @property
    def local_mode(self) -> bool:
        return not self.token and not self.secret and is_checkout()

    def signing_secret(self) -> str | None:
        """The secret to sign persona tokens with (demo, `jmdi token`): JMDI_SECRET, or the local one."""
        if self.secret:
            return self.secret
        if is_checkout():
            return resolve_secret("", DEV_SECRET_FILE)
        return None

    def token_for(self, service: str, operation: str) -> str:
        """The token sent with one RPC: JMDI_TOKEN, or in local mode one signed for the roles it needs."""
        if self.token:
            return self.token
        if not self.local_mode:
            raise NotAllowed("no identity: set JMDI_TOKEN (a signed staff token; see `jmdi token --help`)")
        needed = sorted(role_matrix.allowed_roles(service, operation) - {role_matrix.SERVICE})
        if not needed:
            raise NotAllowed(f"no staff role may call {service}.{operation}")
        key = tuple(needed)
        if key not in self._local_tokens:  # one token per role set, so repeated calls share one connection
            self._local_tokens[key] = issue_token(resolve_secret("", DEV_SECRET_FILE), self.user or local_user(),
                                                  needed, LOCAL_TOKEN_TTL)
        return self._local_tokens[key]


def check_broker(amqp_uri: str) -> None:
    from kombu import Connection
    try:
        with Connection(amqp_uri, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any failure means "no usable broker"; the reason goes into one line
        raise BrokerUnreachable(f"cannot reach the broker at {redact(amqp_uri)}: {str(exc) or type(exc).__name__} "
                                "(is RabbitMQ running? `make run` needs it; or set AMQP_URI)") from None


@dataclass
class Connection:
    """RPC to the services, one standalone proxy per token (nameko puts the token in every call's context)."""

    settings: Settings
    _runners: dict = field(default_factory=dict)
    _checked: bool = False

    def _proxy(self, token: str):
        from nameko.standalone.rpc import ClusterRpcProxy
        if not self._checked:
            check_broker(self.settings.amqp_uri)
            self._checked = True
        if token not in self._runners:
            runner = ClusterRpcProxy({"AMQP_URI": self.settings.amqp_uri}, context_data={"authorization": token},
                                     timeout=self.settings.timeout)
            self._runners[token] = (runner, runner.start())
        return self._runners[token][1]

    def call(self, service: str, operation: str, payload: dict | None = None, token: str | None = None):
        token = token or self.settings.token_for(service, operation)
        method = getattr(getattr(self._proxy(token), service), operation)
        return method(**(payload or {}))

    def close(self):
        for runner, _proxy in self._runners.values():
            try:
                runner.stop()
            except Exception:  # the connection is already gone; nothing left to release
                pass
        self._runners.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
