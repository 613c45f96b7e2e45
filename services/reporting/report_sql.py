"""The EC budget report computed by PostgreSQL: every total and breakdown in one statement, read as tuples.

The rules are those of `queries.report_facts` + `budget_report.build_budget_report` (the reference, and the path
SQLite takes): a grant counts from its award decision date with the award of its latest amendment by then, is
contracted once signed, commits nothing once declined (and is left out when it was declined before any payment),
gives back its decommitments on their dates; tranches count from their value date, expenditure from its
acceptance, requests stop awaiting payment when paid or cancelled. A test builds the same data on both paths and
compares the reports' JSON, CSV and XLSX.

The totals never bring a grant into Python: the counted grants are built once (a materialised CTE) and every
breakdown is a GROUPING SETS or GROUP BY over them, including each heading's EC part (each grant's award spread
over its Annex III headings by the largest-remainder rule, in integer cents, from the budget's JSON with
`json_each_text`). The grant lines are a separate, paged query (`grant_pages`): a report's `grants` is a lazy
sequence that reads them page by page when an export iterates them, so the memory a report holds is one page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.common.storage.types import cents_to_money
from services.common.values.errors import Conflict
from services.common.values.inert import clean_text

from .domain.budget_report import (
    HEADINGS,
    RATE_PLACES,
    ApplicantTypeLine,
    BudgetReport,
    CountryLine,
    Counts,
    DecommitmentFact,
    GrantLine,
    HeadingLine,
    MonthLine,
    Payment,
    Programme,
    ProposalCounts,
    WindowLine,
    YearLine,
)

ZERO = Decimal("0.00")
PAGE_SIZE = 2000
WORK_MEM = "64MB"
Cents = int | Decimal  # whole cents as raw SQL returns them

# Reading as of :as_of (NULL: everything) in :pid (NULL: every programme). Amounts are integer cents.
_AS_OF = "(CAST(:as_of AS date) IS NULL OR {column} <= CAST(:as_of AS date))"


def _as_of(column: str) -> str:
    return _AS_OF.format(column=column)


# Payments as of the date: by grant (what each grant was paid, and whether a tranche number may be there twice: its
# numbers as a 64-bit set with fewer bits than it has tranches) and by value date (a few thousand days, added up by
# month in Python: no date arithmetic on every tranche). Two plain aggregates, not GROUPING SETS over both: the one
# by grant may then be read in grant order (an index) and merged with the grants, the one by day hashes dates.
# A report of everything recorded (no date) reads each grant's payments from its kept row instead (grant_standing).
# Payments of another programme's grants are left out here, as the report leaves them out: subtracted later
# (the rows "not counted"), a live programme of 20,000 grants cost the report a fifth to a third more.
# (`<` or `>`, not `<>`: two ranges of the programme index, nothing to read when there is one programme)
_NOT_OTHERS = """NOT EXISTS (SELECT 1 FROM grant_facts o WHERE o.grant_id = {t}.grant_id
                 AND (o.programme_id < CAST(:pid AS varchar) OR o.programme_id > CAST(:pid AS varchar)))"""
_PAID_AS_OF = f"""
paid AS (
    SELECT grant_id, SUM(amount)::bigint AS amount, COUNT(*) AS n,
           COUNT(*) > bit_count(bit_or(1::bigint << (tranche_number & 63))::bit(64)) AS twice
    FROM tranche_facts WHERE {_as_of("value_date")} AND {_NOT_OTHERS.format(t="tranche_facts")} GROUP BY grant_id)"""
_PAID_BY_DAY = f"""
paid_by_day AS (
    SELECT value_date, SUM(amount)::bigint AS amount, COUNT(*) AS n
    FROM tranche_facts WHERE {_as_of("value_date")} AND {_NOT_OTHERS.format(t="tranche_facts")} GROUP BY value_date)"""

_OF_PID = "(CAST(:pid AS varchar) IS NULL OR g.programme_id = CAST(:pid AS varchar))"

# How each grant stands by the date: `gross` is the award as amended (0 once declined), what it was paid and gave
# back, contracted, terminated, the source of its budget. The grants' rows and the payments by grant are joined
# once, in full: the payments of grants not counted (not known here, or awarded after the date) come out of the
# same join (`listed` false), not from a second pass. `{only}` narrows every source to some grants: the report
# reads them all (true); the upkeep of the kept rows (standing.py) the grants a batch wrote.
AWARDED = f"""
latest AS (
    SELECT DISTINCT ON (grant_id) grant_id, amendment_id, amount,
           json_typeof(budget) = 'object' AND budget::jsonb <> '{{}}'::jsonb AS with_budget
    FROM amendment_facts WHERE {_as_of("effective_on")} AND {{only}}
    ORDER BY grant_id, occurred_at DESC, amendment_id DESC),
