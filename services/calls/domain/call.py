"""A call for proposals ("appel à propositions") and its lifecycle: draft -> open -> closed -> evaluated.

A call copies the grant bounds and budget caps from the programme's rule profile when it is created: the rules an
applicant read when the call opened are the rules their proposal is judged by, whatever later happens to the
profile file. Only a draft may change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum

from services.common.values.annex import BudgetCaps
from services.common.values.errors import Conflict, InvalidInput, NotFound
from services.common.values.money import money_str

from . import _parse as p
from .profile import RuleProfile
from .programme import Programme


class CallStatus(str, Enum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    EVALUATED = "evaluated"


class ApplicantType(str, Enum):
    """Legal nature of an applicant; a call lists the ones it accepts."""

    CIVIL_SOCIETY_ORGANISATION = "civil_society_organisation"
    NGO = "ngo"
    LOCAL_AUTHORITY = "local_authority"
    UNIVERSITY = "university"
    RESEARCH_INSTITUTE = "research_institute"
    PRIVATE_NON_PROFIT = "private_non_profit"
    MIGRANT_ASSOCIATION = "migrant_association"
    PRIVATE_FOR_PROFIT = "private_for_profit"
    INTERNATIONAL_ORGANISATION = "international_organisation"


DEFAULT_APPLICANT_TYPES = frozenset(
    {
        ApplicantType.CIVIL_SOCIETY_ORGANISATION,
        ApplicantType.NGO,
        ApplicantType.LOCAL_AUTHORITY,
        ApplicantType.UNIVERSITY,
        ApplicantType.RESEARCH_INSTITUTE,
        ApplicantType.PRIVATE_NON_PROFIT,
        ApplicantType.MIGRANT_ASSOCIATION,
    }
)


class PartnerScope(str, Enum):
    """Where the "target country" partner must be: in the proposal's own target country or any eligible one."""

    TARGET_COUNTRY = "target_country"
    ANY_ELIGIBLE_COUNTRY = "any_eligible_country"


@dataclass(frozen=True)
class ConsortiumRule:
    """Design §1: at least one partner in an EU member state and one in a target country."""

    require_eu_partner: bool = True
    require_target_country_partner: bool = True
    partner_scope: PartnerScope = PartnerScope.TARGET_COUNTRY
    max_co_applicants: int | None = None


@dataclass(frozen=True)
class CallWindow:
    code: str
    allocation: Decimal


_AMENDABLE = frozenset(
    {
        "title",
        "windows",
        "deadline",
        "min_grant",
        "max_grant",
        "max_ec_share",
        "eligible_applicant_types",
        "consortium",
        "min_duration_months",
        "max_duration_months",
    }
)


