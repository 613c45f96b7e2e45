"""The suite's own log: timestamped lines in a file (stdout is kept for the verdict lines)."""

import threading
import time
from pathlib import Path


class SuiteLog:
    def __init__(self, path: Path, prefix: str = "", _shared=None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.prefix = prefix
        self._shared = _shared or {"lock": threading.Lock()}

    def __call__(self, message: str):
        line = f"{time.strftime('%H:%M:%S')} {self.prefix + ' ' if self.prefix else ''}{message}\n"
        with self._shared["lock"], open(self.path, "a") as fh:
            fh.write(line)

    def scoped(self, prefix: str) -> "SuiteLog":
        return SuiteLog(self.path, prefix, self._shared)
