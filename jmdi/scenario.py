"""The 2008 JMDI call in data: consortia across the programme's countries, budgets, scores (deterministic by seed).

Pure: no RPC, no clock. `jmdi demo` (jmdi/demo.py) plays it against the running services.
"""

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal

CENT = Decimal("0.01")

# a few places per country, for realistic organisation names (the country list itself comes from the programme)
PLACES = {
    "MA": ("Tanger", "Oujda", "Nador", "Béni Mellal", "Agadir", "Fès"),
    "DZ": ("Oran", "Tizi Ouzou", "Sétif", "Annaba"),
    "CV": ("Praia", "Mindelo", "Santa Catarina"),
    "EC": ("Cuenca", "Loja", "Azogues", "Quito"),
    "EG": ("Fayoum", "Menoufia", "Assiut", "Alexandria"),
    "ET": ("Addis Ababa", "Dessie", "Hawassa"),
    "GE": ("Tbilisi", "Kutaisi", "Batumi"),
    "GH": ("Kumasi", "Tamale", "Cape Coast"),
    "JM": ("Kingston", "Montego Bay", "Mandeville"),
    "ML": ("Kayes", "Bamako", "Ségou", "Mopti"),
    "MD": ("Chișinău", "Bălți", "Cahul"),
    "NG": ("Benin City", "Lagos", "Enugu", "Kano"),
    "PH": ("Batangas", "Iloilo", "Cebu", "Davao"),
    "SN": ("Matam", "Louga", "Dakar", "Ziguinchor"),
    "LK": ("Kurunegala", "Colombo", "Kandy"),
    "TN": ("Médenine", "Sfax", "Gafsa", "Tunis"),
}
FRENCH_SPEAKING = {"MA", "DZ", "ML", "SN", "TN"}
LEAD_PATTERNS_FR = (
    "Association Migration et Développement de {place}",
    "Réseau des femmes migrantes de {place}",
    "Collectif Diaspora Solidaire de {place}",
    "Commune de {place}",
    "Association des jeunes pour le co-développement de {place}",
    "Centre d'études sur les migrations de {place}",
)
LEAD_PATTERNS_EN = (
    "{place} Migrant Resource Centre",
    "{place} Diaspora Development Network",
    "Municipality of {place}",
    "{place} Returnees' Cooperative",
    "Centre for Migration Studies, {place}",
    "{place} Women on the Move Association",
)
EU_PARTNERS = (
    ("BE", "Solidarité Migrants Wallonie"),
    ("FR", "Forum des Organisations de Solidarité Internationale Issues des Migrations"),
    ("FR", "Grdr Migration-Citoyenneté-Développement"),
    ("IT", "Cooperazione Migranti Piemonte"),
    ("ES", "Fundación Codesarrollo Andalucía"),
    ("NL", "Stichting Diaspora Partners"),
    ("DE", "Migrantenorganisationen Entwicklungsnetzwerk"),
    ("PT", "Associação Cabo-verdiana de Lisboa"),
    ("GB", "African Foundation for Development"),
    ("GR", "Hellenic Migrant Solidarity"),
    ("SE", "Diaspora Network Stockholm"),
    ("IE", "Migrant Rights Centre Dublin"),
)
TITLES = {
    "remittances": (
        "Channelling remittances into local enterprise in {place}",
        "Lowering the cost of sending money home to {place}",
        "Diaspora savings for productive investment in {place}",
    ),
    "migrant_communities": (
        "Diaspora skills for local development in {place}",
        "Hometown associations as development partners in {place}",
        "Returning migrants as entrepreneurs in {place}",
    ),
    "migrant_associations": (
        "Strengthening migrant associations in {place}",
        "Training migrant organisations in project management, {place}",
        "A platform for migrant associations of {place}",
    ),
    "migrants_rights": (
        "Information and legal aid for migrants' rights in {place}",
        "Protecting migrant domestic workers from {place}",
        "Fair recruitment and pre-departure orientation in {place}",
    ),
}
APPLICANT_TYPES = ("civil_society_organisation", "ngo", "local_authority", "university", "migrant_association")
HEADING_SHARES = (
    ("human_resources", 40, 50),
    ("travel", 5, 12),
    ("equipment_supplies", 4, 8),
    ("local_office", 4, 8),
    ("other_costs_services", 8, 15),
)  # at most 93%: "other" keeps the rest


@dataclass
class Consortium:
    """One proposal of the demo and what the demo knows about it (its quality, why it should not pass)."""

    n: int
    payload: dict
    quality: float  # 0..1: how good assessors will find it
    flaw: str | None = None  # "excluded" (lead on the exclusion list) | "no_eu_partner"
    proposal_id: str | None = None
    reference: str | None = None
    refused: str | None = None  # the rule that refused it at submission

    @property
    def lead(self) -> dict:
        return self.payload["applicants"][0]


@dataclass
class Scenario:
    call_id: str
    consortia: list[Consortium]
    exclusions: list[dict] = field(default_factory=list)  # {name, registration_number, reason}
    conflicts: dict = field(default_factory=dict)  # assessor -> [organisation names]


