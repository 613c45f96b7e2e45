"""Realistic inputs for flows through the system (the JMDI 2008 call, in miniature)."""

import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

WINDOWS = ("remittances", "migrant_communities", "migrant_associations", "migrants_rights")
COUNTRIES = ("MA", "SN", "PH", "EC", "GE", "ML")


def programme(programme_id: str = "JMDI") -> dict:
    """A programme definition in the shape of services/calls/data/programmes/jmdi.yaml, with a period that covers
    the calls tests create (deadlines a few days or weeks from now)."""
    today = date.today()
    return {
        "id": programme_id,
        "name": "EC-UN Joint Migration and Development Initiative",
        "name_fr": "Initiative conjointe CE/ONU Migration et Développement",
        "funder": "European Commission",
        "administered_by": "UNDP",
        "budget_line": "Migration and Asylum",
        "ec_contribution": "15000000.00",
        "period": {"start": "2008-12-01", "end": today.replace(year=today.year + 3, day=1).isoformat()},
        "rule_profile": "ec_prag",
        "eligible_countries": [
            "MA",
            "DZ",
            "CV",
            "EC",
            "EG",
            "ET",
            "GE",
            "GH",
            "JM",
            "ML",
            "MD",
            "NG",
            "PH",
            "SN",
            "LK",
            "TN",
        ],
        "eu_member_states": ["BE", "FR", "IT", "ES", "NL", "DE", "PT"],
        "windows": [
            {
                "code": w,
                "name_en": w.replace("_", " ").capitalize(),
                "name_fr": w.replace("_", " "),
                "allocation": "3750000.00",
            }
            for w in WINDOWS
        ],
    }


# The longest a test module runs with one call (the staff walkthrough), with a margin.
LONGEST_MODULE = timedelta(minutes=15)


def wait_before_midnight(now: datetime, needed: timedelta = LONGEST_MODULE) -> float:
    """Seconds to wait, from `now`, so that `needed` fits in one day (UTC): 0 while it does, else until just past
    midnight. A module that created its call at 23:55 would find it closed at 00:00, in the middle of its flow."""
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return 0.0 if midnight - now >= needed else (midnight - now).total_seconds() + 1


def wait_for_a_whole_day_left(needed: timedelta = LONGEST_MODULE) -> None:
    """Sleep until `needed` fits in what is left of today. Callers do it before anything timed starts (the test
    session's hook before each integration module, the benchmarks before they open their call): a wait of up to
    `needed` inside a test would count against its timeout."""
    time.sleep(wait_before_midnight(datetime.now(timezone.utc), needed))


def end_of_today() -> datetime:
    """The last second of today (UTC)."""
    return datetime.now(timezone.utc).replace(hour=23, minute=59, second=59, microsecond=0)


def call(
    call_id: str = "JMDI-2008",
    programme_id: str = "JMDI",
    deadline_in: timedelta | None = None,
    allocation="3750000.00",
) -> dict:
    """A call to create. By default its deadline is the end of today (UTC): proposals may be submitted all day,
    and the steering committee may decide on it today — an award is dated no earlier than the day the call closes
    and no later than today. Live flows start only when a whole module fits in today (wait_for_a_whole_day_left)."""
    deadline = datetime.now(timezone.utc) + deadline_in if deadline_in is not None else end_of_today()
    return {
        "call_id": call_id,
        "programme_id": programme_id,
        "title": "JMDI call for proposals 2008",
        "windows": [{"window": w, "allocation_eur": allocation} for w in WINDOWS],
        "deadline": deadline.isoformat(),
    }


