"""Realistic inputs for flows through the system (the JMDI 2008 call, in miniature)."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

WINDOWS = ("remittances", "migrant_communities", "migrant_associations", "migrants_rights")
COUNTRIES = ("MA", "SN", "PH", "EC", "GE", "ML")


def programme(programme_id: str = "JMDI") -> dict:
    """A programme definition in the shape of services/calls/data/programmes/jmdi.yaml, with a period that covers
    the calls tests create (deadlines a few days or weeks from now)."""
    today = date.today()
    return {
        "id": programme_id, "name": "EC-UN Joint Migration and Development Initiative",
        "name_fr": "Initiative conjointe CE/ONU Migration et Développement",
        "funder": "European Commission", "administered_by": "UNDP", "budget_line": "Migration and Asylum",
        "ec_contribution": "15000000.00",
        "period": {"start": "2008-12-01", "end": today.replace(year=today.year + 3, day=1).isoformat()},
        "rule_profile": "ec_prag",
        "eligible_countries": ["MA", "DZ", "CV", "EC", "EG", "ET", "GE", "GH", "JM", "ML", "MD", "NG", "PH", "SN",
                               "LK", "TN"],
        "eu_member_states": ["BE", "FR", "IT", "ES", "NL", "DE", "PT"],
        "windows": [{"code": w, "name_en": w.replace("_", " ").capitalize(), "name_fr": w.replace("_", " "),
                     "allocation": "3750000.00"} for w in WINDOWS],
    }


def call(call_id: str = "JMDI-2008", programme_id: str = "JMDI", deadline_in=timedelta(days=30),
         allocation="3750000.00") -> dict:
    return {
        "call_id": call_id, "programme_id": programme_id, "title": "JMDI call for proposals 2008",
        "windows": [{"window": w, "allocation_eur": allocation} for w in WINDOWS],
        "deadline": (datetime.now(timezone.utc) + deadline_in).isoformat(),
    }


def proposal(n: int, call_id: str = "JMDI-2008", window: str | None = None, country: str | None = None,
             requested: str = "150000.00", language: str = "fr") -> dict:
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
    budget = {"human_resources": hr, "travel": travel, "equipment_supplies": equipment, "local_office": office,
              "other_costs_services": services, "other": other, "contingency": contingency,
              "indirect_costs": indirect}
    return {
        "call_id": call_id, "idempotency_key": f"{call_id}-{n}", "window": window, "target_country": country,
        "title": f"Diaspora savings for local development no. {n}",
        "summary": "Channelling migrant remittances into productive investment in the home region.",
        "duration_months": 24,
        "applicants": [
            {"name": f"Association Migrations et Développement {n}", "type": "civil_society_organisation",
             "country": country, "registration_number": f"REG-{country}-{n:05d}", "email": f"lead{n}@example.org",
             "language": language, "role": "lead"},
            {"name": f"Stichting Diaspora Partners {n}", "type": "civil_society_organisation", "country": "NL",
             "registration_number": f"KVK-{n:08d}", "email": f"partner{n}@example.org", "language": "en",
             "role": "co_applicant"},
        ],
        "budget": {k: str(v) for k, v in budget.items()},
        "total_eligible_cost_eur": str(total),
        "ec_amount_requested_eur": str(requested_amount),
        "co_financing_eur": str(total - requested_amount),
    }
