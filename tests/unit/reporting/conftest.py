import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # run from anywhere without a root pytest config
    sys.path.insert(0, str(REPO))

from services.reporting.domain.budget_report import (  # noqa: E402
    ExpenditureFact,
    GrantFact,
    ProposalCounts,
    TrancheFact,
)
from tests.support.report_facts import generate_facts, jmdi_programme  # noqa: E402

# The official IATI 2.03 schema and codelists, shipped with the reporting service (STANDARDS_DIR's default).
IATI_SCHEMA_DIR = REPO / "services" / "reporting" / "standards" / "iati-2.03"

D = Decimal


@pytest.fixture(scope="session")
def iati_schema_dir() -> Path:
    if not (IATI_SCHEMA_DIR / "iati-activities-schema.xsd").is_file():
        pytest.fail(f"the IATI 2.03 schema is expected at {IATI_SCHEMA_DIR.resolve()}")
    return IATI_SCHEMA_DIR


@pytest.fixture(scope="session")
def facts():
    return generate_facts(seed=20081201, n_grants=55, n_tranches=140)


@pytest.fixture(scope="session")
def report(facts):
    return facts.report(as_of=date(2011, 6, 30))


@pytest.fixture
def small():
    """Three hand-made grants whose totals are known to the cent."""
    programme = jmdi_programme()
    grants = [
        GrantFact(
            "G1",
            "2008-0001",
            "Remittances for local development in Morocco",
            "remittances",
            "MA",
            "ngo",
            "Association Migration et Développement",
            date(2009, 7, 1),
            D("150000.00"),
            True,
            {"human_resources": D("100000.00"), "travel": D("66666.67")},
        ),
        GrantFact(
            "G2",
            "2008-0002",
            "Rights of migrant workers in the Philippines",
            "migrants_rights",
            "PH",
            "local_authority",
            "Municipality of Naga",
            date(2009, 9, 15),
            D("50000.01"),
            True,
            {"human_resources": D("40000.00"), "indirect_costs": D("3500.00")},
        ),
        GrantFact(
            "G3",
            "2008-0003",
            "Diaspora associations in Senegal",
            "migrant_associations",
            "SN",
            "migrant_association",
            "Union des ressortissants",
            date(2010, 2, 1),
            D("199999.99"),
            False,
            {"other": D("222222.21")},
        ),
    ]
    tranches = [
        TrancheFact("G1", 1, D("96000.00"), date(2009, 8, 1)),
        TrancheFact("G1", 2, D("40000.10"), date(2010, 9, 1)),
        TrancheFact("G2", 1, D("40000.01"), date(2009, 10, 1)),
        TrancheFact("G3", 1, D("0.01"), date(2010, 3, 1)),
    ]
    expenditures = [
        ExpenditureFact("G1", "human_resources", D("70000.00"), date(2010, 8, 1)),
        ExpenditureFact("G1", "travel", D("12345.67"), date(2010, 8, 1)),
        ExpenditureFact("G2", "human_resources", D("1.00"), date(2011, 1, 1)),
    ]
    return programme, grants, tranches, expenditures, ProposalCounts(proposals=547, eligible_proposals=310)
