"""Budget guards of an award: the call's limits, the window's allocation, the programme's EC contribution.

The grants service keeps its own copy of each proposal and ranking (from the calls service's events); the
guards work on those copies. Committing an award takes its amount from the window and the programme; a
consortium that declines gives it back, and the next reserve proposal of the ranking may take its place. A
grant closed below its award gives the rest back too (decommitment): that money reopens the reserve list for
as much as it released.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from services.common.values.annex import PRAG_CAPS, BudgetCaps
from services.common.values.errors import Conflict, InvalidInput
from services.common.values.money import money_str

from ._values import ZERO, money


@dataclass(frozen=True)
class CallLimits:
    """The call's bounds (copied from the rule profile when the call opened): grant size, e.g. 50,000–200,000, EC
    share, longest duration and the Annex III caps."""

    min_grant: Decimal
    max_grant: Decimal
    max_ec_share: Decimal = Decimal("0.90")
    max_duration_months: int | None = None
    caps: BudgetCaps = PRAG_CAPS

    def __post_init__(self):
        object.__setattr__(self, "min_grant", money(self.min_grant, "min_grant"))
        object.__setattr__(self, "max_grant", money(self.max_grant, "max_grant", positive=True))
        if self.min_grant > self.max_grant:
            raise InvalidInput({"max_grant": ["must not be below min_grant"]})


@dataclass
class WindowBudget:
    """A call window's allocation and what awards have committed of it."""

    window: str
    allocation: Decimal
    committed: Decimal = ZERO

    def __post_init__(self):
        self.allocation = money(self.allocation, "allocation")
        self.committed = money(self.committed, "committed")

    @property
    def remaining(self) -> Decimal:
        return self.allocation - self.committed

    def commit(self, amount: Decimal) -> None:
        if amount > self.remaining:
            raise Conflict(
                "award.window_allocation_exceeded",
                _exceeded("window " + self.window, amount, self.remaining),
                [_figures(self.window, self.allocation, self.committed, amount)],
            )
        self.committed += amount

    def release(self, amount: Decimal) -> None:
        if amount > self.committed:
            raise InvalidInput(
                {
                    "amount": [
                        f"cannot release {money_str(amount)}: only "
                        f"{money_str(self.committed)} committed in window {self.window}"
                    ]
                }
            )
        self.committed -= amount


@dataclass
class ProgrammeBudget:
    """The programme's EC contribution (EUR 15,000,000.00 for JMDI) and what awards have committed of it."""

    contribution: Decimal
    committed: Decimal = ZERO

    def __post_init__(self):
        self.contribution = money(self.contribution, "contribution")
        self.committed = money(self.committed, "committed")

    @property
    def remaining(self) -> Decimal:
        return self.contribution - self.committed

    def commit(self, amount: Decimal) -> None:
        if amount > self.remaining:
            raise Conflict(
                "award.programme_contribution_exceeded",
                _exceeded("the programme", amount, self.remaining),
                [_figures("programme", self.contribution, self.committed, amount)],
            )
        self.committed += amount

    def release(self, amount: Decimal) -> None:
        if amount > self.committed:
            raise InvalidInput(
                {
                    "amount": [
                        f"cannot release {money_str(amount)}: only "
                        f"{money_str(self.committed)} committed in the programme"
                    ]
                }
            )
        self.committed -= amount


class RankingList(str, Enum):
    """Where a proposal stands in its window's published ranking."""

    MAIN = "main"
    RESERVE = "reserve"


@dataclass(frozen=True)
class RankedProposal:
    proposal_id: str
    reference: str
    rank: int
    score: Decimal
    country: str
    ec_amount_requested: Decimal


@dataclass(frozen=True)
class Ranking:
    """A published ranking of one window (ranking_published): the main list and the reserve list."""

    call_id: str
    window: str
    threshold: Decimal
    main: tuple[RankedProposal, ...] = ()
    reserve: tuple[RankedProposal, ...] = ()

    def position(self, proposal_id: str) -> tuple[RankingList, RankedProposal] | None:
        for which, entries in ((RankingList.MAIN, self.main), (RankingList.RESERVE, self.reserve)):
            for entry in entries:
                if entry.proposal_id == proposal_id:
                    return which, entry
        return None


