"""Tranche schedules by rule profile: the profile is a choice per programme (design.md §2).

PRAG (EC standard grant contract):
- option 2, for an action longer than 12 months AND above EUR 100,000: pre-financing 1 = 80% of the first
  12-month period's budget at signature; a further pre-financing of 80% of the next period's budget after each
  accepted interim report; the balance (award − all pre-financing) after the accepted final report.
- option 1 otherwise (≤ 12 months or ≤ EUR 100,000): 80% pre-financing at signature, 20% balance after the
  final report.
UNDP: 40% at signature, 40% after the first interim report, 20% after the final report; an action with no
interim report (≤ 12 months) gets the first two together (80%) at signature.

`annual_budgets` are the EC-financed budget of each 12-month period (the last may be shorter) and must add up
to the award; when omitted the award is spread pro rata to the months of each period. Amounts are rounded to
the cent half up and the balance is computed as the remainder, so the schedule adds up to the award exactly.
Planned due dates: pre-financing `days_after_signature` after the start; later tranches `days_after_report`
after the due date of the report that conditions them (they are plans: payment follows the accepted report).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import Enum

from services.common.values.errors import InvalidInput, NotFound
from services.common.values.money import money_str, round_money

from ._values import ZERO, a_date, money, months
from .reports import reporting_periods


class TrancheKind(str, Enum):
    PRE_FINANCING = "pre_financing"
    FURTHER_PRE_FINANCING = "further_pre_financing"
    BALANCE = "balance"


FINAL_REPORT = "final_report"


def interim_condition(number: int) -> str:
    return f"interim_report:{number}"


@dataclass(frozen=True)
class Tranche:
    """One planned payment. `condition` names the report that must be accepted first (None: at signature)."""

    number: int
    kind: TrancheKind
    planned_amount: Decimal
    condition: str | None
    due_date: date

    def event_values(self) -> dict:
        """The tranche as contract_signed's schedule entry, in Python values."""
        return {
            "number": self.number,
            "kind": self.kind.value,
            "planned_amount_eur": self.planned_amount,
            "condition": self.condition,
            "due_date": self.due_date,
        }

    def to_data(self) -> dict:
        return {
            "number": self.number,
            "kind": self.kind.value,
            "planned_amount_eur": money_str(self.planned_amount),
            "condition": self.condition,
            "due_date": self.due_date.isoformat(),
        }


@dataclass(frozen=True)
class PragPayments:
    """PRAG options 1 and 2 with their parameters (rates as Decimal shares)."""

    name: str = "ec_prag"
    prefinancing_rate: Decimal = Decimal("0.80")  # of each 12-month period's budget (option 2)
    option1_prefinancing_rate: Decimal = Decimal("0.80")  # of the award (option 1)
    option2_min_months: int = 12  # option 2 needs MORE than this many months ...
    option2_min_amount: Decimal = Decimal("100000.00")  # ... and MORE than this amount
    spend_threshold: Decimal = Decimal("0.70")  # the 70% rule on the previous payment
    days_after_signature: int = 30
    days_after_report: int = 45

    def uses_option2(self, award: Decimal, duration_months: int) -> bool:
        return duration_months > self.option2_min_months and award > self.option2_min_amount


@dataclass(frozen=True)
class SharePayments:
    """A fixed split of the award: first share at signature, middle ones after interim reports, last after the
    final report (UNDP: 40/40/20)."""

    name: str = "undp"
    shares: tuple[Decimal, ...] = (Decimal("0.40"), Decimal("0.40"), Decimal("0.20"))
    spend_threshold: Decimal = Decimal("0.70")
    days_after_signature: int = 30
    days_after_report: int = 30

    def __post_init__(self):
        if len(self.shares) < 2 or sum(self.shares) != 1 or any(s <= 0 for s in self.shares):
            raise InvalidInput({"shares": ["need at least two positive shares adding up to 1"]})


PRAG = PragPayments()
UNDP = SharePayments()
PAYMENT_PROFILES: dict[str, PragPayments | SharePayments] = {PRAG.name: PRAG, UNDP.name: UNDP}


def payment_profile(profile) -> PragPayments | SharePayments:
    """A payment profile from its name ("ec_prag", "undp"), from a calls RuleProfile (by its name) or as is."""
    if isinstance(profile, (PragPayments, SharePayments)):
        return profile
    name = profile if isinstance(profile, str) else getattr(profile, "name", None)
    if name not in PAYMENT_PROFILES:
        raise NotFound("payment profile", name)
    return PAYMENT_PROFILES[name]