closure AS (SELECT grant_id, kind, recovery FROM closure_facts WHERE {_as_of("closed_on")} AND {{only}}),
given_back AS (
    SELECT grant_id, SUM(amount)::bigint AS decommitted FROM decommitment_facts
    WHERE {_as_of("decommitted_on")} AND {{only}} GROUP BY grant_id),
awarded AS (
    SELECT COALESCE(g.grant_id, p.grant_id) AS grant_id, g.programme_id, g.grant_id IS NOT NULL AS listed,
           g."window", g.country, g.applicant_type, g.decision_date, c.kind AS closure_kind, c.recovery,
           l.grant_id IS NOT NULL AS amended,
           CASE WHEN c.kind = 'declined' THEN NULL WHEN l.with_budget THEN l.amendment_id ELSE 'award' END
               AS budget_source,
           -- the EC parts stored with the budget lines hold while the commitment is the source's own amount
           COALESCE(d.decommitted, 0) = 0 AND (COALESCE(l.with_budget, false) OR l.grant_id IS NULL) AS parts_hold,
           CASE WHEN c.kind = 'declined' THEN 0 ELSE COALESCE(l.amount, g.amount, 0) END AS gross,
           p.grant_id IS NOT NULL AS has_payments, COALESCE(p.amount, 0) AS paid, COALESCE(p.n, 0) AS n,
           p.twice AS number_twice,
           COALESCE(d.decommitted, 0) AS decommitted, d.grant_id IS NOT NULL AS decommitting,
           g.contract_signed_on IS NOT NULL AND {_as_of("g.contract_signed_on")} AS contracted,
           tm.grant_id IS NOT NULL AS terminated
    FROM (SELECT * FROM grant_facts g WHERE {_OF_PID} AND {_as_of("g.decision_date")} AND {{only}}) g
    FULL JOIN paid p ON p.grant_id = g.grant_id
    LEFT JOIN latest l ON l.grant_id = g.grant_id
    LEFT JOIN closure c ON c.grant_id = g.grant_id
    LEFT JOIN given_back d ON d.grant_id = g.grant_id
    LEFT JOIN termination_facts tm ON tm.grant_id = g.grant_id AND {_as_of("tm.terminated_on")})"""

# The grants a report counts (`net`: gross less what the grant gave back by then); a grant declined before any
# payment is left out. Narrow rows: every breakdown reads them. As of a date they are computed (AWARDED); the
# report of everything recorded reads them from grant_standing, one row per grant kept by the fact writer.
_GRANT_ROWS = """grant_rows AS {how} (
    SELECT grant_id, listed, "window", country, applicant_type, decision_date, recovery, amended, gross, paid, n,
           number_twice, decommitted, decommitting, gross - decommitted AS net, contracted, terminated, budget_source,
           parts_hold
    FROM {source} WHERE closure_kind IS DISTINCT FROM 'declined' OR has_payments)"""
_STANDING_AS_OF = ",\n".join(
    (_PAID_AS_OF, AWARDED.replace("{only}", "true"), _GRANT_ROWS.format(how="MATERIALIZED", source="awarded"))
)
# kept rows: a grant of the programme, or not known here (payments of no known grant: not counted); rows there
# for expenditure alone (no award, no payment) are only read by `spent`
_OF_PROGRAMME_OR_UNKNOWN = (
    "(CAST(:pid AS varchar) IS NULL OR programme_id = CAST(:pid AS varchar) OR programme_id IS NULL)"
)
# (not materialised: each breakdown scans the kept rows, cheaper than copying 100,000 of them into the CTE first)
_STANDING_RECORDED = _GRANT_ROWS.format(
    how="NOT MATERIALIZED",
    source=f"""(SELECT *, tranches::bigint AS n FROM grant_standing
              WHERE {_OF_PROGRAMME_OR_UNKNOWN} AND (listed OR has_payments)) s""",
)

_COUNTED = """
counted AS NOT MATERIALIZED (SELECT * FROM grant_rows WHERE listed),
not_counted AS NOT MATERIALIZED (SELECT grant_id, n FROM grant_rows WHERE NOT listed),
-- one pass for the counts of the rare cases: the queries looking for them run only when there are some
summary AS (
    SELECT COALESCE(SUM(recovery) FILTER (WHERE listed), 0) AS recovered,
           COALESCE(SUM(net) FILTER (WHERE listed AND contracted), 0) AS contracted,
           COUNT(*) FILTER (WHERE listed AND amended) AS amended,
           COUNT(*) FILTER (WHERE listed AND terminated) AS terminated,
           COUNT(*) FILTER (WHERE listed AND NOT parts_hold) AS recomputed,
           COUNT(*) FILTER (WHERE listed AND (budget_source IS DISTINCT FROM 'award' OR NOT parts_hold))
               AS budget_changes,
           COUNT(*) FILTER (WHERE listed AND decommitting) AS decommitting,
           COUNT(*) FILTER (WHERE listed AND decommitted > gross) AS over_decommitted,
           COUNT(*) FILTER (WHERE listed AND number_twice) AS number_twice,
           COUNT(*) FILTER (WHERE NOT listed) AS not_counted
    FROM grant_rows)"""

# Facts whose grant is of the programme, or not known here at all (reported as unmatched, never dropped).
_OF_PROGRAMME = """(CAST(:pid AS varchar) IS NULL OR NOT EXISTS (SELECT 1 FROM grant_facts o
    WHERE o.grant_id = {t}.grant_id AND o.programme_id <> CAST(:pid AS varchar)))"""


def _each_heading(template: str, joiner: str = ", ") -> str:
    return joiner.join(template.format(h=h) for h in HEADINGS)


# a heading's amount, EC part and count of budgets with it (0 where none has it: the heading is not shown)
_BUDGET_SUMS = "COALESCE(SUM(b.{h}), 0) AS {h}, COALESCE(SUM(b.{h}_ec), 0) AS {h}_ec, COUNT(b.{h}) AS {h}_n"


# accepted expenditure by heading (amount, lines) of the counted grants; lines of grants not counted (unmatched).
# As of a date, from the reports' rows; everything recorded, from the kept rows' sums by grant.
_SPENT_AS_OF = f"""spent AS (
    SELECT {
    _each_heading(
        "SUM(e.{h}) FILTER (WHERE c.grant_id IS NOT NULL) AS {h}, "
        "COUNT(e.{h}) FILTER (WHERE c.grant_id IS NOT NULL) AS {h}_n"
    )
},
           COALESCE(SUM(num_nonnulls({_each_heading("e.{h}")}))
                    FILTER (WHERE c.grant_id IS NULL AND {_OF_PROGRAMME.format(t="e")}), 0) AS unmatched
    FROM report_expenditure_facts e LEFT JOIN counted c ON c.grant_id = e.grant_id
    WHERE {_as_of("e.accepted_on")})"""
_COUNTS_KEPT = "listed AND (closure_kind IS DISTINCT FROM 'declined' OR has_payments)"
_SPENT_RECORDED = f"""spent AS (
    SELECT {
    _each_heading(
        "SUM({h}_spent) FILTER (WHERE " + _COUNTS_KEPT + ") AS {h}, "
        "COALESCE(SUM({h}_lines) FILTER (WHERE " + _COUNTS_KEPT + "), 0) AS {h}_n"
    )
},
           COALESCE(SUM({_each_heading("{h}_lines", " + ")}) FILTER (WHERE NOT ({_COUNTS_KEPT})), 0) AS unmatched
    FROM grant_standing WHERE {_OF_PROGRAMME_OR_UNKNOWN})"""


# Every total and breakdown in one statement; rows (kind, key, a, b, c, d, e, f), the key of the *_day rows a
# date (ISO), added up by month in Python. Budgets and accepted expenditure are read as one row per grant or
# report with a column per heading (budget_facts, report_expenditure_facts), summed, then one row per heading.
_TOTALS = f"""
WITH {{standing}},{_PAID_BY_DAY},{_COUNTED},
recomputed AS (  -- grants committed at another amount than their budget's source: their parts afresh
    SELECT c.grant_id, b.heading, b.position, b.amount, LEAST(c.net, SUM(b.amount) OVER g) AS cents,
           SUM(b.amount) OVER g AS total
    FROM counted c JOIN budget_line_facts b ON b.grant_id = c.grant_id AND b.source = c.budget_source
    WHERE NOT c.parts_hold AND (SELECT recomputed FROM summary) > 0 WINDOW g AS (PARTITION BY c.grant_id)),
