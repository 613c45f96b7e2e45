"""The staff HTTP client's persistent connections (jmdi/transport.py), against a scripted HTTP/1.1 server: one
connection per thread reused, a connection the server closed while idle replaced, and a request sent again only
when the server cannot have answered it."""

import json
import socket
import threading
import time

import pytest

from jmdi.transport import Gateway, GatewayUnreachable
from services.common.values.errors import NotFound

OK = b'{"ok": true}'


class Server:
    """Accepts connections and serves each request by `script(n)` (n counts requests over all connections):
    "answer", "answer-and-close" (closes after answering, without saying so), "drop" (closes without answering),
    "half" (sends part of a status line, then closes), "not-found" (a 404 problem)."""

    def __init__(self, script=lambda n: "answer", keep_alive: str | None = None):
        self.script, self.keep_alive = script, keep_alive
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[tuple[int, str, bytes]] = []  # (connection number, path, body)
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn, number):
        stream = conn.makefile("rb")
        try:
            while True:
                line = stream.readline()
                if not line:
                    return
                headers = {}
                while (header := stream.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = stream.read(int(headers.get("content-length", 0)))
                with self.lock:
                    self.requests.append((number, line.split()[1].decode(), body))
                    action = self.script(len(self.requests))
                if action == "drop":
                    return
                if action == "half":
                    conn.sendall(b"HTTP/1.1 20")
                    return
                status, payload = (
                    (b"404 Not Found", json.dumps({"code": "not_found", "entity": "call", "key": "X"}).encode())
                    if action == "not-found"
                    else (b"200 OK", OK)
                )
                extra = f"Keep-Alive: {self.keep_alive}\r\n".encode() if self.keep_alive else b""
                conn.sendall(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n" % len(payload) + extra + b"\r\n" + payload
                )
                if action == "answer-and-close":
                    return
        finally:
            stream.close()
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    servers = []

    def start(*args, **kwargs):
        servers.append(Server(*args, **kwargs))
        return servers[-1]

    yield start
    for each in servers:
        each.close()


def test_one_connection_carries_many_requests_and_each_thread_has_its_own(server):
    gateway = server()
    client = Gateway(gateway.url, timeout=5)
    for n in range(20):
        assert client.call("calls", "list_calls", {"n": n}, "token") == {"ok": True}
    assert gateway.connections == 1 and len(gateway.requests) == 20
    threads = [threading.Thread(target=lambda: [client.call("calls", "list_calls") for _ in range(5)]) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gateway.connections == 3 and len(gateway.requests) == 30
    client.close()


def test_a_problem_answer_keeps_the_connection(server):
    gateway = server(lambda n: "not-found" if n == 2 else "answer")
    client = Gateway(gateway.url, timeout=5)
    client.call("calls", "list_calls")
    with pytest.raises(NotFound):
        client.call("calls", "get_call", {"call_id": "X"})
    client.call("calls", "list_calls")
    assert gateway.connections == 1 and len(gateway.requests) == 3


def test_a_connection_the_server_closed_while_idle_is_replaced_before_sending(server):
    gateway = server(lambda n: "answer-and-close")
    client = Gateway(gateway.url, timeout=5)
    for _ in range(3):
        client.call("calls", "list_calls")
        time.sleep(0.05)  # the server's close has arrived
    # each request sent once, each on a new connection: the closed one was seen closed and never written to
    assert gateway.connections == 3 and [number for number, _, _ in gateway.requests] == [1, 2, 3]


def test_a_connection_past_the_announced_idle_timeout_is_not_reused(server):
    gateway = server(keep_alive="timeout=1")  # minus the client's margin of a second: never reused
    client = Gateway(gateway.url, timeout=5)
    client.call("calls", "list_calls")
    client.call("calls", "list_calls")
    assert gateway.connections == 2


def test_a_reused_connection_closed_before_any_answer_is_retried_once_on_a_new_one(server):
    # the race the idle check cannot see: the server closes the connection as the request arrives
    gateway = server(lambda n: "drop" if n == 2 else "answer")
    client = Gateway(gateway.url, timeout=5)
    client.call("calls", "list_calls", {"n": 1})
    assert client.call("calls", "submit_proposal", {"n": 2}) == {"ok": True}
    assert [(number, json.loads(body)) for number, _, body in gateway.requests] == [
        (1, {"n": 1}),
        (1, {"n": 2}),
        (2, {"n": 2}),
    ]


def test_a_new_connection_closed_before_any_answer_is_not_retried(server):
    gateway = server(lambda n: "drop")
    with pytest.raises(GatewayUnreachable, match="does not answer"):
        Gateway(gateway.url, timeout=5).call("calls", "submit_proposal", {"n": 1})
    assert len(gateway.requests) == 1


def test_an_answer_that_began_is_never_retried(server):
    gateway = server(lambda n: "half" if n == 2 else "answer")
    client = Gateway(gateway.url, timeout=5)
    client.call("calls", "list_calls")
    with pytest.raises(GatewayUnreachable):
        client.call("calls", "submit_proposal", {"n": 2})
    assert len(gateway.requests) == 2  # the submission reached the server once
    client.call("calls", "list_calls")  # and the client goes on, on a new connection
    assert gateway.connections == 2
