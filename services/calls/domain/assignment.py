"""Assigning assessors to proposals: balanced load, no conflict of interest, only declared assessors.

An assessor who has not signed a declaration of impartiality may not assess at all (an empty declaration means
"no conflicts"). Conflicts match a consortium member by normalised organisation name or registration number,
the same normalisation as exclusion screening. Assignment is deterministic (same input, same output) so that a
re-run or a replica produces the same result: proposals with the fewest possible assessors go first, then by id;
each takes the least-loaded assessors, ties broken by assessor id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from services.common.values.errors import Conflict, InvalidInput

from .screening import normalise_name, normalise_registration


@dataclass(frozen=True)
class DeclaredInterest:
    """An organisation the assessor declared a link with (employer, board seat, family...)."""

    name: str = ""
    registration_number: str = ""


@dataclass(frozen=True)
class Declaration:
    assessor: str
    interests: tuple[DeclaredInterest, ...] = ()


def _conflicted(interests: Iterable[DeclaredInterest], proposal) -> bool:
    names = {normalise_name(i.name) for i in interests} - {""}
    numbers = {normalise_registration(i.registration_number) for i in interests} - {""}
    for applicant in proposal.applicants:
        if normalise_name(applicant.name) in names:
            return True
        if normalise_registration(applicant.registration_number) in numbers:
            return True
    return False


def eligible_assessors(proposal, assessors: Iterable[str], declarations: Iterable[Declaration]) -> list[str]:
    by_assessor: dict[str, list[DeclaredInterest]] = {}
    for d in declarations:
        by_assessor.setdefault(d.assessor, []).extend(d.interests)
    return sorted(a for a in set(assessors) if a in by_assessor and not _conflicted(by_assessor[a], proposal))


def assign_assessors(
    proposals,
    assessors: Iterable[str],
    declarations: Iterable[Declaration],
    load: Mapping[str, int] | None = None,
    k: int = 2,
    assigned: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, list[str]]:
    """Map each proposal id to the assessors it gains so that it has k; `load` is the work each assessor already
    has and `assigned` the assessors a proposal already has (they count towards k and are never chosen again,
    which is how a top-up or a third assessor is found). Neither mapping is modified."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput({"k": ["must be a positive integer"]})
    proposals = list(proposals)
    ids = [pr.id for pr in proposals]
    if len(ids) != len(set(ids)):
        raise InvalidInput({"proposals": ["duplicate proposal ids"]})
    assessors = sorted(set(assessors))
    declarations = list(declarations)
    current = {a: int((load or {}).get(a, 0)) for a in assessors}
    already = {pid: set((assigned or {}).get(pid, ())) for pid in ids}
    needed = {pid: max(0, k - len(already[pid])) for pid in ids}

    candidates = {
        pr.id: [a for a in eligible_assessors(pr, assessors, declarations) if a not in already[pr.id]]
        for pr in proposals
    }
    short = [
        {"proposal_id": pid, "eligible": len(c) + len(already[pid]), "needed": k}
        for pid, c in sorted(candidates.items())
        if len(c) < needed[pid]
    ]
    if short:
        raise Conflict(
            "assessment.not_enough_assessors",
            f"{len(short)} proposal(s) have fewer than {k} declared assessors free of conflicts",
            short,
        )

    result: dict[str, list[str]] = {}
    for pid in sorted(candidates, key=lambda pid: (len(candidates[pid]), pid)):
        chosen = sorted(candidates[pid], key=lambda a: (current[a], a))[: needed[pid]]
        for a in chosen:
            current[a] += 1
        result[pid] = chosen
    return {pid: result[pid] for pid in ids}