@dataclass
class ProposalCopy:
    """The grants service's copy of a proposal, built from the calls service's events.

    `ranking` is None until a published ranking places it (main or reserve list); `grant_id` is set once it is
    awarded. `ec_amount_requested` is what the consortium asked of the EC.
    """

    proposal_id: str
    reference: str
    call_id: str
    window: str
    country: str
    ec_amount_requested: Decimal
    programme_id: str = ""
    title: str = ""
    lead_organisation: str = ""
    applicant_type: str = ""
    duration_months: int | None = None
    budget: dict = field(default_factory=dict)
    ranking: RankingList | None = None
    rank: int | None = None
    score: Decimal | None = None
    threshold: Decimal | None = None
    withdrawn: bool = False
    excluded: bool = False  # screening excluded it (exclusion list)
    rejected: bool = False  # the steering committee rejected it (proposal_rejected)
    grant_id: str | None = None

    def place(self, ranking: Ranking) -> None:
        """Record where a published ranking put this proposal (or that it is not in it)."""
        found = ranking.position(self.proposal_id)
        self.threshold = ranking.threshold
        if found is None:
            self.ranking, self.rank, self.score = None, None, None
        else:
            self.ranking, entry = found
            self.rank, self.score = entry.rank, entry.score


@dataclass(frozen=True)
class ReservePlaces:
    """How far a window's reserve list is open: one place for each declined grant of its ranking, and the money
    its grants gave back at closure (decommitted) that reserve awards have not taken yet.

    `declined` counts the declined grants of the ranking's proposals (main or reserve), `from_reserve` the reserve
    proposals already awarded (declined ones included), `next_in_line` the best-ranked reserve proposal still
    available (not awarded, rejected, withdrawn or excluded). `released` is what the ranking's grants
    decommitted; `released_taken` what the reserve awards beyond the declined places took of it. Reserve
    proposals are awarded in rank order; the window's and the programme's remaining money stay the ceiling.
    """

    declined: int = 0
    from_reserve: int = 0
    next_in_line: str | None = None
    released: Decimal = ZERO
    released_taken: Decimal = ZERO

    @property
    def places(self) -> bool:
        return self.declined > self.from_reserve

    @property
    def released_available(self) -> Decimal:
        return max(self.released - self.released_taken, ZERO)

    @property
    def open(self) -> bool:
        return self.places or self.released_available > 0

    def admits(self, amount: Decimal) -> bool:
        """A declined grant's place takes any award the budgets allow; released money only what it released."""
        return self.places or amount <= self.released_available


def reserve_places(
    ranking: Ranking, grant_status: dict, unavailable=(), decommitted: dict | None = None, reserve_awards=()
) -> ReservePlaces:
    """The reserve places of `ranking` given the grants made (proposal_id -> grant status), the proposals
    that can no longer be awarded (rejected, withdrawn, excluded), what each grant decommitted (proposal_id ->
    amount) and the amounts of the reserve awards in the order they were made (the first ones fill the
    declined places, the later ones took released money)."""
    ranked = {e.proposal_id for e in ranking.main + ranking.reserve}
    declined = sum(1 for pid, status in grant_status.items() if pid in ranked and status == "declined")
    from_reserve = sum(1 for e in ranking.reserve if e.proposal_id in grant_status)
    following = next_from_reserve(ranking, set(grant_status) | set(unavailable))
    released = sum((money(a, "decommitted") for pid, a in (decommitted or {}).items() if pid in ranked), ZERO)
    taken = sum((money(a, "amount") for a in list(reserve_awards)[declined:]), ZERO)
    return ReservePlaces(declined, from_reserve, following.proposal_id if following else None, released, taken)


def _violation(rule: str, reason: str, **figures) -> dict:
    return {
        "rule": rule,
        "reason": reason,
        **{k: money_str(v) if isinstance(v, Decimal) else v for k, v in figures.items()},
    }


