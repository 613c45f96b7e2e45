"""The P4 anchor: the EC budget totals written by hand as one SQL statement over reporting's tables.

Committed (the latest amendment's amount less what the grant decommitted, nothing for a declined grant), disbursed and the number of grants,
by window, by country and overall, as of a date. The one place to adapt when the reporting tables change;
money columns are integer cents.
"""

import time

TOTALS_SQL = """
WITH latest_amendment AS (
    SELECT DISTINCT ON (grant_id) grant_id, amount
    FROM amendment_facts WHERE effective_on <= %(as_of)s
    ORDER BY grant_id, occurred_at DESC, amendment_id DESC
), paid AS (
    SELECT grant_id, sum(amount) AS paid
    FROM tranche_facts WHERE value_date <= %(as_of)s
    GROUP BY grant_id
), given_back AS (
    SELECT grant_id, sum(amount) AS decommitted
    FROM decommitment_facts WHERE decommitted_on <= %(as_of)s
    GROUP BY grant_id
), grants AS (
    SELECT g."window", g.country,
           CASE WHEN c.kind = 'declined' THEN 0
                ELSE coalesce(a.amount, g.amount) - coalesce(d.decommitted, 0) END AS committed,
           coalesce(p.paid, 0) AS paid
    FROM grant_facts g
    LEFT JOIN latest_amendment a ON a.grant_id = g.grant_id
    LEFT JOIN paid p ON p.grant_id = g.grant_id
    LEFT JOIN given_back d ON d.grant_id = g.grant_id
    LEFT JOIN closure_facts c ON c.grant_id = g.grant_id AND c.closed_on <= %(as_of)s
    WHERE g.programme_id = %(programme_id)s AND g.decision_date <= %(as_of)s
)
SELECT "window", country, sum(committed) AS committed_cents, sum(paid) AS disbursed_cents, count(*) AS grants
FROM grants
GROUP BY GROUPING SETS (("window"), (country), ())
"""


def totals(conn, programme_id: str, as_of) -> tuple[float, dict]:
    """Run the statement once on an open psycopg2 connection (as a service's pooled one would be);
    returns (seconds, {"overall" | "window:<code>" | "country:<code>": (committed cents, paid cents, grants)})."""
    with conn.cursor() as cur:
        started = time.perf_counter()
        cur.execute(TOTALS_SQL, {"programme_id": programme_id, "as_of": as_of})
        rows = cur.fetchall()
        elapsed = time.perf_counter() - started
    conn.rollback()
    result = {}
    for window, country, committed, disbursed, grants in rows:
        key = f"window:{window}" if window else f"country:{country}" if country else "overall"
        result[key] = (int(committed), int(disbursed), int(grants))
    return elapsed, result


def cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"
