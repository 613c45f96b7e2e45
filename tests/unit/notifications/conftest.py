import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
for path in (ROOT, HERE):  # the repository (for `services`) and this folder (for notification_samples)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