@dataclass
class Call:
    id: str
    programme_id: str
    title: str
    windows: tuple[CallWindow, ...]
    deadline: datetime
    min_grant: Decimal
    max_grant: Decimal
    max_ec_share: Decimal
    contingency_cap: Decimal
    indirect_cap: Decimal
    eligible_applicant_types: frozenset = DEFAULT_APPLICANT_TYPES
    consortium: ConsortiumRule = field(default_factory=ConsortiumRule)
    min_duration_months: int | None = None
    max_duration_months: int | None = None
    rule_profile: str = "ec_prag"
    status: CallStatus = CallStatus.DRAFT
    opened_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def caps(self) -> BudgetCaps:
        return BudgetCaps(self.contingency_cap, self.indirect_cap)

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        *,
        id: str,
        programme: Programme,
        profile: RuleProfile,
        title: str,
        windows,
        deadline,
        min_grant=None,
        max_grant=None,
        max_ec_share=None,
        eligible_applicant_types=None,
        consortium: ConsortiumRule | None = None,
        min_duration_months=None,
        max_duration_months=None,
    ) -> "Call":
        """A new draft call; unset bounds default to the profile, set ones must stay inside it."""
        errors = p.Errors()
        call_id = p.text(id, "id", errors)
        errors.raise_if_any()
        call = cls(
            id=p.checked(call_id),
            programme_id=programme.id,
            title=title,
            windows=windows,
            deadline=deadline,
            min_grant=profile.min_grant if min_grant is None else min_grant,
            max_grant=profile.max_grant if max_grant is None else max_grant,
            max_ec_share=profile.max_ec_share if max_ec_share is None else max_ec_share,
            contingency_cap=profile.contingency_cap,
            indirect_cap=profile.indirect_cap,
            eligible_applicant_types=(
                DEFAULT_APPLICANT_TYPES if eligible_applicant_types is None else eligible_applicant_types
            ),
            consortium=consortium or ConsortiumRule(),
            min_duration_months=(profile.min_duration_months if min_duration_months is None else min_duration_months),
            max_duration_months=(profile.max_duration_months if max_duration_months is None else max_duration_months),
            rule_profile=profile.name,
        )
        return call.validated(programme, profile)

    def validated(self, programme: Programme | None = None, profile: RuleProfile | None = None) -> "Call":
        """Normalise and check the fields; with the programme and profile, also check against them."""
        errors = p.Errors()
        title = p.text(self.title, "title", errors)
        deadline = p.utc_datetime(self.deadline, "deadline", errors)
        windows = _call_windows(self.windows, errors)
        min_grant = p.money(self.min_grant, "min_grant", errors, minimum=Decimal("0.01"))
        max_grant = p.money(self.max_grant, "max_grant", errors, minimum=Decimal("0.01"))
        if min_grant and max_grant and min_grant > max_grant:
            errors.add("max_grant", "must not be below min_grant")
        share = p.decimal(self.max_ec_share, "max_ec_share", errors, Decimal("0.01"), Decimal("1"))
        types = _applicant_types(self.eligible_applicant_types, errors)
        consortium = self.consortium
        if not isinstance(consortium, ConsortiumRule):
            errors.add("consortium", "must be a ConsortiumRule")
        min_dur = p.integer(self.min_duration_months, "min_duration_months", errors, low=1, required=False)
        max_dur = p.integer(self.max_duration_months, "max_duration_months", errors, low=1, required=False)
        if min_dur and max_dur and min_dur > max_dur:
            errors.add("max_duration_months", "must not be below min_duration_months")

        if programme is not None and not errors:
            if programme.id != self.programme_id:
                errors.add("programme_id", f"call belongs to {self.programme_id!r}, not {programme.id!r}")
            total = Decimal("0.00")
            for i, w in enumerate(windows):
                total += w.allocation
                if not programme.has_window(w.code):
                    errors.add(f"windows.{i}.code", f"window {w.code!r} is not a window of {programme.id}")
                elif w.allocation > programme.window(w.code).allocation:
                    errors.add(
                        f"windows.{i}.allocation",
                        f"exceeds the programme's allocation for {w.code!r} "
                        f"({money_str(programme.window(w.code).allocation)})",
                    )
            if total > programme.ec_contribution:
                errors.add(
                    "windows",
                    f"allocations sum to {money_str(total)}, more than the EC contribution "
                    f"{money_str(programme.ec_contribution)}",
                )
        errors.raise_if_any()
        title, deadline = p.checked(title), p.checked(deadline)
        min_grant, max_grant, share = p.checked(min_grant), p.checked(max_grant), p.checked(share)
        if profile is not None:
            if min_grant < profile.min_grant:
                errors.add("min_grant", f"must not be below the profile minimum {money_str(profile.min_grant)}")
            if max_grant > profile.max_grant:
                errors.add("max_grant", f"must not exceed the profile maximum {money_str(profile.max_grant)}")
            if share > profile.max_ec_share:
                errors.add("max_ec_share", f"must not exceed the profile cap {profile.max_ec_share}")
            errors.raise_if_any()
        if programme is not None and not programme.period_start <= deadline.date() <= programme.period_end:
            raise Conflict(
                "call.deadline_outside_programme",
                f"the deadline {deadline.date()} is outside the programme period "
                f"{programme.period_start} to {programme.period_end}",
                [
                    {
                        "deadline": deadline.isoformat(),
                        "period_start": programme.period_start.isoformat(),
                        "period_end": programme.period_end.isoformat(),
                    }
                ],
            )
        return replace(
            self,
            title=title,
            deadline=deadline,
            windows=windows,
            min_grant=min_grant,
            max_grant=max_grant,
            max_ec_share=share,
            eligible_applicant_types=types,
            min_duration_months=min_dur,
            max_duration_months=max_dur,
        )

    # -- queries ------------------------------------------------------------------------------------------------
    @property
    def window_codes(self) -> tuple[str, ...]:
        return tuple(w.code for w in self.windows)

    @property
    def total_allocation(self) -> Decimal:
        return sum((w.allocation for w in self.windows), Decimal("0.00"))

    def window(self, code: str) -> CallWindow:
        for w in self.windows:
            if w.code == code:
                return w
        raise NotFound("call window", code)

    def has_window(self, code: str) -> bool:
        return code in self.window_codes

    def is_open_for_submission(self, now: datetime) -> bool:
        """Open and not past the deadline; a proposal arriving exactly at the deadline is still on time."""
        now = p.require_aware(now)
        return self.status is CallStatus.OPEN and now <= self.deadline

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def open(self, now: datetime) -> None:
        now = p.require_aware(now)
        self._require(CallStatus.DRAFT, "call.not_draft", "only a draft call can be opened")
        if now >= self.deadline:
            raise Conflict(
                "call.deadline_passed",
                f"the deadline {self.deadline.isoformat()} has passed",
                [{"deadline": self.deadline.isoformat(), "now": now.isoformat()}],
            )
        self.status, self.opened_at = CallStatus.OPEN, now

    def close(self, now: datetime) -> None:
        """Close at or after the deadline: closing early would shut out applicants who relied on it."""
        now = p.require_aware(now)
        self._require(CallStatus.OPEN, "call.not_open", "only an open call can be closed")
        if now < self.deadline:
            raise Conflict(
                "call.deadline_not_reached",
                f"the deadline {self.deadline.isoformat()} is not reached",
                [{"deadline": self.deadline.isoformat(), "now": now.isoformat()}],
            )
        self.status, self.closed_at = CallStatus.CLOSED, now

    def mark_evaluated(self) -> None:
        self._require(CallStatus.CLOSED, "call.not_closed", "only a closed call can be marked evaluated")
        self.status = CallStatus.EVALUATED

    def amend(self, *, programme: Programme | None = None, profile: RuleProfile | None = None, **changes) -> None:
        """Change a draft; pass the programme and profile so windows and bounds are re-checked against them."""
        self._require(CallStatus.DRAFT, "call.not_draft", "only a draft call can be amended")
        unknown = sorted(set(changes) - _AMENDABLE)
        if unknown:
            raise InvalidInput({name: ["cannot be amended"] for name in unknown})
        amended = replace(self, **changes).validated(programme, profile)
        for f in fields(self):
            setattr(self, f.name, getattr(amended, f.name))

    def _require(self, status: CallStatus, rule: str, reason: str) -> None:
        if self.status is not status:
            raise Conflict(
                rule,
                f"{reason} (call {self.id!r} is {self.status.value})",
                [{"call_id": self.id, "status": self.status.value}],
            )