ec_parts AS (
    SELECT grant_id, heading, position, amount, cents, total,
           CASE WHEN total > 0 THEN div(cents::numeric * amount, total) ELSE 0 END AS part,
           CASE WHEN total > 0 THEN mod(cents::numeric * amount, total) ELSE 0 END AS remainder
    FROM recomputed),
ec_ranked AS (
    SELECT heading, amount, part, total, cents - SUM(part) OVER grant_lines AS left_over,
           ROW_NUMBER() OVER (grant_lines ORDER BY remainder DESC, position) AS rank
    FROM ec_parts WINDOW grant_lines AS (PARTITION BY grant_id)),
-- the parts stored with the budgets, for grants still committed at their budget's amount: every award budget of
-- the programme, less those of the few grants whose award budget does not count as it is (declined, amended,
-- decommitted, awarded after the date), plus the amendments' budgets that do. No join of 100,000 budgets with the
-- counted grants: one scan of the award budgets, and look-ups by key for the exceptions.
budget_changes AS (
    SELECT grant_id FROM grant_rows WHERE listed AND (budget_source IS DISTINCT FROM 'award' OR NOT parts_hold)
      AND (SELECT budget_changes FROM summary) > 0
    UNION SELECT grant_id FROM closure_facts WHERE kind = 'declined' AND {_as_of("closed_on")}
    UNION SELECT grant_id FROM grant_facts WHERE NOT {_as_of("decision_date")}),