def _money(value) -> Decimal:
    return Decimal(value).quantize(CENT)


def budget_for(requested: Decimal, rng: random.Random) -> tuple[dict, Decimal]:
    """Annex III lines for an EC request: EC share 75–90%, contingency ≤ 5%, indirect ≤ 7% (all within the caps)."""
    share = Decimal(rng.choice(("0.75", "0.80", "0.85", "0.90")))
    total = (requested / share).quantize(CENT, rounding=ROUND_UP)
    indirect_rate = Decimal(rng.randint(40, 70)) / 1000
    indirect = (total * indirect_rate / (1 + indirect_rate)).quantize(CENT, rounding=ROUND_DOWN)
    direct = total - indirect
    contingency_rate = Decimal(rng.randint(0, 50)) / 1000
    contingency = (direct * contingency_rate / (1 + contingency_rate)).quantize(CENT, rounding=ROUND_DOWN)
    subtotal = direct - contingency
    budget, allotted = {}, Decimal("0.00")
    for heading, low, high in HEADING_SHARES:
        amount = (subtotal * Decimal(rng.randint(low, high)) / 100).quantize(CENT, rounding=ROUND_DOWN)
        budget[heading] = amount
        allotted += amount
    budget["other"] = subtotal - allotted
    budget["contingency"] = contingency
    budget["indirect_costs"] = indirect
    return {k: str(v) for k, v in budget.items()}, total


# what each window's actions aim at: (outcome, its indicators), (output, its indicators); an indicator is
# (code, title, measure, unit, baseline, target) with qualitative values as text
RESULTS = {
    "remittances": (
        (
            "Remittances invested in productive activities in the home region",
            (
                ("OC1.1", "Diaspora investments in local businesses", "unit", "investments", "0", "40"),
                ("OC1.2", "Share of remittance receivers using a savings product", "percentage", None, "10", "30"),
            ),
        ),
        (
            "Migrant entrepreneurs advised on investment",
            (
                ("OP1.1", "Entrepreneurs advised", "unit", "people", "0", "150"),
                (
                    "OP1.2",
                    "Quality of the business plans submitted",
                    "qualitative",
                    None,
                    "Few plans, mostly incomplete",
                    "Complete plans meeting the partner bank's criteria",
                ),
            ),
        ),
    ),
    "migrant_communities": (
        (
            "Migrant communities take part in local development planning",
            (("OC2.1", "Local development plans drawn up with diaspora participation", "unit", "plans", "0", "6"),),
        ),
        (
            "Community members trained",
            (
                ("OP2.1", "Community members trained in project design", "unit", "people", "0", "200"),
                ("OP2.2", "Women among those trained", "percentage", None, "20", "50"),
            ),
        ),
    ),
    "migrant_associations": (
        (
            "Migrant associations manage projects on their own",
            (("OC3.1", "Associations that led a funded project after the action", "unit", "associations", "0", "12"),),
        ),
        (
            "Associations' staff trained in project management",
            (
                ("OP3.1", "Association staff trained", "unit", "people", "0", "80"),
                (
                    "OP3.2",
                    "Quality of the associations' financial reporting",
                    "qualitative",
                    None,
                    "Irregular and incomplete",
                    "Audited yearly accounts",
                ),
            ),
        ),
    ),
    "migrants_rights": (
        (
            "Migrants know and claim their rights",
            (
                (
                    "OC4.1",
                    "Migrants advised on their rights who obtained a document or remedy",
                    "unit",
                    "people",
                    "0",
                    "300",
                ),
            ),
        ),
        (
            "Information and legal advice offered",
            (
                ("OP4.1", "Migrants reached by information sessions", "unit", "people", "0", "2000"),
                ("OP4.2", "Legal advice desks open", "unit", "desks", "1", "5"),
            ),
        ),
    ),
}


def logframe_for(window: str, baseline_year: int, target_date: str, rng: random.Random) -> list[dict]:
    """The window's outcome and output with 2-4 of their indicators; targets vary a little between consortia."""
    (outcome, outcome_indicators), (output, output_indicators) = RESULTS[window]
    chosen_outputs = output_indicators[: rng.choice((1, 2))]

    def indicator(code, title, measure, unit, baseline, target):
        if measure == "unit":
            target = str(max(int(baseline) + 1, round(int(target) * rng.uniform(0.7, 1.3))))
        entry = {
            "code": code,
            "title": title,
            "measure": measure,
            "baseline_value": baseline,
            "baseline_year": baseline_year,
            "target_value": target,
            "target_date": target_date,
            "source_of_verification": "Project records, checked at monitoring visits",
        }
        return {**entry, "unit": unit} if unit else entry

    return [
        {"type": "outcome", "title": outcome, "indicators": [indicator(*i) for i in outcome_indicators]},
        {"type": "output", "title": output, "indicators": [indicator(*i) for i in chosen_outputs]},
    ]


