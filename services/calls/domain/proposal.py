"""A proposal from a consortium, with its Annex III budget.

Construction only checks shape (types, money, codes): whether the proposal obeys the call's rules is the job of
`check_eligibility`, which reports every failed rule at once instead of stopping at the first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

from services.common.values.annex import DIRECT_HEADINGS, HEADINGS
from services.common.values.errors import InvalidInput
from services.common.values.logframe import parse_logframe
from services.common.values.money import money_str

from . import _parse as p
from .call import ApplicantType

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Language(str, Enum):
    FR = "fr"
    EN = "en"


class Role(str, Enum):
    LEAD = "lead"
    CO_APPLICANT = "co_applicant"


@dataclass(frozen=True)
class Applicant:
    """A member of the consortium: the lead applicant or a co-applicant."""

    name: str
    type: ApplicantType
    country: str
    registration_number: str
    email: str
    language: Language = Language.EN
    role: Role = Role.CO_APPLICANT

    def __post_init__(self):
        errors = p.Errors()
        _applicant_fields(self, "", errors)
        errors.raise_if_any()


def _applicant_fields(a: Applicant, prefix: str, errors: p.Errors) -> None:
    set_ = object.__setattr__
    set_(a, "name", p.text(a.name, f"{prefix}name", errors))
    try:
        set_(a, "type", ApplicantType(a.type))
    except ValueError:
        errors.add(f"{prefix}type", f"unknown applicant type {a.type!r}")
    set_(a, "country", p.country(a.country, f"{prefix}country", errors))
    set_(
        a,
        "registration_number",
        p.text(a.registration_number, f"{prefix}registration_number", errors, required=False) or "",
    )
    if not isinstance(a.email, str) or not EMAIL_RE.match(a.email.strip()):
        errors.add(f"{prefix}email", "must be an e-mail address")
    else:
        set_(a, "email", a.email.strip())
    try:
        set_(a, "language", Language(a.language))
    except ValueError:
        errors.add(f"{prefix}language", "must be 'fr' or 'en'")
    try:
        set_(a, "role", Role(a.role))
    except ValueError:
        errors.add(f"{prefix}role", "must be 'lead' or 'co_applicant'")


BUDGET_LINES = HEADINGS  # Annex III lines 1-6, 8 and 10 (services/common/values/annex.py)
DIRECT_LINES = DIRECT_HEADINGS


@dataclass(frozen=True)
class Budget:
    """Annex III headings; lines 7, 9 and 11 are derived so they can never disagree with their parts."""

    human_resources: Decimal = Decimal("0.00")
    travel: Decimal = Decimal("0.00")
    equipment_supplies: Decimal = Decimal("0.00")
    local_office: Decimal = Decimal("0.00")
    other_costs_services: Decimal = Decimal("0.00")
    other: Decimal = Decimal("0.00")
    contingency: Decimal = Decimal("0.00")
    indirect_costs: Decimal = Decimal("0.00")

    def __post_init__(self):
        errors = p.Errors()
        for line in BUDGET_LINES:
            object.__setattr__(self, line, p.money(getattr(self, line), line, errors))
        errors.raise_if_any()

    @property
    def subtotal_direct(self) -> Decimal:
        """Line 7: headings 1 to 6."""
        return sum((getattr(self, line) for line in DIRECT_LINES), Decimal("0.00"))

    @property
    def total_direct(self) -> Decimal:
        """Line 9: line 7 plus contingency (line 8)."""
        return self.subtotal_direct + self.contingency

    @property
    def total_eligible(self) -> Decimal:
        """Line 11: line 9 plus indirect costs (line 10)."""
        return self.total_direct + self.indirect_costs

    def to_dict(self) -> dict:
        return {line: money_str(getattr(self, line)) for line in BUDGET_LINES}


@dataclass(frozen=True)
class Proposal:
    id: str
    window: str
    target_country: str
    title: str
    summary: str
    duration_months: int
    budget: Budget
    total_eligible_cost: Decimal
    ec_amount_requested: Decimal
    co_financing: Decimal
    applicants: tuple[Applicant, ...]
    call_id: str | None = None
    reference: str | None = None
    submitted_at: datetime | None = None
    logframe: list | None = None  # outcomes and outputs with indicators (services/common/values/logframe.py)

    def __post_init__(self):
        errors = p.Errors()
        set_ = object.__setattr__
        if self.logframe is not None:
            try:
                set_(self, "logframe", parse_logframe(self.logframe))
            except InvalidInput as exc:
                for key, messages in exc.errors.items():
                    for message in messages:
                        errors.add(key, message)
        set_(self, "id", p.text(self.id, "id", errors))
        set_(self, "window", p.text(self.window, "window", errors))
        set_(self, "target_country", p.country(self.target_country, "target_country", errors))
        set_(self, "title", p.text(self.title, "title", errors))
        set_(self, "summary", p.text(self.summary, "summary", errors, required=False) or "")
        p.integer(self.duration_months, "duration_months", errors, low=1)
        if not isinstance(self.budget, Budget):
            errors.add("budget", "must be a Budget")
        for name in ("total_eligible_cost", "ec_amount_requested", "co_financing"):
            set_(self, name, p.money(getattr(self, name), name, errors))
        applicants = tuple(self.applicants) if isinstance(self.applicants, (list, tuple)) else None
        if not applicants:
            errors.add("applicants", "must list at least the lead applicant")
        elif not all(isinstance(a, Applicant) for a in applicants):
            errors.add("applicants", "must be Applicant items")
        set_(self, "applicants", applicants or ())
        if self.submitted_at is not None:
            set_(self, "submitted_at", p.utc_datetime(self.submitted_at, "submitted_at", errors))
        errors.raise_if_any()

    @property
    def lead(self) -> Applicant | None:
        leads = [a for a in self.applicants if a.role is Role.LEAD]
        return leads[0] if len(leads) == 1 else None

    @property
    def consortium_countries(self) -> tuple[str, ...]:
        return tuple(sorted({a.country for a in self.applicants}))


def proposal_reference(programme_id: str, year: int, country: str, sequence: int) -> str:
    """Human reference quoted in letters and reports: "JMDI-2008-MA-0042"."""
    errors = p.Errors()
    pid = p.text(programme_id, "programme_id", errors)
    p.integer(year, "year", errors, low=1000, high=9999)
    c = p.country(country, "country", errors)
    p.integer(sequence, "sequence", errors, low=1, high=9999)
    errors.raise_if_any()
    return f"{p.checked(pid).upper()}-{year:04d}-{c}-{sequence:04d}"


def proposal_to_dict(proposal: Proposal) -> dict:
    return {
        "id": proposal.id,
        "call_id": proposal.call_id,
        "reference": proposal.reference,
        "window": proposal.window,
        "target_country": proposal.target_country,
        "title": proposal.title,
        "summary": proposal.summary,
        "duration_months": proposal.duration_months,
        "budget": proposal.budget.to_dict(),
        "total_eligible_cost": money_str(proposal.total_eligible_cost),
        "ec_amount_requested": money_str(proposal.ec_amount_requested),
        "co_financing": money_str(proposal.co_financing),
        "submitted_at": proposal.submitted_at.isoformat() if proposal.submitted_at else None,
        "logframe": proposal.logframe,
        "applicants": [
            {
                "name": a.name,
                "type": a.type.value,
                "country": a.country,
                "registration_number": a.registration_number,
                "email": a.email,
                "language": a.language.value,
                "role": a.role.value,
            }
            for a in proposal.applicants
        ],
    }


def proposal_from_dict(data: dict) -> Proposal:
    """Build a Proposal from RPC/storage data; InvalidInput names fields as "applicants.1.email"."""
    if not isinstance(data, dict):
        raise InvalidInput({"_schema": ["a proposal must be a mapping"]})
    errors: dict[str, list] = {}
    budget = None
    raw_budget = data.get("budget")
    if not isinstance(raw_budget, dict):
        errors["budget"] = ["is required"]
    else:
        unknown = sorted(set(raw_budget) - set(BUDGET_LINES))
        if unknown:
            errors["budget"] = [f"unknown budget lines {unknown}"]
        else:
            try:
                budget = Budget(**raw_budget)
            except InvalidInput as exc:
                errors.update({f"budget.{k}": v for k, v in exc.errors.items()})
    applicants = []
    raw_applicants = data.get("applicants")
    if not isinstance(raw_applicants, list) or not raw_applicants:
        errors["applicants"] = ["must list at least the lead applicant"]
    else:
        for i, raw in enumerate(raw_applicants):
            if not isinstance(raw, dict):
                errors[f"applicants.{i}"] = ["must be a mapping"]
                continue
            try:
                applicants.append(
                    Applicant(
                        name=p.unchecked(raw.get("name")),
                        type=p.unchecked(raw.get("type")),
                        country=p.unchecked(raw.get("country")),
                        registration_number=p.unchecked(raw.get("registration_number")),
                        email=p.unchecked(raw.get("email")),
                        language=raw.get("language", "en"),
                        role=raw.get("role", "co_applicant"),
                    )
                )
            except InvalidInput as exc:
                errors.update({f"applicants.{i}.{k}": v for k, v in exc.errors.items()})
    try:
        proposal = Proposal(
            id=p.unchecked(data.get("id")),
            window=p.unchecked(data.get("window")),
            target_country=p.unchecked(data.get("target_country")),
            title=p.unchecked(data.get("title")),
            summary=p.unchecked(data.get("summary")),
            duration_months=p.unchecked(data.get("duration_months")),
            budget=p.unchecked(budget),
            total_eligible_cost=p.unchecked(data.get("total_eligible_cost")),
            ec_amount_requested=p.unchecked(data.get("ec_amount_requested")),
            co_financing=p.unchecked(data.get("co_financing")),
            applicants=tuple(applicants),
            call_id=data.get("call_id"),
            reference=data.get("reference"),
            submitted_at=data.get("submitted_at"),
            logframe=data.get("logframe"),
        )
    except InvalidInput as exc:
        for key, value in exc.errors.items():
            if key in ("budget", "applicants") and any(k == key or k.startswith(key + ".") for k in errors):
                continue
            errors.setdefault(key, value)
        proposal = None
    if errors:
        raise InvalidInput(errors)
    return p.checked(proposal)  # None only when Proposal refused its fields, which left errors
