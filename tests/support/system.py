"""The whole system for a test: its own vhost and databases, the services as real processes, staff clients."""

import os
import threading
from datetime import timedelta

from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, func, select, text

from jmdi.transport import Gateway
from services.common.security.auth import ServiceSigner, StaffIssuer
from services.common.security.keys import KeyDirectory, load_private_key
from services.common.security.roles import SERVICE_CALLS
from services.common.storage.tables import dead_letters, inbox, outbox

from .answers import check_answer
from .infra import PROCESSES, REPO, SERVICES, Broker, Postgres, ServiceProcess, eventually, free_port, run_id


class StaffClient:
    """A staff member's HTTP client of the gateway: `client.grants.award_grant(...)` is
    POST /api/v1/grants/award_grant with the arguments as JSON and the token as bearer; it returns the result or
    raises the typed error the problem stands for (SystemFailure and its kinds for the system's own failures).
    Every result is checked against the 200 schema the OpenAPI document declares for the operation."""

    def __init__(self, url: str, token: str | None, timeout: float = 30, headers: dict | None = None):
        self.transport = Gateway(url, timeout, headers)
        self.token = token

    def call(self, service: str, operation: str, payload: dict | None = None):
        result = self.transport.call(service, operation, payload, self.token)
        check_answer(f"{service}.{operation}", result)
        return result

    def __getattr__(self, service):
        if service.startswith("_"):
            raise AttributeError(service)
        return _Operations(self, service)

    def close(self):
        self.transport.close()  # its persistent connections (one per thread that called)


class _Operations:
    def __init__(self, client: StaffClient, service: str):
        self._client, self._service = client, service

    def __getattr__(self, operation):
        def call(*args, **kwargs):
            payload = args[0] if len(args) == 1 and isinstance(args[0], dict) and not kwargs else kwargs
            return self._client.call(self._service, operation, payload)

        return call


class RpcClient:
    """RPC straight to the services over the broker (one proxy per thread), for what only services do:
    a service identity calling another service, or a test of the services' own (second) access check."""

    def __init__(self, amqp_uri: str, token: str | None, timeout: float = 30):
        self._config = {"AMQP_URI": amqp_uri}
        self._context = {"authorization": token} if token else {}
        self._timeout = timeout
        self._local = threading.local()
        self._proxies = []
        self._lock = threading.Lock()

    def _proxy(self):
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            runner = ClusterRpcProxy(self._config, context_data=self._context, timeout=self._timeout)
            proxy = runner.start()
            self._local.proxy = proxy
            with self._lock:
                self._proxies.append(runner)
        return proxy

    def __getattr__(self, service):
        return getattr(self._proxy(), service)

    def close(self):
        for runner in self._proxies:
            try:
                runner.stop()
            except Exception:  # connection already gone (broker restarted in a test)
                pass
        self._proxies.clear()


