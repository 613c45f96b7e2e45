"""A three-node RabbitMQ cluster of our own on this machine, for R13: own node names (jmdi-r13-<run>-<x>@localhost), own
AMQP and distribution ports, own data and log directories and Erlang cookie under a temporary directory. The main
broker (5672) and its configuration are never touched: each node reads only the files written here
(RABBITMQ_CONFIG_FILE, RABBITMQ_CONF_ENV_FILE, RABBITMQ_ENABLED_PLUGINS_FILE, HOME for the cookie).

    with LocalCluster(["a", "b", "c"]) as cluster:
        cluster.amqp_uri("vhost", first="b")   # kombu failover list: every node, b first
        cluster.kill9("b")
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from services.common.messaging.guard import DEFAULT_MAX_MESSAGE_BYTES
from tests.support.infra import free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class ClusterProblem(Exception):
    """The cluster could not be started here; the message says why."""


class LocalCluster:
    def __init__(self, names=("a", "b", "c"), prefix: str = "jmdi-r13", log=print):
        self.names = list(names)
        # a name of its own per run: two runs on one machine (or a node left from a crashed one) never collide
        self.prefix = f"{prefix}-{secrets.token_hex(3)}"
        self.log = log
        self.root = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        self.cookie = secrets.token_hex(20)
        self.ports = {name: free_port() for name in self.names}
        self.dist_ports = {name: free_port() for name in self.names}
        self.processes: dict[str, subprocess.Popen] = {}
        self.os_pids: dict[str, int] = {}
        self.user, self.password = "jmdi-r13", secrets.token_urlsafe(24)

    # --- lifecycle ------------------------------------------------------------------------------------------------
    def node(self, name: str) -> str:
        return f"{self.prefix}-{name}@localhost"

    def env(self, name: str) -> dict:
        base = self.root / name
        home = self.root / "home"
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.node(name),
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.ports[name]),
            "RABBITMQ_DIST_PORT": str(self.dist_ports[name]),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(base / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _write_files(self, name: str):
        base = self.root / name
        for sub in ("mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.ports[name]}\n"
            f"max_message_size = {DEFAULT_MAX_MESSAGE_BYTES}\n"
            "vm_memory_high_watermark.absolute = 768MB\n"
            "disk_free_limit.absolute = 50MB\n"
            "cluster_partition_handling = pause_minority\n"
            "log.console = false\nlog.file.level = warning\n"
        )
        (base / "rabbitmq-env.conf").write_text("")
        (base / "enabled_plugins").write_text("[].\n")

    def ctl(self, name: str, *args, timeout: float = 120, check: bool = True) -> str:
        result = subprocess.run(
            [CTL, "-n", self.node(name), *args], env=self.env(name), capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise ClusterProblem(
                f"rabbitmqctl {' '.join(args)} on {self.node(name)}: {(result.stderr or result.stdout).strip()[-400:]}"
            )
        return result.stdout

    def start(self):
        if not (Path(SERVER).exists() and Path(CTL).exists()):
            raise ClusterProblem(f"no RabbitMQ server at {SERVER}")
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        for name in self.names:
            self._start_node(name)
        first = self.names[0]
        for name in self.names[1:]:
            self.ctl(name, "stop_app")
            self.ctl(name, "join_cluster", self.node(first))
            self.ctl(name, "start_app")
        running = self.ctl(first, "cluster_status", "--formatter", "json")
        if not all(self.node(name) in running for name in self.names):
            raise ClusterProblem(f"the cluster did not form: {running[:400]}")
        self.ctl(first, "add_user", self.user, self.password)
        self.ctl(first, "set_user_tags", self.user, "administrator")
        self.log(
            f"cluster {', '.join(self.node(n) for n in self.names)} on ports "
            f"{', '.join(str(self.ports[n]) for n in self.names)} ({self.root})"
        )
        return self

    # a port found free may be taken again before the node binds it (any process's outgoing connection can get it)
    PORT_TAKEN = ("could_not_start_listener", "eaddrinuse")
    START_ATTEMPTS = 3

    def _start_node(self, name: str):
        for attempt in range(1, self.START_ATTEMPTS + 1):
            output = self._try_start_node(name)
            if output is None:
                return
            if attempt == self.START_ATTEMPTS or not any(sign in output for sign in self.PORT_TAKEN):
                raise ClusterProblem(f"{self.node(name)} exited at start: {output[-600:]}")
            self.log(
                f"{self.node(name)}: port {self.ports[name]} or {self.dist_ports[name]} was taken meanwhile; "
                "starting it again on other ports"
            )
            self.ports[name], self.dist_ports[name] = free_port(), free_port()

    def _try_start_node(self, name: str) -> str | None:
        """None once the node is up; its output if it exited at start."""
        self._write_files(name)
        out = self.root / f"{name}.out"
        log = open(out, "ab")
        # in its own folder: a node that fails writes its erl_crash.dump there, not where the suite was started
        self.processes[name] = subprocess.Popen(
            [SERVER], env=self.env(name), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root
        )
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                output = out.read_text(errors="replace")
                out.unlink()
                return output
            if (
                subprocess.run(
                    [CTL, "-n", self.node(name), "await_startup", "--timeout", "5"],
                    env=self.env(name),
                    capture_output=True,
                    timeout=30,
                ).returncode
                == 0
            ):
                pid = self.ctl(name, "eval", "list_to_integer(os:getpid()).").strip()
                self.os_pids[name] = int(pid)
                return None
            time.sleep(1)
        raise ClusterProblem(f"{self.node(name)} did not start in 120 s")

    def kill9(self, name: str):
        """The node's Erlang VM dies at once (SIGKILL): no goodbye to its peers or its clients."""
        os.kill(self.os_pids[name], signal.SIGKILL)
        self.processes[name].wait(30)
        self.log(f"{self.node(name)} killed -9 (pid {self.os_pids[name]})")

    def running(self, name: str) -> bool:
        return self.processes.get(name) is not None and self.processes[name].poll() is None

    def stop(self):
        for name in self.names:
            if self.running(name):
                self.ctl(name, "stop", check=False, timeout=60)
        for name, proc in self.processes.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this cluster started, nothing else
                proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    # --- for the services -----------------------------------------------------------------------------------------
    def amqp_uri(self, vhost: str, first: str | None = None) -> str:
        """A kombu failover list of every node (`first` first): a client whose node dies reconnects to the next."""
        order = ([first] if first else []) + [n for n in self.names if n != first]
        return ";".join(
            f"amqp://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{self.ports[n]}/{quote(vhost, safe='')}"
            for n in order
        )

    def any_running(self) -> str:
        return next(n for n in self.names if self.running(n))


class ClusterBroker:
    """What tests/support/system.py's System needs of a broker (vhosts and queues), on the cluster."""

    def __init__(self, cluster: LocalCluster, first: str):
        self.cluster = cluster
        self.first = first

    def create_vhost(self, name: str) -> str:
        node = self.cluster.any_running()
        self.cluster.ctl(node, "add_vhost", name)
        self.cluster.ctl(node, "set_permissions", "-p", name, self.cluster.user, ".*", ".*", ".*")
        return self.cluster.amqp_uri(name, self.first)

    def delete_vhost(self, name: str):
        """Nothing: the whole cluster, its data with it, is removed when it stops (deleting a vhost of quorum
        queues while a node is down waits for that node)."""

    def queues(self, vhost: str) -> dict:
        node = self.cluster.any_running()
        out = self.cluster.ctl(node, "list_queues", "-p", vhost, "name", "messages", "type", "--formatter", "json")
        import json

        return {q["name"]: q for q in json.loads(out)}