budget_parts AS (
    SELECT 1 AS sign, {_each_heading(_BUDGET_SUMS)}
    FROM budget_facts b WHERE b.source = 'award' AND {_NOT_OTHERS.format(t="b")}
    UNION ALL
    SELECT -1, {_each_heading(_BUDGET_SUMS)}
    FROM budget_facts b WHERE b.source = 'award' AND {_NOT_OTHERS.format(t="b")}
      AND b.grant_id IN (SELECT grant_id FROM budget_changes)
    UNION ALL
    SELECT 1, {_each_heading(_BUDGET_SUMS)}
    FROM grant_rows c JOIN budget_facts b ON b.grant_id = c.grant_id AND b.source = c.budget_source
    WHERE c.listed AND c.parts_hold AND c.budget_source <> 'award' AND (SELECT amended FROM summary) > 0),
budgets AS (
    SELECT {_each_heading("SUM(sign * {h}) AS {h}, SUM(sign * {h}_ec) AS {h}_ec, SUM(sign * {h}_n) AS {h}_n")}
    FROM budget_parts),
{{spent}}
SELECT CASE GROUPING("window", country, applicant_type, decision_date) WHEN 7 THEN 'window' WHEN 11 THEN 'country'
            WHEN 13 THEN 'applicant_type' WHEN 14 THEN 'awarded_day' ELSE 'all' END,
       COALESCE("window", country, applicant_type, decision_date::text), SUM(net), SUM(paid), COUNT(*),
       SUM(decommitted), NULL::bigint, NULL::bigint
FROM counted GROUP BY GROUPING SETS (("window"), (country), (applicant_type), (decision_date), ())
UNION ALL
SELECT 'decommitted_day', d.decommitted_on::text, SUM(d.amount), NULL, NULL, NULL, NULL, NULL
FROM decommitment_facts d JOIN counted c ON c.grant_id = d.grant_id
WHERE {_as_of("d.decommitted_on")} AND (SELECT decommitting FROM summary) > 0 GROUP BY 2
UNION ALL  -- every payment by day, less those of grants not counted (few: no second pass over the tranches)
SELECT 'disbursed_day', value_date::text, amount, n, NULL, NULL, NULL, NULL FROM paid_by_day
UNION ALL
SELECT 'not_counted_day', t.value_date::text, SUM(t.amount), COUNT(*), NULL, NULL, NULL, NULL
FROM tranche_facts t WHERE t.grant_id IN (SELECT grant_id FROM not_counted) AND {_as_of("t.value_date")}
  AND (SELECT not_counted FROM summary) > 0
