"""The pure domain of the grants service: award guards, tranche schedules, payments, reports, amendments and
closure, tied together by the Grant aggregate. Plain Python (dataclasses, enums, Decimal): no nameko, no
SQLAlchemy, no I/O; rules raise the kit's errors (InvalidInput, NotFound, Conflict, NotAllowed)."""

from .amendments import (
    REALLOCATION_LIMIT,
    Amendment,
    AmendmentKind,
    check_amendment_amount,
    check_ec_share,
    check_reallocation,
    reallocation_changes,
    targets_of,
)
from .annex import (
    DIRECT_HEADINGS,
    HEADINGS,
    check_caps,
    direct_subtotal,
    normalise_budget,
    total_direct,
    total_eligible,
)
from .budget import (
    CallLimits,
    ProgrammeBudget,
    ProposalCopy,
    RankedProposal,
    Ranking,
    RankingList,
    ReservePlaces,
    WindowBudget,
    award_violations,
    check_award,
    decline,
    next_from_reserve,
    reserve_places,
)
from ._values import period_end
from .closure import Closure, ClosureKind, close_grant, committed_amount, eligible_ec_amount
from .currencies import ConversionRule, ExchangeRate, ExpenditureLine, RateType, conversion_rule, currency, rate_table
from .dates import ProgrammeCalendar, check_value_date
from .grant import DomainEvent, Grant, GrantStatus, reject_proposal
from .organisations import (
    ALL_IBAN_LENGTHS,
    IBAN_LENGTHS,
    NATIONAL_IBAN_LENGTHS,
    Organisation,
    check_shared_account,
    format_iban,
    iban_checksum_ok,
    validate_bic,
    validate_iban,
)
from .payments import (
    SPEND_THRESHOLD,
    PaymentRequest,
    PaymentState,
    PaymentStatus,
    approve,
    check_payment,
    mark_paid,
    next_payment_amount,
)
from .reports import (
    FinancialReport,
    ReportDue,
    ReportingPeriod,
    ReportKind,
    ReportStatus,
    accept,
    report_due_dates,
    reporting_periods,
    return_report,
)
from .termination import Termination, check_termination, periods_after_termination
from .schedule import (
    FINAL_REPORT,
    PAYMENT_PROFILES,
    PRAG,
    UNDP,
    PragPayments,
    SharePayments,
    Tranche,
    TrancheKind,
    compute_schedule,
    fit_to_award,
    interim_condition,
    payment_profile,
    period_budgets,
    schedule_total,
)

__all__ = [name for name in dir() if not name.startswith("_")]
