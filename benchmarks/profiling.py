"""Where a service process spends its CPU: py-spy samples, summarised to the frames that matter.

py-spy (PyPI `py-spy`) attaches to a running process by pid; `record --format raw` writes collapsed stacks
("frame;frame;frame count") of the samples in which the thread was running (py-spy leaves out the samples where
the OS has it sleeping: waiting for PostgreSQL, the broker, or nothing). The summary gives the share of the
process's CPU samples in which each function is on the stack (inclusive) and at the top (self), and the
process's CPU use: samples taken / samples a fully busy thread would have given.
"""

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

IDLE_MARKERS = ("epoll", "hubs/", "wait (threading.py", "select (selectors.py")


def py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Recording:
    """py-spy record of one process in the background, for at most `max_seconds`; .stop() ends it (SIGINT makes
    py-spy write what it has) and returns the summary."""

    def __init__(self, pid: int, out: Path, max_seconds: float = 60, rate: int = 100):
        self.out = out
        self.rate = rate
        self.error = None
        self.proc = None
        self.max_seconds = max_seconds
        exe = py_spy()
        if exe is None:
            self.error = "py-spy not installed (pip install py-spy)"
            return
        # --nonblocking: sampling does not pause the service, so a profiled round is barely slowed
        command = [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(max_seconds))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ]
        try:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            self.error = f"py-spy: {exc}"
        time.sleep(0.5)  # attached before the work to profile starts
        self.started = time.monotonic()

    def stop(self, top: int = 12) -> dict:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                output, _ = self.proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                output, _ = self.proc.communicate()
            if self.proc.returncode not in (0, -signal.SIGINT) and not self.out.exists():
                self.error = (output or "").strip()[-500:] or f"py-spy exited with {self.proc.returncode}"
        if self.error:
            return {"error": self.error}
        try:
            summary = summarise(self.out.read_text(), top)
        except FileNotFoundError:  # py-spy writes nothing when it saw no running sample
            summary = {"samples": 0}
        seconds = min(time.monotonic() - self.started, self.max_seconds)
        summary["seconds"] = round(seconds, 1)
        summary["cpu_pct"] = min(100.0, round(100 * summary.get("samples", 0) / (seconds * self.rate), 1))
        return summary | {"file": shown(self.out)}


def shown(path: Path) -> str:
    """A path as the results file records it: relative to the repository when inside it (the file is committed
    and read on other machines)."""
    repo = Path(__file__).resolve().parents[1]
    path = Path(path).resolve()
    return str(path.relative_to(repo)) if repo in path.parents else str(path)


def _frame_name(frame: str) -> str:
    """ "function (path/to/module.py:123)" -> "function (services/calls/commands.py)" / "(sqlalchemy/orm/x.py)"."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            return f"{name} ({path.split(marker, 1)[1]})"
    for marker in ("services/", "benchmarks/"):
        if marker in path:
            return f"{name} ({path[path.index(marker) :]})"
    return f"{name} ({path})"


def summarise(raw: str, top: int = 12) -> dict:
    inclusive, self_time = Counter(), Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if " (" in f]
        total += n
        if frames and any(m in frames[-1] for m in IDLE_MARKERS):
            idle += n
            continue
        for name in {_frame_name(f) for f in frames}:
            inclusive[name] += n
        if frames:
            self_time[_frame_name(frames[-1])] += n
    busy = total - idle
    if not total:
        return {"samples": 0}

    def share(counter):
        return [{"frame": name, "pct_of_busy": round(100 * n / busy, 1)} for name, n in counter.most_common(top)]

    # the interesting inclusive frames are our code and the libraries under it, not the interpreter's plumbing
    plumbing = (
        "eventlet/",
        "greenlet",
        "nameko/containers.py",
        "nameko/runners.py",
        "<module>",
        "threading.py",
        "runpy.py",
        "services.common.launch.runner",
        "main (common/launch/runner.py)",
    )
    inclusive = Counter({k: v for k, v in inclusive.items() if not any(p in k for p in plumbing)})
    return {
        "samples": total,
        "idle_pct": round(100 * idle / total, 1),
        "busy_samples": busy,
        "top_inclusive": share(inclusive),
        "top_self": share(self_time),
    }