GROUP BY 2
UNION ALL
SELECT 'heading', v.heading, v.amount, v.ec_part, NULL, NULL, NULL, NULL
FROM budgets, LATERAL (VALUES {_each_heading("('{h}', {h}, {h}_ec, {h}_n)")}) v(heading, amount, ec_part, n)
WHERE v.n > 0
UNION ALL
SELECT 'heading', heading, SUM(amount),
       SUM(part + CASE WHEN total > 0 AND rank <= left_over THEN 1 ELSE 0 END), NULL, NULL, NULL, NULL
FROM ec_ranked GROUP BY heading
UNION ALL
SELECT 'spent', v.heading, v.amount, v.lines, NULL, NULL, NULL, NULL
FROM spent, LATERAL (VALUES {_each_heading("('{h}', {h}, {h}_n)")}) v(heading, amount, lines) WHERE v.lines > 0
UNION ALL
SELECT 'extras', NULL,
       (SELECT COUNT(*) FROM closure_facts x JOIN grant_facts g ON g.grant_id = x.grant_id
        WHERE x.kind = 'declined' AND {_as_of("x.closed_on")} AND {_OF_PID} AND {_as_of("g.decision_date")}),
       s.recovered, s.amended,
       (SELECT COALESCE(SUM(r.amount), 0) FROM payment_requests r JOIN counted c ON c.grant_id = r.grant_id
        WHERE {_as_of("r.requested_on")}
          AND NOT EXISTS (SELECT 1 FROM tranche_facts t JOIN counted k ON k.grant_id = t.grant_id
                          WHERE t.payment_id = r.payment_id AND {_as_of("t.value_date")})
          AND NOT EXISTS (SELECT 1 FROM payment_cancellations x WHERE x.payment_id = r.payment_id
                          AND {_as_of("x.cancelled_on")})),
       CASE WHEN s.not_counted > 0 THEN (SELECT COALESCE(SUM(n), 0) FROM not_counted) ELSE 0 END,
       s.terminated
FROM summary s
UNION ALL
SELECT 'contracted', NULL, contracted, NULL, NULL, NULL, NULL, NULL FROM summary
UNION ALL
SELECT 'unmatched', NULL, (SELECT unmatched FROM spent),
       (SELECT COUNT(*) FROM decommitment_facts d
        WHERE {_as_of("d.decommitted_on")} AND {_OF_PROGRAMME.format(t="d")}
          AND NOT EXISTS (SELECT 1 FROM counted c WHERE c.grant_id = d.grant_id)),
       NULL, NULL, NULL, NULL
UNION ALL
SELECT 'over_decommitted', grant_id, gross, decommitted, NULL, NULL, NULL, NULL
FROM (SELECT grant_id, gross, decommitted FROM counted WHERE decommitted > gross
        AND (SELECT over_decommitted FROM summary) > 0 ORDER BY grant_id LIMIT 1) o
UNION ALL  -- a tranche number twice: looked for only in the grants whose number set is short of their tranches
SELECT 'tranche_twice', grant_id, NULL, NULL, NULL, NULL, NULL, NULL
FROM (SELECT t.grant_id FROM tranche_facts t
      WHERE t.grant_id IN (SELECT grant_id FROM counted WHERE number_twice) AND {_as_of("t.value_date")}
        AND (SELECT number_twice FROM summary) > 0
      GROUP BY t.grant_id, t.tranche_number HAVING COUNT(*) > 1 ORDER BY t.grant_id LIMIT 1) x
"""
# as of a date: each grant's standing computed from the facts (the tranches aggregated by grant)
_TOTALS_AS_OF = _TOTALS.replace("{standing}", _STANDING_AS_OF).replace("{spent}", _SPENT_AS_OF)
# everything recorded: each grant's standing as kept, one row per grant
_TOTALS_RECORDED = _TOTALS.replace("{standing}", _STANDING_RECORDED).replace("{spent}", _SPENT_RECORDED)

# One page of grant lines in the report's order (reference, grant id), after the key (:after_ref, :after_id):
# the programme's grants walked in that order, each one's amendment, closure, payments and decommitments looked
# up by key, until the page is full — a page costs the same wherever it is in the programme.
_GRANT_PAGE = f"""
SELECT g.grant_id, g.reference, g.title, g."window", g.country,
       CASE WHEN c.kind = 'declined' THEN 0 ELSE COALESCE(l.amount, g.amount) END - COALESCE(d.decommitted, 0),
       COALESCE(p.paid, 0), g.lead_organisation, g.applicant_type, g.decision_date,
       g.contract_signed_on IS NOT NULL AND {_as_of("g.contract_signed_on")},
       COALESCE(d.decommitted, 0), c.kind IS NOT NULL AND c.kind <> 'declined',
       EXISTS (SELECT 1 FROM termination_facts tm WHERE tm.grant_id = g.grant_id AND {_as_of("tm.terminated_on")}),
       (SELECT COALESCE(SUM(b.amount), 0) FROM budget_line_facts b WHERE b.grant_id = g.grant_id
        AND b.source = CASE WHEN c.kind = 'declined' THEN NULL WHEN l.with_budget THEN l.amendment_id
                            ELSE 'award' END)