def _call_windows(raw, errors: p.Errors) -> tuple[CallWindow, ...]:
    """Windows come as CallWindow items or as a {code: allocation} mapping (the RPC shape)."""
    if isinstance(raw, dict):
        raw = [CallWindow(code, amount) for code, amount in raw.items()]
    if not isinstance(raw, (list, tuple)) or not raw:
        errors.add("windows", "must list at least one window with its allocation")
        return ()
    result, seen = [], set()
    for i, w in enumerate(raw):
        if isinstance(w, dict):
            raw_code, raw_amount = w.get("code"), w.get("allocation")
        elif isinstance(w, CallWindow):
            raw_code, raw_amount = w.code, w.allocation
        else:
            errors.add(f"windows.{i}", "must be a window code with an allocation")
            continue
        code = p.code(raw_code, f"windows.{i}.code", errors)
        amount = p.money(raw_amount, f"windows.{i}.allocation", errors, minimum=Decimal("0.01"))
        if code in seen:
            errors.add(f"windows.{i}.code", f"duplicate window {code!r}")
            continue
        if code is not None and amount is not None:
            seen.add(code)
            result.append(CallWindow(code, amount))
    return tuple(result)


def _applicant_types(raw, errors: p.Errors) -> frozenset:
    if isinstance(raw, (str, bytes)) or not hasattr(raw, "__iter__"):
        errors.add("eligible_applicant_types", "must be a list of applicant types")
        return frozenset()
    types = set()
    for value in raw:
        try:
            types.add(ApplicantType(value))
        except ValueError:
            errors.add("eligible_applicant_types", f"unknown applicant type {value!r}")
    if not types and "eligible_applicant_types" not in errors.errors:
        errors.add("eligible_applicant_types", "must not be empty")
    return frozenset(types)


