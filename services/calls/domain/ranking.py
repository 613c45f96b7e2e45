"""Ranking of one window: award (main) list within the window's allocation, reserve list, and the excluded.

Order is by score, best first; equal scores go to the earlier submission, then to the lower reference, so the
order never depends on input order. The main list is filled greedily: a proposal whose EC amount no longer fits
in what is left of the allocation goes to the reserve, and smaller proposals after it may still enter the main
list. Proposals under the threshold are excluded (a score exactly at the threshold passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from services.common.values.money import money_str

from . import _parse as p


@dataclass(frozen=True)
class ScoredProposal:
    proposal_id: str
    reference: str
    window: str
    country: str
    ec_amount: Decimal
    score: Decimal
    submitted_at: datetime

    def __post_init__(self):
        errors = p.Errors()
        object.__setattr__(self, "ec_amount", p.money(self.ec_amount, "ec_amount", errors))
        object.__setattr__(self, "score", p.decimal(self.score, "score", errors, low=Decimal(0)))
        object.__setattr__(self, "submitted_at", p.utc_datetime(self.submitted_at, "submitted_at", errors))
        errors.raise_if_any()


@dataclass(frozen=True)
class CountryLine:
    country: str
    main: int = 0
    main_amount: Decimal = Decimal("0.00")
    reserve: int = 0
    reserve_amount: Decimal = Decimal("0.00")
    excluded: int = 0


@dataclass(frozen=True)
class Ranking:
    window: str
    allocation: Decimal
    threshold: Decimal
    main: list = field(default_factory=list)
    reserve: list = field(default_factory=list)
    excluded: list = field(default_factory=list)
    by_country: dict = field(default_factory=dict)  # country -> CountryLine, sorted by country code

    @property
    def main_total(self) -> Decimal:
        return sum((s.ec_amount for s in self.main), Decimal("0.00"))

    @property
    def remaining(self) -> Decimal:
        return self.allocation - self.main_total


def _order(s: ScoredProposal):
    return (-s.score, s.submitted_at, s.reference, s.proposal_id)


def rank(window: str, allocation, scored_proposals, threshold) -> Ranking:
    errors = p.Errors()
    allocation = p.money(allocation, "allocation", errors)
    threshold = p.decimal(threshold, "threshold", errors, low=Decimal(0))
    items = list(scored_proposals)
    for i, s in enumerate(items):
        if not isinstance(s, ScoredProposal):
            errors.add(f"scored_proposals.{i}", "must be a ScoredProposal")
        elif s.window != window:
            errors.add(f"scored_proposals.{i}.window", f"{s.proposal_id} is in window {s.window!r}, not {window!r}")
    ids = [s.proposal_id for s in items if isinstance(s, ScoredProposal)]
    if len(ids) != len(set(ids)):
        errors.add("scored_proposals", "duplicate proposal ids")
    errors.raise_if_any()

    main, reserve, excluded = [], [], []
    left = allocation
    for s in sorted(items, key=_order):
        if s.score < threshold:
            excluded.append(s)
        elif s.ec_amount <= left:
            main.append(s)
            left -= s.ec_amount
        else:
            reserve.append(s)
    return Ranking(window, allocation, threshold, main, reserve, excluded, _by_country(main, reserve, excluded))


def _by_country(main, reserve, excluded) -> dict[str, CountryLine]:
    lines: dict[str, dict] = {}

    def line(country):
        return lines.setdefault(
            country,
            {"main": 0, "main_amount": Decimal("0.00"), "reserve": 0, "reserve_amount": Decimal("0.00"), "excluded": 0},
        )

    for s in main:
        line(s.country)["main"] += 1
        line(s.country)["main_amount"] += s.ec_amount
    for s in reserve:
        line(s.country)["reserve"] += 1
        line(s.country)["reserve_amount"] += s.ec_amount
    for s in excluded:
        line(s.country)["excluded"] += 1
    return {c: CountryLine(c, **lines[c]) for c in sorted(lines)}


def ranking_to_dict(ranking: Ranking) -> dict:
    """The ranking_published payload shape: money as strings, positions from 1."""

    def entry(position, s):
        return {
            "position": position,
            "proposal_id": s.proposal_id,
            "reference": s.reference,
            "country": s.country,
            "ec_amount": money_str(s.ec_amount),
            "score": str(s.score),
            "submitted_at": s.submitted_at.isoformat(),
        }

    return {
        "window": ranking.window,
        "allocation": money_str(ranking.allocation),
        "threshold": str(ranking.threshold),
        "main_total": money_str(ranking.main_total),
        "remaining": money_str(ranking.remaining),
        "main": [entry(i, s) for i, s in enumerate(ranking.main, 1)],
        "reserve": [entry(i, s) for i, s in enumerate(ranking.reserve, 1)],
        "excluded": [entry(i, s) for i, s in enumerate(ranking.excluded, 1)],
        "by_country": {
            c: {
                "main": l.main,
                "main_amount": money_str(l.main_amount),
                "reserve": l.reserve,
                "reserve_amount": money_str(l.reserve_amount),
                "excluded": l.excluded,
            }
            for c, l in ranking.by_country.items()
        },
    }