FROM grant_facts g
LEFT JOIN LATERAL (SELECT amendment_id, amount,
                          json_typeof(budget) = 'object' AND budget::jsonb <> '{{}}'::jsonb AS with_budget
                   FROM amendment_facts a WHERE a.grant_id = g.grant_id
                   AND {_as_of("a.effective_on")} ORDER BY occurred_at DESC, amendment_id DESC LIMIT 1) l ON true
LEFT JOIN closure_facts c ON c.grant_id = g.grant_id AND {_as_of("c.closed_on")}
LEFT JOIN LATERAL (SELECT SUM(amount) AS paid, COUNT(*) AS n FROM tranche_facts t
                   WHERE t.grant_id = g.grant_id AND {_as_of("t.value_date")}) p ON true
LEFT JOIN LATERAL (SELECT SUM(amount) AS decommitted FROM decommitment_facts x
                   WHERE x.grant_id = g.grant_id AND {_as_of("x.decommitted_on")}) d ON true
WHERE (CAST(:pid AS varchar) IS NULL OR g.programme_id = CAST(:pid AS varchar)) AND {_as_of("g.decision_date")}
  AND (CAST(:after_ref AS varchar) IS NULL
       OR (g.reference, g.grant_id) > (CAST(:after_ref AS varchar), CAST(:after_id AS varchar)))
  AND (c.kind IS DISTINCT FROM 'declined' OR p.n > 0)
ORDER BY g.reference, g.grant_id
LIMIT :limit
"""

_PAGE_PAYMENTS = f"""
SELECT grant_id, tranche_number, amount, value_date FROM tranche_facts
WHERE grant_id = ANY(:ids) AND {_as_of("value_date")}
ORDER BY grant_id, tranche_number, value_date
"""

_PAGE_DECOMMITMENTS = f"""
SELECT grant_id, amount, decommitted_on FROM decommitment_facts
WHERE grant_id = ANY(:ids) AND {_as_of("decommitted_on")}
ORDER BY grant_id, decommitted_on, decommitment_id
"""


def supported(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _money(cents) -> Decimal:
    return cents_to_money(cents or 0)


def grant_page(
    session: Session,
    programme_id: str | None,
    as_of: date | None,
    after: tuple[str, str] | None,
    limit: int = PAGE_SIZE,
) -> list[GrantLine]:
    """Up to `limit` grant lines after the key (reference, grant id) `after`, in the report's order."""
    params = {
        "pid": programme_id,
        "as_of": as_of,
        "after_ref": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }
    rows = session.execute(text(_GRANT_PAGE), params).all()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    payments: dict[str, list[Payment]] = {}
    for grant_id, number, amount, value_date in session.execute(text(_PAGE_PAYMENTS), {"ids": ids, "as_of": as_of}):
        payments.setdefault(grant_id, []).append(Payment(number, _money(amount), value_date))
    returned: dict[str, list[DecommitmentFact]] = {}
    for grant_id, amount, on in session.execute(text(_PAGE_DECOMMITMENTS), {"ids": ids, "as_of": as_of}):
        returned.setdefault(grant_id, []).append(DecommitmentFact(grant_id, _money(amount), on))
    lines = []
    for (
        grant_id,
        reference,
        title,
        window,
        country,
        net,
        paid,
        lead,
        applicant_type,
        awarded_at,
        contracted,
        decommitted,
        closed,
        terminated,
        eligible,
    ) in rows:
        net, paid = _money(net), _money(paid)
        lines.append(
            GrantLine(
                grant_id,
                reference,
                title,
                window,
                country,
                net,
                paid,
                net - paid,
                lead,
                applicant_type,
                awarded_at,
                contracted,
                tuple(payments.get(grant_id, ())),
                _money(decommitted),
                tuple(sorted(returned.get(grant_id, ()), key=lambda d: d.decommitted_on)),
                closed,
                total_eligible=_money(eligible),
                terminated=terminated,
            )
        )
    return lines