def award_violations(
    proposal: ProposalCopy,
    amount: Decimal,
    limits: CallLimits,
    window_budget: WindowBudget,
    programme_budget: ProgrammeBudget,
    reserve: ReservePlaces | None = None,
) -> list[dict]:
    """Every rule the award would break, most fundamental first (empty when it may be made).

    A reserve-list proposal needs an open reserve place (a declined grant's, or money released at closure that
    covers the award) and must be the next in line (`reserve`)."""
    amount = money(amount, "amount", positive=True)
    if window_budget.window != proposal.window:
        raise InvalidInput(
            {"window": [f"proposal {proposal.reference} is in window {proposal.window}, not {window_budget.window}"]}
        )
    found = []
    if proposal.grant_id is not None:
        found.append(
            _violation(
                "award.already_awarded",
                f"proposal {proposal.reference} is already awarded (grant {proposal.grant_id})",
                grant_id=proposal.grant_id,
            )
        )
    if proposal.rejected:
        found.append(_violation("award.proposal_rejected", f"proposal {proposal.reference} was rejected"))
    if proposal.excluded:
        found.append(_violation("award.excluded", f"proposal {proposal.reference} was excluded at screening"))
    if proposal.withdrawn:
        found.append(_violation("award.not_ranked", f"proposal {proposal.reference} was withdrawn"))
    elif proposal.ranking is None:
        found.append(_violation("award.not_ranked", f"proposal {proposal.reference} is not in a published ranking"))
    elif proposal.threshold is not None and (proposal.score is None or proposal.score < proposal.threshold):
        found.append(
            _violation(
                "award.not_ranked",
                f"proposal {proposal.reference} scored {proposal.score}, under the threshold {proposal.threshold}",
            )
        )
    elif proposal.ranking == RankingList.RESERVE and proposal.grant_id is None:
        if reserve is None or not reserve.open:
            found.append(
                _violation(
                    "award.reserve_not_open",
                    f"proposal {proposal.reference} is on the reserve "
                    "list: it may be awarded only in place of a declined grant or with money "
                    "the window's grants gave back at closure",
                )
            )
        elif reserve.next_in_line != proposal.proposal_id:
            found.append(
                _violation(
                    "award.reserve_out_of_order",
                    f"the reserve list is awarded in rank order: "
                    f"proposal {reserve.next_in_line} comes before {proposal.reference}",
                    next_in_line=reserve.next_in_line,
                )
            )
        elif not reserve.admits(amount):
            found.append(
                _violation(
                    "award.above_released",
                    f"{money_str(amount)} is above the "
                    f"{money_str(reserve.released_available)} the window's grants gave back at "
                    "closure (no declined grant's place is open)",
                    amount=amount,
                    released=reserve.released_available,
                )
            )
    if amount < limits.min_grant:
        found.append(
            _violation(
                "award.below_min",
                f"{money_str(amount)} is below the call minimum {money_str(limits.min_grant)}",
                amount=amount,
                limit=limits.min_grant,
            )
        )
    if amount > limits.max_grant:
        found.append(
            _violation(
                "award.above_max",
                f"{money_str(amount)} is above the call maximum {money_str(limits.max_grant)}",
                amount=amount,
                limit=limits.max_grant,
            )
        )
    if amount > proposal.ec_amount_requested:
        found.append(
            _violation(
                "award.above_requested",
                f"{money_str(amount)} is above the {money_str(proposal.ec_amount_requested)} requested",
                amount=amount,
                limit=proposal.ec_amount_requested,
            )
        )
    if amount > window_budget.remaining:
        found.append(
            _violation(
                "award.window_allocation_exceeded",
                _exceeded("window " + window_budget.window, amount, window_budget.remaining),
                amount=amount,
                remaining=window_budget.remaining,
            )
        )
    if amount > programme_budget.remaining:
        found.append(
            _violation(
                "award.programme_contribution_exceeded",
                _exceeded("the programme", amount, programme_budget.remaining),
                amount=amount,
                remaining=programme_budget.remaining,
            )
        )
    return found


def check_award(
    proposal_copy: ProposalCopy,
    amount: Decimal,
    call_limits: CallLimits,
    window_budget: WindowBudget,
    programme_budget: ProgrammeBudget,
    reserve: ReservePlaces | None = None,
) -> None:
    """Raise Conflict named after the first rule broken; `details` lists every violation."""
    found = award_violations(proposal_copy, amount, call_limits, window_budget, programme_budget, reserve)
    if found:
        raise Conflict(found[0]["rule"], found[0]["reason"], found)


def next_from_reserve(ranking: Ranking, awarded_or_declined_ids) -> RankedProposal | None:
    """The best-ranked reserve proposal not yet awarded or declined (None when the reserve list is exhausted)."""
    taken = set(awarded_or_declined_ids)
    for entry in sorted(ranking.reserve, key=lambda e: e.rank):
        if entry.proposal_id not in taken and entry.score >= ranking.threshold:
            return entry
    return None


def decline(grant, window_budget: WindowBudget, programme_budget: ProgrammeBudget, reason: str, declined_at):
    """The consortium declines its award: free the commitment; returns the events (see Grant.decline)."""
    return grant.decline(reason, declined_at, window_budget, programme_budget)


def _exceeded(what: str, amount: Decimal, remaining: Decimal) -> str:
    return f"{money_str(amount)} is above what remains of {what} ({money_str(remaining)})"


def _figures(name, total, committed, amount) -> dict:
    return {"budget": name, "total": money_str(total), "committed": money_str(committed), "amount": money_str(amount)}