def proposal(
    n: int,
    call_id: str = "JMDI-2008",
    window: str | None = None,
    country: str | None = None,
    requested: str = "150000.00",
    language: str = "fr",
) -> dict:
    window = window or WINDOWS[n % len(WINDOWS)]
    country = country or COUNTRIES[n % len(COUNTRIES)]
    requested_amount = Decimal(requested)
    total = (requested_amount / Decimal("0.8")).quantize(Decimal("0.01"))
    # Annex III lines that add up: direct costs, 5% contingency headroom, 7% indirect
    indirect = (total * Decimal("0.06")).quantize(Decimal("0.01"))
    direct = total - indirect
    contingency = (direct * Decimal("0.03")).quantize(Decimal("0.01"))
    subtotal = direct - contingency
    hr = (subtotal * Decimal("0.5")).quantize(Decimal("0.01"))
    travel = (subtotal * Decimal("0.1")).quantize(Decimal("0.01"))
    equipment = (subtotal * Decimal("0.1")).quantize(Decimal("0.01"))
    office = (subtotal * Decimal("0.1")).quantize(Decimal("0.01"))
    services = (subtotal * Decimal("0.1")).quantize(Decimal("0.01"))
    other = subtotal - hr - travel - equipment - office - services
    budget = {
        "human_resources": hr,
        "travel": travel,
        "equipment_supplies": equipment,
        "local_office": office,
        "other_costs_services": services,
        "other": other,
        "contingency": contingency,
        "indirect_costs": indirect,
    }
    return {
        "call_id": call_id,
        "idempotency_key": f"{call_id}-{n}",
        "window": window,
        "target_country": country,
        "title": f"Diaspora savings for local development no. {n}",
        "summary": "Channelling migrant remittances into productive investment in the home region.",
        "duration_months": 24,
        "applicants": [
            {
                "name": f"Association Migrations et Développement {n}",
                "type": "civil_society_organisation",
                "country": country,
                "registration_number": f"REG-{country}-{n:05d}",
                "email": f"lead{n}@example.org",
                "language": language,
                "role": "lead",
            },
            {
                "name": f"Stichting Diaspora Partners {n}",
                "type": "civil_society_organisation",
                "country": "NL",
                "registration_number": f"KVK-{n:08d}",
                "email": f"partner{n}@example.org",
                "language": "en",
                "role": "co_applicant",
            },
        ],
        "budget": {k: str(v) for k, v in budget.items()},
        "total_eligible_cost_eur": str(total),
        "ec_amount_requested_eur": str(requested_amount),
        "co_financing_eur": str(total - requested_amount),
        "logframe": logframe(n),
    }


def logframe(n: int = 0) -> list[dict]:
    """A small logframe: one outcome and one output, three indicators (unit, percentage, qualitative)."""
    return [
        {
            "type": "outcome",
            "title": "Migrant savings invested in the home region",
            "indicators": [
                {
                    "code": "OC1.1",
                    "title": "Diaspora investments in local businesses",
                    "measure": "unit",
                    "unit": "investments",
                    "baseline_value": "0",
                    "baseline_year": 2008,
                    "target_value": "40",
                    "target_date": "2010-12-31",
                    "source_of_verification": "Register of the local development agency",
                },
                {
                    "code": "OC1.2",
                    "title": "Share of remittance receivers using a savings product",
                    "measure": "percentage",
                    "baseline_value": "12.5",
                    "baseline_year": 2008,
                    "target_value": "30",
                    "target_date": "2010-12-31",
                    "source_of_verification": "Household survey",
                },
            ],
        },
        {
            "type": "output",
            "title": "Migrant associations trained in project management",
            "indicators": [
                {
                    "code": "OP1.1",
                    "title": "Quality of the business plans submitted",
                    "measure": "qualitative",
                    "baseline_value": "Few plans, mostly incomplete",
                    "baseline_year": 2008,
                    "target_value": "Complete plans meeting the bank's criteria",
                    "target_date": "2010-06-30",
                    "source_of_verification": "Review by the partner bank",
                },
            ],
        },
    ]


def iban(number: int, country: str = "MA") -> str:
    """A valid IBAN (ISO 13616 mod-97 check digits) of the country, different for each number: organisations
    that share an account are flagged to finance, so each test organisation has its own."""
    from services.grants.domain import ALL_IBAN_LENGTHS

    bban = f"{number:0{ALL_IBAN_LENGTHS[country] - 4}d}"
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"