class GrantPages:
    """The report's grant lines, read from the database a page at a time whenever they are iterated (the
    session must still be open): what a file export streams through."""

    def __init__(
        self, session: Session, programme_id: str | None, as_of: date | None, count: int, page_size: int = PAGE_SIZE
    ):
        self.session, self.programme_id, self.as_of, self.count = session, programme_id, as_of, count
        self.page_size = page_size

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[GrantLine]:
        after = None
        while True:
            page = grant_page(self.session, self.programme_id, self.as_of, after, self.page_size)
            yield from page
            if len(page) < self.page_size:
                return
            after = (page[-1].reference, page[-1].grant_id)


@dataclass
class SqlExtras:
    """What only the read model knows, next to the report (as queries.ReportFacts carries it)."""

    pipeline: dict
    extras: dict


def _heading_order(keys) -> list[str]:
    known = [h for h in HEADINGS if h in keys]
    return known + sorted(k for k in keys if k not in HEADINGS)


def budget_report(
    session: Session,
    prog: Programme,
    programme_id: str | None,
    as_of: date | None,
    counts: ProposalCounts,
    pipeline: dict,
) -> tuple[BudgetReport, SqlExtras]:
    """The report (its grants a lazy GrantPages) and the read model's extras, from one statement.
    Raises Conflict("report.inconsistent_facts") where the Python model raises ReportError."""
    groups: dict[str, dict] = {"window": {}, "country": {}, "applicant_type": {}}
    overall, contracted = (0, 0, 0, 0), 0
    # whole cents by month (YYYY-MM) or by heading; a SUM over bigint cents arrives as numeric (a Decimal)
    awarded_m: dict[str, Cents] = {}
    decommitted_m: dict[str, Cents] = {}
    budgeted: dict[str, Cents] = {}
    ec_part: dict[str, Cents] = {}
    spent: dict[str, Cents] = {}
    paid_by_day: dict[str, list] = {}
    extras_row = unmatched_row = None
    awarded_days: list[str] = []
    # this transaction only: hash the fact tables in memory, not on disk; and no JIT, whose compilation of a
    # statement this size costs seconds (its cost estimate is high because the as-of filters are optional); one
    # round trip for both. Hash joins stay allowed: merging in grant order along the indexes is cheaper only while
    # the statistics are fresh, and on stale ones it was half as slow again (docs/performance.md, P4)
    session.execute(
        text("SELECT set_config('work_mem', :work_mem, true), set_config('jit', 'off', true)"),
        {"work_mem": WORK_MEM},
    )
    for kind, key, a, b, c, d, e, f in session.execute(
        text(_TOTALS_RECORDED if as_of is None else _TOTALS_AS_OF), {"pid": programme_id, "as_of": as_of}
    ):
        if kind in groups:
            groups[kind][key] = (a, b, c, d)
        elif kind == "all":
            overall = (a or 0, b or 0, c or 0, d or 0)
        elif kind == "contracted":
            contracted = a
        elif kind == "awarded_day":  # the awards as amended, by decision date: net + decommitted
            awarded_m[key[:7]] = awarded_m.get(key[:7], 0) + a + d
            awarded_days.append(key)
        elif kind == "decommitted_day":
            decommitted_m[key[:7]] = decommitted_m.get(key[:7], 0) + a
        elif kind in ("disbursed_day", "not_counted_day"):  # every payment, less those not counted
            sign = 1 if kind == "disbursed_day" else -1
            paid = paid_by_day.setdefault(key, [0, 0])
            paid[0] += sign * a
            paid[1] += sign * b
        elif kind == "heading":  # the parts stored with the budgets, then those recomputed
            budgeted[key], ec_part[key] = budgeted.get(key, 0) + a, ec_part.get(key, 0) + b
        elif kind == "spent":
            spent[key] = a
        elif kind == "extras":
            extras_row = (a, b, c, d, e, f)
        elif kind == "unmatched":
            unmatched_row = (a, b)
        elif kind == "over_decommitted":
            raise Conflict(
                "report.inconsistent_facts", f"grant {key} decommitted {_money(b)} of a {_money(a)} commitment"
            )
        elif kind == "tranche_twice":
            raise Conflict("report.inconsistent_facts", f"a tranche of grant {key} appears twice")
    paid_days = [day for day, (_amount, count) in paid_by_day.items() if count]  # of the counted grants
    disbursed_m: dict[str, Cents] = {}
    for day in paid_days:
        disbursed_m[day[:7]] = disbursed_m.get(day[:7], 0) + paid_by_day[day][0]
    first_fact = min(awarded_days + paid_days, default=None)  # ISO dates: their order is the days'

    net, _paid, n_grants, decommitted = overall
    committed, disbursed = _money(net), _money(sum(disbursed_m.values()))
    windows = {code: (clean_text(name), allocation) for code, (name, allocation) in prog.windows.items()}
    window_lines = [
        WindowLine(code, name, allocation, *_group(groups["window"].get(code)))
        for code, (name, allocation) in windows.items()
    ]
    window_lines += [
        WindowLine(code, code, ZERO, *_group(values))
        for code, values in groups["window"].items()
        if code not in windows
    ]
    committed_m = {m: _money(v) for m, v in awarded_m.items()}
    for m, v in decommitted_m.items():
        committed_m[m] = committed_m.get(m, ZERO) - _money(v)
    months = sorted(set(committed_m) | set(disbursed_m))
    month_lines = tuple(
        MonthLine(m, committed_m.get(m, ZERO), _money(disbursed_m.get(m)), _money(decommitted_m.get(m))) for m in months
    )
    years: dict[int, list] = {}
    for line in month_lines:
        acc = years.setdefault(int(line.month[:4]), [ZERO, ZERO, ZERO])
        acc[0] += line.committed
        acc[1] += line.disbursed
        acc[2] += line.decommitted
    headings = _heading_order(set(budgeted) | set(spent))
    rate = (disbursed / committed).quantize(RATE_PLACES, rounding=ROUND_HALF_UP) if committed else Decimal("0.0000")
    declined, recovered, amended, unpaid, unmatched_tranches, terminated = extras_row or (0, 0, 0, 0, 0, 0)
    report = BudgetReport(
        programme_id=prog.id,
        programme_name=clean_text(prog.name),
        budget_line=clean_text(prog.budget_line),
        currency=prog.currency,
        as_of=as_of,
        envelope=prog.envelope,
        committed=committed,
        contracted=_money(contracted),
        disbursed=disbursed,
        remaining=prog.envelope - committed,
        absorption_rate=rate,
        by_window=tuple(window_lines),
        by_country=tuple(CountryLine(k, *_group(v)) for k, v in sorted(groups["country"].items())),
        by_year=tuple(YearLine(y, *acc) for y, acc in sorted(years.items())),
        by_month=month_lines,
        by_applicant_type=tuple(ApplicantTypeLine(k, *_group(v)) for k, v in sorted(groups["applicant_type"].items())),
        by_heading=tuple(
            HeadingLine(h, _money(budgeted.get(h)), _money(spent.get(h)), _money(ec_part.get(h))) for h in headings
        ),
        counts=Counts(counts.proposals, counts.eligible_proposals, int(n_grants)),
        grants=GrantPages(session, programme_id, as_of, int(n_grants)),
        reported_expenditure=_money(sum(spent.values())),
        decommitted=_money(decommitted),
        programme_start=prog.period_start,
        programme_end=prog.period_end,
        first_fact=date.fromisoformat(first_fact) if first_fact is not None else None,
    )
    extras = {
        "recovered_eur": _money(recovered),
        "payments_requested_unpaid_eur": _money(unpaid),
        "declined_grants": int(declined),
        "terminated_grants": int(terminated),
        "amendments": int(amended),
        "unmatched": {
            "tranches": int(unmatched_tranches),
            "expenditures": int(unmatched_row[0]) if unmatched_row else 0,
            "decommitments": int(unmatched_row[1]) if unmatched_row else 0,
        },
    }
    return report, SqlExtras(pipeline, extras)


def _group(values) -> tuple:
    """(committed, disbursed, grants, decommitted) of a breakdown line."""
    if values is None:
        return ZERO, ZERO, 0, ZERO
    net, paid, count, decommitted = values
    return _money(net), _money(paid), int(count), _money(decommitted)
