"""Parallel clients that keep calling until stopped, measured in windows of steady load.

Each client is a thread: a staff client of the gateway (one HTTP request per call), or for the anchors an RPC
client with its own nameko ClusterRpcProxy per thread. The load runs
continuously; a round is a window of it, so rounds measure steady state rather than ramp-up and ramp-down.
"""

import threading
import time

from .results import median, percentile


class ClientPool:
    def __init__(self, clients: int, call, name: str = "clients"):
        """call(client_index, sequence_number) performs one request; exceptions are counted, not raised."""
        self.clients = clients
        self.call = call
        self.name = name
        self.done = [0] * clients
        self.errors = [0] * clients
        self.last_error = None
        self.latencies: list[list[float]] = [[] for _ in range(clients)]
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared: the clients wait (rounds of two pools interleaved)
        self._go.set()
        self._busy = [False] * clients
        self._threads = []

    def start(self):
        for index in range(self.clients):
            thread = threading.Thread(target=self._loop, args=(index,), name=f"{self.name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _loop(self, index: int):
        seq = 0
        while not self._stop.is_set():
            if not self._go.wait(0.1):
                continue
            seq += 1
            started = time.perf_counter()
            self._busy[index] = True
            try:
                self.call(index, seq)
            except Exception as exc:  # the figure counts successes; failures are reported alongside it
                self.errors[index] += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                time.sleep(0.05)
                continue
            finally:
                self._busy[index] = False
            self.latencies[index].append(time.perf_counter() - started)
            self.done[index] += 1

    def pause(self, timeout: float = 60):
        """Let the calls in flight finish and start no new one until resume()."""
        self._go.clear()
        deadline = time.monotonic() + timeout
        while any(self._busy) and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def resume(self):
        self._go.set()
        return self

    def completed(self) -> int:
        return sum(self.done)

    def wait_until(self, count: int, timeout: float):
        deadline = time.monotonic() + timeout
        while self.completed() < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def windows(self, rounds: int, seconds: float) -> list[dict]:
        """Measure `rounds` consecutive windows: completed calls per second (and latencies) in each."""
        measured = []
        for _ in range(rounds):
            marks = [len(lat) for lat in self.latencies]
            count0, errors0, t0 = self.completed(), sum(self.errors), time.perf_counter()
            time.sleep(seconds)
            count1, errors1, t1 = self.completed(), sum(self.errors), time.perf_counter()
            lat = [x for mark, lats in zip(marks, self.latencies) for x in lats[mark:]]
            measured.append(
                {
                    "rate": (count1 - count0) / (t1 - t0),
                    "calls": count1 - count0,
                    "errors": errors1 - errors0,
                    "seconds": t1 - t0,
                    "latency_p50_ms": _ms(median(lat)),
                    "latency_p99_ms": _ms(percentile(lat, 99)),
                }
            )
        return measured

    def stop(self, timeout: float = 60):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)