def _requested(rng: random.Random) -> int:
    """EC amounts requested, most consortia asking near the EUR 200,000 ceiling (in steps of EUR 500)."""
    low, high = rng.choices(((150_000, 200_000), (100_000, 150_000), (50_000, 100_000)), (7, 2, 1))[0]
    return rng.randrange(low, high + 1, 500)


def _registration(country: str, rng: random.Random) -> str:
    return f"{country}-{rng.randint(10000, 99999)}-{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}"


def _months_after(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def build(programme: dict, call_id: str, count: int, seed: int, starting: date) -> Scenario:
    """`count` proposals spread over the programme's countries and windows, each with its logframe (baselines
    of the year `starting`, targets on the last day of the action if it starts then); about 3% of the leads are on
    the exclusion list and about 3% of the consortia have no partner in an EU member state."""
    rng = random.Random(seed)
    countries = list(programme["eligible_countries"])
    windows = [w["code"] for w in programme["windows"]]
    consortia: list[Consortium] = []
    for n in range(1, count + 1):
        country = countries[(n - 1) % len(countries)] if n <= len(countries) else rng.choice(countries)
        window = windows[(n - 1) % len(windows)] if n <= len(windows) else rng.choice(windows)
        place = rng.choice(PLACES.get(country, (country,)))
        french = country in FRENCH_SPEAKING
        lead_name = rng.choice(LEAD_PATTERNS_FR if french else LEAD_PATTERNS_EN).format(place=place)
        lead_name = f"{lead_name} ({n:03d})" if any(c.lead["name"] == lead_name for c in consortia) else lead_name
        applicant_type = (
            "local_authority"
            if lead_name.startswith(("Commune", "Municipality"))
            else rng.choice(APPLICANT_TYPES[:2] + APPLICANT_TYPES[3:])
        )
        requested = Decimal(_requested(rng)).quantize(CENT)
        budget, total = budget_for(requested, rng)
        flaw = None
        roll = rng.random()
        if n > len(windows) and roll < 0.03:
            flaw = "excluded"
        elif n > len(windows) and roll < 0.06:
            flaw = "no_eu_partner"
        eu_country, eu_name = rng.choice(EU_PARTNERS)
        lead = {
            "name": lead_name,
            "type": applicant_type,
            "country": country,
            "registration_number": _registration(country, rng),
            "email": f"contact{n:03d}@{country.lower()}-partners.example.org",
            "language": "fr" if french else "en",
            "role": "lead",
        }
        if flaw == "no_eu_partner":
            other = rng.choice([c for c in countries if c != country])
            partner = {
                "name": f"{rng.choice(PLACES.get(other, (other,)))} Diaspora Forum",
                "type": "ngo",
                "country": other,
                "registration_number": _registration(other, rng),
                "email": f"partner{n:03d}@{other.lower()}-forum.example.org",
                "language": "en",
                "role": "co_applicant",
            }
        else:
            partner = {
                "name": eu_name,
                "type": "ngo",
                "country": eu_country,
                "registration_number": _registration(eu_country, rng),
                "email": f"partner{n:03d}@{eu_country.lower()}-ngo.example.org",
                "language": "fr" if eu_country in ("BE", "FR") else "en",
                "role": "co_applicant",
            }
        duration = rng.choice((18, 24, 24, 30, 36))
        payload = {
            "call_id": call_id,
            "idempotency_key": f"demo-{call_id}-{seed}-{n:04d}",
            "window": window,
            "target_country": country,
            "title": rng.choice(TITLES.get(window, ("{place} project",))).format(place=place),
            "summary": f"A {duration}-month action led by {lead_name} with {partner['name']}.",
            "duration_months": duration,
            "applicants": [lead, partner],
            "budget": budget,
            "total_eligible_cost_eur": str(total),
            "ec_amount_requested_eur": str(requested),
            "co_financing_eur": str(total - requested),
            # its own random stream: the logframes leave the rest of the call as it was for a seed
            "logframe": logframe_for(
                window, starting.year, _months_after(starting, duration).isoformat(), random.Random(f"{seed}-{n}")
            ),
        }
        # about half the concept notes reach the threshold (historically ~10% of proposals were funded)
        quality = min(1.0, max(0.05, rng.gauss(0.52, 0.17)))
        consortia.append(Consortium(n, payload, quality, flaw))
    exclusions = [
        {
            "name": c.lead["name"],
            "registration_number": c.lead["registration_number"],
            "reason": "EC central exclusion database (demo)",
        }
        for c in consortia
        if c.flaw == "excluded"
    ]
    return Scenario(call_id, consortia, exclusions)


def criterion_scores(grid: list[dict], quality: float, assessor_bias: float, rng: random.Random) -> dict:
    """Points 1–5 per criterion around the proposal's quality; `grid` is [{code, ...}] of the call's grid."""
    scores = {}
    for criterion in grid:
        raw = 1 + 4 * quality + assessor_bias + rng.gauss(0, 0.45)
        scores[criterion["code"]] = int(min(5, max(1, round(raw))))
    return scores