class System:
    """`services`: the services to start (all four by default); the gateway always starts, first, since every
    staff client goes through it. The gateway is told to tolerate many refusals per client (the role-matrix tests
    are refused hundreds of times from one address); tests of that limit start a gateway of their own."""

    def __init__(self, services=SERVICES, extra_env=None, broker=None):
        self.id = run_id()
        # `broker`: another broker than the test broker (R13's cluster: reliability/cluster.py)
        self.broker = broker or Broker()
        self.postgres = Postgres()
        self.vhost = f"jmdi-test-{self.id}"
        self.databases = {s: f"jmdi_test_{self.id}_{s}" for s in PROCESSES}
        # logs stay for the post-mortem of a failed run (make clean removes them)
        self.log_dir = REPO / "var" / "test-logs" / self.id
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.wanted = services
        self.extra_env = extra_env or {}
        self.processes: dict[str, ServiceProcess] = {}
        self.clients: list[StaffClient | RpcClient] = []
        self.engines = {}
        # a per-run staff token issuer and service keys: the services get the public keys only
        self.keys = KeyDirectory(self.log_dir / "keys")
        self.keys.ensure(SERVICE_CALLS, issuer=True)
        self.issuer = StaffIssuer.from_key_file(self.keys.issuer_key)

    # --- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self):
        print(f"system {self.id}: service logs in {self.log_dir}")
        self.amqp_uri = self.broker.create_vhost(self.vhost)
        self.urls = {s: self.postgres.create_database(db) for s, db in self.databases.items()}
        env = dict(os.environ)
        env.update(
            {
                "AMQP_URI": self.amqp_uri,
                "JMDI_JWKS": str(self.keys.issuer_jwks),
                "JMDI_SERVICE_JWKS": str(self.keys.services_jwks),
                "EVENT_RETRY_ATTEMPTS": "3",
                # every service is the vhost's one admin user here, as in `make run`: no producer to tell apart
                "EVENT_PRODUCER_CHECK": "false",
                "EVENT_RETRY_BACKOFF": "0.05",
                "OUTBOX_SWEEP_SECONDS": "0.5",
                "LOG_LEVEL": "INFO",
                "MAIL_FOLDER": str(self.log_dir / "mail"),
                "PYTHONUNBUFFERED": "1",
                # the test broker's guest login and trust-authenticated databases: development secrets
                "JMDI_LOCAL_MODE": "true",
            }
        )
        for service in PROCESSES:
            env[f"{service.upper()}_DATABASE_URL"] = self.urls[service]
            env[f"{service.upper()}_METRICS_PORT"] = str(free_port())
        env.update(
            {
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(free_port()),
                "GATEWAY_REFUSALS_PER_MINUTE": "1000000",
                "GATEWAY_REFUSAL_AUDITS_PER_MINUTE": "1000000",
                "REFUSAL_AUDITS_PER_MINUTE": "1000000",
            }
        )
        env.update(self.extra_env)
        self.env = env
        for service in PROCESSES:
            self.processes[service] = ServiceProcess(service, self.service_env(service), self.log_dir)
        for service in ("gateway", *self.wanted):
            self.start(service)
        for service in ("gateway", *self.wanted):
            self.wait_ready(service)
        return self

    def __exit__(self, *exc):
        for client in self.clients:
            client.close()
        for process in self.processes.values():
            process.stop()
        for engine in self.engines.values():
            engine.dispose()
        self.broker.delete_vhost(self.vhost)
        for db in self.databases.values():
            self.postgres.drop_database(db)

    def service_env(self, service: str, **overrides) -> dict:
        """The environment of one service's process: the run's, its own private key if it calls others."""
        own_key = {"JMDI_SERVICE_KEY": str(self.keys.service_key(service))} if service in SERVICE_CALLS else {}
        return {**self.env, **own_key, **overrides}

    def start(self, service: str):
        self.processes[service].start()

    def start_with(self, service: str, extra_env: dict | None = None):
        """Start a service with settings of its own (e.g. a crash point armed); None: the system's settings."""
        self.processes[service].env = self.service_env(service, **(extra_env or {}))
        self.start(service)

    def wait_ready(self, service: str, timeout: float = 60):
        """Until the service answers its health through the gateway (the gateway: until it serves its API)."""
        client = self.client("probe", ["programme_manager"])

        def healthy():
            if not self.processes[service].running:
                raise RuntimeError(f"{service} exited:\n{self.processes[service].log_tail()}")
            try:
                if service == "gateway":
                    return bool(client.transport.request("GET", "/api/v1/openapi.json"))
                return getattr(client, service).health()["status"] == "ok"
            except Exception:
                return False

        eventually(healthy, timeout, 0.3, f"{service} ready")

    def restart(self, service: str):
        self.processes[service].stop()
        self.start(service)
        self.wait_ready(service)

    def kill9(self, service: str):
        self.processes[service].kill9()

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[service.upper() + '_METRICS_PORT']}/metrics"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    # --- clients and inspection ---------------------------------------------------------------------------
    def token(self, user: str, roles, ttl=timedelta(hours=1)) -> str:
        return self.issuer.issue(user, roles, ttl)

    def service_token(self, service: str, target: str) -> str:
        """A token of `service`'s own identity for a call to `target`, signed with this run's key of it."""
        return ServiceSigner(service, load_private_key(self.keys.service_key(service))).token_for(target)

    def client(
        self, user: str | None, roles=(), token: str | None = None, timeout: float = 30, headers: dict | None = None
    ) -> StaffClient:
        """A staff member at the gateway (no user and no token: a request without identity)."""
        if token is None and user is not None:
            token = self.token(user, roles)
        client = StaffClient(self.gateway_url, token, timeout, headers)
        self.clients.append(client)
        return client

    def rpc_client(self, user: str | None, roles=(), token: str | None = None, timeout: float = 30) -> RpcClient:
        """Straight to the services over the broker: for service identities and the services' own checks."""
        if token is None and user is not None:
            token = self.token(user, roles)
        client = RpcClient(self.amqp_uri, token, timeout)
        self.clients.append(client)
        return client

    def service_client(self, service: str, target: str, timeout: float = 30) -> RpcClient:
        """`service` calling `target` over the broker with its own identity (signed with its own key)."""
        return self.rpc_client(None, token=self.service_token(service, target), timeout=timeout)

    def db(self, service: str):
        if service not in self.engines:
            self.engines[service] = create_engine(self.urls[service])
        return self.engines[service]

    def scalar(self, service: str, query):
        with self.db(service).connect() as conn:
            return conn.execute(text(query) if isinstance(query, str) else query).scalar()

    def count(self, service: str, table) -> int:
        return self.scalar(service, select(func.count()).select_from(table))

    def count_rows(self, service: str, table_name: str) -> int:
        return self.scalar(service, f"SELECT count(*) FROM {table_name}")

    def outbox_events(self, service: str) -> int:
        return self.count(service, outbox)

    def pending_outbox(self, service: str) -> int:
        return self.scalar(service, select(func.count()).where(outbox.c.published_at.is_(None)))

    def inbox_count(self, service: str) -> int:
        return self.count(service, inbox)

    def held_dead_letters(self, service: str) -> int:
        return self.scalar(service, select(func.count()).where(dead_letters.c.status == "held"))
