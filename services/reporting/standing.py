"""Each grant's standing in the budget report of everything recorded, kept as one row (models.GrantStandingRow).

The report's statement computes how each grant stands from seven fact tables (report_sql.AWARDED: the latest
amendment, the closure, the decommitments, the payments, the contract date, the termination) and joins the
accepted expenditure with the counted grants: at 100,000 grants that is more than half of the statement. The report
of everything recorded reads these rows instead; a report as of a date still computes them (a row cannot know a
past date's amendment or payments).

One statement computes the rows, with the report's own AWARDED text and no date: for the grants a batch wrote
(`keep`, FactWriter.flush, under DERIVED_ROWS_LOCK so that every other batch's facts are committed and counted),
for every grant (`compute_all`: the migration, the benchmarks' data set) and over the rebuild's new tables
(`fill_sql`). One statement on every path is what keeps the live rows, the rebuild's and the replay's equal.
PostgreSQL only: on SQLite (`make run`) the report is computed in Python and this table stays empty.
"""

from __future__ import annotations

import re

from sqlalchemy import text

from services.common.values.annex import HEADINGS

from .models import (
    AmendmentRow,
    ClosureRow,
    ContractRow,
    DecommitmentRow,
    GrantPaymentsRow,
    GrantRow,
    GrantStandingRow,
    ReportExpenditureRow,
    TerminationRow,
    TrancheRow,
)
from .report_sql import AWARDED

TABLE = GrantStandingRow.__tablename__
# the fact tables a row is computed from (the tranches through grant_payments), and those a batch writes that
# change a grant's row: each has the grant's id
READS = (GrantRow, AmendmentRow, ClosureRow, DecommitmentRow, TerminationRow, GrantPaymentsRow, ReportExpenditureRow)
CHANGED_BY = (GrantRow, ContractRow, AmendmentRow, ClosureRow, DecommitmentRow, TerminationRow, TrancheRow,
              ReportExpenditureRow)  # fmt: skip

_COLUMNS = tuple(column.name for column in GrantStandingRow.__table__.columns)

# no date, every programme: the report's optional filters folded away as constants
_EVERYTHING = AWARDED.replace("CAST(:as_of AS date)", "CAST(NULL AS date)").replace(
    "CAST(:pid AS varchar)", "CAST(NULL AS varchar)"
)
_ROWS = f"""
WITH paid AS (
    SELECT grant_id, paid AS amount, tranches AS n, tranches > tranche_numbers AS twice
    FROM grant_payments WHERE {{only}}),
{_EVERYTHING},
spending AS (
    SELECT grant_id, {", ".join(f"SUM({h}) AS {h}_spent, COUNT({h}) AS {h}_lines" for h in HEADINGS)}
    FROM report_expenditure_facts WHERE {{only}} GROUP BY grant_id)
INSERT INTO {TABLE} AS kept ({", ".join(f'"{c}"' for c in _COLUMNS)})
SELECT COALESCE(a.grant_id, s.grant_id), a.programme_id, COALESCE(a.listed, false), a."window", a.country,
       a.applicant_type, a.decision_date, a.closure_kind, a.recovery, COALESCE(a.amended, false), a.budget_source,
       COALESCE(a.parts_hold, true), COALESCE(a.gross, 0), COALESCE(a.has_payments, false), COALESCE(a.paid, 0),
       COALESCE(a.n, 0), a.number_twice, COALESCE(a.decommitted, 0), COALESCE(a.decommitting, false),
       COALESCE(a.contracted, false),
       COALESCE(a.terminated, false),
       {", ".join(f"s.{h}_spent" for h in HEADINGS)}, {", ".join(f"COALESCE(s.{h}_lines, 0)" for h in HEADINGS)}
FROM awarded a FULL JOIN spending s ON s.grant_id = a.grant_id"""

_VALUES = [c for c in _COLUMNS if c != "grant_id"]
# a row whose values did not change is not written again: the updates that are written are HOT (fillfactor, no
# indexed column changes), pruned on the page by the next reader without VACUUM
_KEEP = (
    _ROWS.replace("{only}", "grant_id = ANY(CAST(:ids AS varchar[]))")
    + f"""
ON CONFLICT (grant_id) DO UPDATE SET {", ".join(f'"{c}" = EXCLUDED."{c}"' for c in _VALUES)}
WHERE ({", ".join(f'kept."{c}"' for c in _VALUES)}) IS DISTINCT FROM ({", ".join(f'EXCLUDED."{c}"' for c in _VALUES)})"""
)
_ALL = _ROWS.replace("{only}", "true")
_TABLES = re.compile(r"\b(" + "|".join(m.__tablename__ for m in (*READS, GrantStandingRow)) + r")\b")


def keep(session, grant_ids: list[str]) -> None:
    """The rows of `grant_ids` computed again from their facts (upserted; PostgreSQL)."""
    session.execute(text(_KEEP), {"ids": grant_ids})


def compute_all(session) -> None:
    """Every grant's row computed from the facts, the table emptied first (PostgreSQL)."""
    session.execute(text(f"DELETE FROM {TABLE}"))
    session.execute(text(_ALL))


def fill_sql(suffix: str) -> str:
    """The statement filling the rows of every grant into `grant_standing<suffix>` from the fact tables named with
    the same suffix (the rebuild's new tables)."""
    return _TABLES.sub(lambda m: f'"{m.group(1)}{suffix}"', _ALL)