def call_to_dict(call: Call) -> dict:
    return {
        "id": call.id,
        "programme_id": call.programme_id,
        "title": call.title,
        "windows": [{"code": w.code, "allocation": money_str(w.allocation)} for w in call.windows],
        "deadline": call.deadline.isoformat(),
        "min_grant": money_str(call.min_grant),
        "max_grant": money_str(call.max_grant),
        "max_ec_share": str(call.max_ec_share),
        "contingency_cap": str(call.contingency_cap),
        "indirect_cap": str(call.indirect_cap),
        "eligible_applicant_types": sorted(t.value for t in call.eligible_applicant_types),
        "consortium": {
            "require_eu_partner": call.consortium.require_eu_partner,
            "require_target_country_partner": call.consortium.require_target_country_partner,
            "partner_scope": call.consortium.partner_scope.value,
            "max_co_applicants": call.consortium.max_co_applicants,
        },
        "min_duration_months": call.min_duration_months,
        "max_duration_months": call.max_duration_months,
        "rule_profile": call.rule_profile,
        "status": call.status.value,
        "opened_at": call.opened_at.isoformat() if call.opened_at else None,
        "closed_at": call.closed_at.isoformat() if call.closed_at else None,
    }


def call_from_dict(data: dict) -> Call:
    """Rebuild a stored call (already validated when it was created); re-checks its own fields."""
    errors = p.Errors()
    try:
        status = CallStatus(data.get("status", "draft"))
    except ValueError:
        errors.add("status", f"unknown status {data.get('status')!r}")
        status = CallStatus.DRAFT
    raw_consortium = data.get("consortium") or {}
    try:
        consortium = ConsortiumRule(
            require_eu_partner=bool(raw_consortium.get("require_eu_partner", True)),
            require_target_country_partner=bool(raw_consortium.get("require_target_country_partner", True)),
            partner_scope=PartnerScope(raw_consortium.get("partner_scope", "target_country")),
            max_co_applicants=raw_consortium.get("max_co_applicants"),
        )
    except ValueError:
        errors.add("consortium.partner_scope", "unknown partner scope")
        consortium = ConsortiumRule()
    contingency = p.decimal(data.get("contingency_cap"), "contingency_cap", errors, Decimal(0), Decimal(1))
    indirect = p.decimal(data.get("indirect_cap"), "indirect_cap", errors, Decimal(0), Decimal(1))
    opened_at = p.utc_datetime(data["opened_at"], "opened_at", errors) if data.get("opened_at") else None
    closed_at = p.utc_datetime(data["closed_at"], "closed_at", errors) if data.get("closed_at") else None
    errors.raise_if_any()
    call = Call(
        id=p.unchecked(data.get("id")),
        programme_id=p.unchecked(data.get("programme_id")),
        title=p.unchecked(data.get("title")),
        windows=p.unchecked(data.get("windows")),
        deadline=p.unchecked(data.get("deadline")),
        min_grant=p.unchecked(data.get("min_grant")),
        max_grant=p.unchecked(data.get("max_grant")),
        max_ec_share=p.unchecked(data.get("max_ec_share")),
        contingency_cap=p.checked(contingency),
        indirect_cap=p.checked(indirect),
        eligible_applicant_types=data.get("eligible_applicant_types") or frozenset(),
        consortium=consortium,
        min_duration_months=data.get("min_duration_months"),
        max_duration_months=data.get("max_duration_months"),
        rule_profile=data.get("rule_profile", "ec_prag"),
        status=status,
        opened_at=opened_at,
        closed_at=closed_at,
    )
    return call.validated()