def period_budgets(award: Decimal, duration_months: int, annual_budgets) -> list[Decimal]:
    """The EC-financed budget of each 12-month period: given (checked) or pro rata to the months."""
    periods = [min(12, duration_months - 12 * k) for k in range((duration_months + 11) // 12)]
    if annual_budgets is None:
        budgets, running = [], ZERO
        for months_in in periods[:-1]:
            share = round_money(award * months_in / duration_months)
            budgets.append(share)
            running += share
        return budgets + [award - running]
    budgets = [money(b, f"annual_budgets.{i}") for i, b in enumerate(annual_budgets)]
    if len(budgets) != len(periods):
        raise InvalidInput(
            {
                "annual_budgets": [
                    f"{duration_months} months make {len(periods)} period(s) of up to "
                    f"12 months: give one budget per period, not {len(budgets)}"
                ]
            }
        )
    total = sum(budgets, ZERO)
    if total != award:
        raise InvalidInput(
            {"annual_budgets": [f"the period budgets add up to {money_str(total)}, not the award {money_str(award)}"]}
        )
    return budgets


def compute_schedule(
    profile, award_amount, duration_months: int, annual_budgets: list | None, start_date: date
) -> list[Tranche]:
    """The planned tranches of a grant; their planned amounts add up to the award to the cent."""
    profile = payment_profile(profile)
    award = money(award_amount, "award_amount", positive=True)
    duration = months(duration_months)
    start = a_date(start_date, "start_date")
    periods = reporting_periods(start, duration)
    report_due = {p.condition: p.due_date for p in periods}
    interims = [p for p in periods if p.kind == "interim"]
    at_signature = start + timedelta(days=profile.days_after_signature)

    def after(condition: str) -> date:
        return report_due[condition] + timedelta(days=profile.days_after_report)

    plan: list[tuple[TrancheKind, Decimal, str | None, date]] = []
    if isinstance(profile, PragPayments):
        if profile.uses_option2(award, duration):
            budgets = period_budgets(award, duration, annual_budgets)
            plan.append(
                (TrancheKind.PRE_FINANCING, round_money(budgets[0] * profile.prefinancing_rate), None, at_signature)
            )
            for interim, budget in zip(interims, budgets[1:]):
                plan.append(
                    (
                        TrancheKind.FURTHER_PRE_FINANCING,
                        round_money(budget * profile.prefinancing_rate),
                        interim.condition,
                        after(interim.condition),
                    )
                )
        else:
            if annual_budgets is not None:
                period_budgets(award, duration, annual_budgets)  # still checked: they must add up
            plan.append(
                (TrancheKind.PRE_FINANCING, round_money(award * profile.option1_prefinancing_rate), None, at_signature)
            )
    else:
        shares = list(profile.shares[:-1])
        middle = shares[1:]
        first = shares[0] + sum(middle[len(interims) :], Decimal(0))  # no interim report to wait for: pay at signature
        plan.append((TrancheKind.PRE_FINANCING, round_money(award * first), None, at_signature))
        for interim, share in zip(interims, middle):
            plan.append(
                (
                    TrancheKind.FURTHER_PRE_FINANCING,
                    round_money(award * share),
                    interim.condition,
                    after(interim.condition),
                )
            )
    plan.append((TrancheKind.BALANCE, ZERO, FINAL_REPORT, after(FINAL_REPORT)))
    tranches = [
        Tranche(n, kind, amount, condition, due) for n, (kind, amount, condition, due) in enumerate(plan, start=1)
    ]
    return fit_to_award(tranches, award)


def fit_to_award(tranches: list[Tranche], award: Decimal, fixed: dict | None = None) -> list[Tranche]:
    """Make the planned amounts add up to `award`: amounts in `fixed` (tranche number -> amount, e.g. what was
    already paid) are kept, the others are capped at what remains in order, and the balance takes the rest."""
    fixed = fixed or {}
    fitted, running = [], ZERO
    for tranche in tranches:
        if tranche.kind == TrancheKind.BALANCE:
            continue
        amount = fixed.get(tranche.number, min(tranche.planned_amount, max(award - running, ZERO)))
        running += amount
        fitted.append(replace(tranche, planned_amount=amount))
    balance = [t for t in tranches if t.kind == TrancheKind.BALANCE]
    for tranche in balance:
        amount = fixed.get(tranche.number, award - running)
        if amount < 0:
            raise InvalidInput(
                {"amount": [f"the award {money_str(award)} is below what is already paid ({money_str(running)})"]}
            )
        fitted.append(replace(tranche, planned_amount=amount))
    return fitted


def schedule_total(tranches) -> Decimal:
    return sum((t.planned_amount for t in tranches), ZERO)
