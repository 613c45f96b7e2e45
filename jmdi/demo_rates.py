"""Demo exchange rates: generated, NOT the EC's InforEuro rates. `jmdi demo` loads them (jmdi/data/demo-rates.csv)
so its consortia in Morocco, Senegal, Egypt and the Philippines can report costs in MAD, XOF, EGP and PHP.

Each currency starts from a plausible level and moves a little each month (a fixed seed: the same file every
time); XOF keeps its fixed parity with the euro (655.957). `python -m jmdi.demo_rates 2026-12 12` writes the file
again for other months."""

from __future__ import annotations

import csv
import random
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from services.common.values.inert import inert_text

DEMO_RATES_FILE = Path(__file__).resolve().parent / "data" / "demo-rates.csv"
SOURCE = "DEMO RATES generated for the JMDI demo (not InforEuro, not for real reports)"
START = {"MAD": Decimal("10.90"), "EGP": Decimal("52.50"), "PHP": Decimal("63.20")}
FIXED = {"XOF": Decimal("655.957")}  # the CFA franc's parity with the euro


def months(first: str, count: int) -> list[str]:
    year, month = map(int, first.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def generate(first: str = "2026-12", count: int = 12, seed: int = 2008) -> list[dict]:
    rng = random.Random(seed)
    level = dict(START)
    rows = []
    for month in months(first, count):
        for code in sorted(set(level) | set(FIXED)):
            if code in FIXED:
                rate = FIXED[code]
            else:
                level[code] = (level[code] * (1 + Decimal(rng.randint(-150, 150)) / 10000)).quantize(
                    Decimal("0.0001"), ROUND_HALF_UP
                )
                rate = level[code]
            rows.append({"month": month, "currency": code, "rate": str(rate), "note": "demo rate"})
    return rows


def read_rates(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write(path: Path = DEMO_RATES_FILE, first: str = "2026-12", count: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["month", "currency", "rate", "note"])
        writer.writeheader()
        writer.writerows({k: inert_text(v) for k, v in row.items()} for row in generate(first, count))
    return path


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    first = sys.argv[1] if len(sys.argv) > 1 else "2026-12"
    print(write(DEMO_RATES_FILE, first, int(sys.argv[2]) if len(sys.argv) > 2 else 12))
