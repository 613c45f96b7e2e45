"""Figures, targets and the results file: medians of rounds, ratios to anchors, "met"/"missed" verdicts."""

import json
import math
import platform
import statistics
from dataclasses import dataclass, field


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, q: float):
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    position = (len(values) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass
class Target:
    figure: str  # the key in Result.figures the target applies to
    op: str  # ">=" or "<="
    bound: float

    def met(self, value) -> bool | None:
        if value is None:
            return None
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def __str__(self):
        return f"{'≥' if self.op == '>=' else '≤'} {self.bound:g}"


@dataclass
class Anchor:
    id: str
    title: str
    unit: str
    rounds: list
    detail: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def value(self):
        return median(self.rounds)

    def to_json(self):
        return {
            "title": self.title,
            "unit": self.unit,
            "median": self.value,
            "rounds": self.rounds,
            "detail": self.detail,
            "error": self.error,
        }


@dataclass
class Result:
    id: str
    workload: str
    figures: dict  # name -> value (the medians)
    targets: list
    raw: dict = field(default_factory=dict)  # the numbers behind the figures: rounds, anchor values, counts
    notes: list = field(default_factory=list)
    error: str | None = None
    profile: dict | None = None

    @property
    def status(self) -> str:
        if self.error and not self.figures:
            return "error"
        verdicts = [t.met(self.figures.get(t.figure)) for t in self.targets]
        if any(v is None for v in verdicts):
            return "error"
        return "met" if all(verdicts) else "missed"

    def to_json(self):
        return {
            "workload": self.workload,
            "figures": self.figures,
            "targets": {t.figure: str(t) for t in self.targets},
            "verdicts": {t.figure: _verdict(t.met(self.figures.get(t.figure))) for t in self.targets},
            "status": self.status,
            "raw": self.raw,
            "notes": self.notes,
            "error": self.error,
            "profile": self.profile,
        }


def _verdict(met):
    return "error" if met is None else "met" if met else "missed"


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".strip()


def anchors_table(anchors) -> str:
    lines = ["| anchor | what | median | rounds |", "|---|---|---|---|"]
    for a in anchors:
        rounds = ", ".join(fmt(r) for r in a.rounds) if a.rounds else (a.error or "—")
        lines.append(f"| {a.id} | {a.title} | {fmt(a.value, a.unit)} | {rounds} |")
    return "\n".join(lines)


def results_table(results) -> str:
    lines = [
        "| id | workload | figure | value | target | status | behind the figure |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        first = True
        for t in r.targets or [None]:
            name = t.figure if t else "—"
            value = r.figures.get(name) if t else None
            verdict = _verdict(t.met(value)) if t else r.status
            lines.append(
                f"| {r.id if first else ''} | {r.workload if first else ''} | {name} | {fmt(value)} | "
                f"{t or '—'} | {verdict} | {r.raw.get('summary', '') if first else ''} |"
            )
            first = False
        if r.error:
            lines.append(f"| | | error | | | | {r.error[:200]} |")
    return "\n".join(lines)


def machine() -> dict:
    import os

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in load] if load else None,
    }


def write_json(path, payload: dict):
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
