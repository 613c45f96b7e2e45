"""The whole system for a test: its own vhost and databases, the services as real processes, staff clients."""
import os
import threading
from datetime import timedelta

from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, func, select, text

from services.common.auth import issue_token
from services.common.tables import dead_letters, inbox, outbox

from .infra import REPO, SERVICES, Broker, Postgres, ServiceProcess, eventually, free_port, run_id

TEST_SECRET = "test-secret-" + "x" * 32


class StaffClient:
    """A staff member's RPC connection (token in nameko context data), one per thread."""

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
    def __init__(self, services=SERVICES, extra_env=None):
        self.id = run_id()
        self.broker = Broker()
        self.postgres = Postgres()
        self.vhost = f"jmdi-test-{self.id}"
        self.databases = {s: f"jmdi_test_{self.id}_{s}" for s in SERVICES}
        # logs stay for the post-mortem of a failed run (make clean removes them)
        self.log_dir = REPO / "var" / "test-logs" / self.id
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.wanted = services
        self.extra_env = extra_env or {}
        self.processes: dict[str, ServiceProcess] = {}
        self.clients: list[StaffClient] = []
        self.engines = {}

    # --- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self):
        print(f"system {self.id}: service logs in {self.log_dir}")
        self.amqp_uri = self.broker.create_vhost(self.vhost)
        self.urls = {s: self.postgres.create_database(db) for s, db in self.databases.items()}
        env = dict(os.environ)
        env.update({
            "AMQP_URI": self.amqp_uri, "JMDI_SECRET": TEST_SECRET, "EVENT_RETRY_ATTEMPTS": "3",
            "EVENT_RETRY_BACKOFF": "0.05", "OUTBOX_SWEEP_SECONDS": "0.5", "LOG_LEVEL": "INFO",
            "MAIL_FOLDER": str(self.log_dir / "mail"), "PYTHONUNBUFFERED": "1",
        })
        for service in SERVICES:
            env[f"{service.upper()}_DATABASE_URL"] = self.urls[service]
            env[f"{service.upper()}_METRICS_PORT"] = str(free_port())
        env.update(self.extra_env)
        self.env = env
        for service in SERVICES:
            self.processes[service] = ServiceProcess(service, env, self.log_dir)
        for service in self.wanted:
            self.start(service)
        for service in self.wanted:
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

    def start(self, service: str):
        self.processes[service].start()

    def wait_ready(self, service: str, timeout: float = 60):
        client = self.client("probe", ["programme_manager"])

        def healthy():
            if not self.processes[service].running:
                raise RuntimeError(f"{service} exited:\n{self.processes[service].log_tail()}")
            try:
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

    # --- clients and inspection ---------------------------------------------------------------------------
    def token(self, user: str, roles, ttl=timedelta(hours=1)) -> str:
        return issue_token(TEST_SECRET, user, roles, ttl)

    def client(self, user: str | None, roles=(), token: str | None = None, timeout: float = 30) -> StaffClient:
        if token is None and user is not None:
            token = self.token(user, roles)
        client = StaffClient(self.amqp_uri, token, timeout)
        self.clients.append(client)
        return client

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
