"""The rebuild of reporting's projections on PostgreSQL, set-based: one `INSERT ... SELECT` per fact table over the
event archive, into new tables that replace the live ones at the end.

Each statement computes exactly the rows projections.py's projector gives for its events (the Python replay is the
reference, and the path SQLite takes): the bodies read as jsonb, money as exact numeric turned into the cents the
Money columns hold, a date of an aware date-time as the date in its own offset (what Python's `.date()` gives),
"the first row of a key wins" as DISTINCT ON (key) ordered by arrival (seq, then the row's place in its event).
A budget's headings keep the order of the JSON text, which jsonb forgets: budget lines and budget maps read the
body as json. Parsing the bodies is most of the work: the event types more than one statement reads (grant_awarded
feeds grants and budget lines, report_accepted reports and expenditure, ...) are parsed once per rebuild into
temporary tables (STAGED_EVENTS, one a type) the statements read; the others are parsed by the one statement reading
them. Rows derived from events that several fact tables read (DERIVED: each budget's lines with their EC parts, for
budget lines and budget rows) are computed once per rebuild into a temporary table too.

Build and swap, so that live events wait seconds, not the whole rebuild:
1. a short transaction locks the archive (it waits for the batches being archived to commit) and reads its last
   seq, the snapshot: every event up to it is committed, every later one will have a higher seq;
2. without any lock on the archive, the new tables are filled from the events up to the snapshot, indexed and
   analysed, while live events keep being archived and projected onto the old tables. PostgreSQL runs no
   INSERT ... SELECT with parallel workers, so the statements are shared among BUILDERS connections at once (those
   reading the same staged events together), each committing its new tables under their build names; a build that
   fails or died leaves such tables, which the next step of a failure, or the next rebuild, drops; then the
   grants' standing rows, derived from several of the new fact tables (standing.py), from those;
3. then, in the same transaction, the archive is locked (live batches wait), the old tables are dropped, the new
   ones renamed in their place (indexes and constraints under their own names), and the few events archived after
   the snapshot are projected by the Python projectors onto them; the commit lets the waiting batches go on. A
   report still reading the old tables does not hold the batches back longer than a couple of seconds: the locks
   are taken again later (_lock_for_the_swap).
Renaming is instant whatever the size, where copying the new rows into the old tables would hold the lock for as
long as the build. The tail and the build are disjoint by seq and every event is in one of them; an event after
the commit is archived and projected onto the new tables by the live consumer: none is applied twice or missed.
"""

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import String, create_engine, text
from sqlalchemy.pool import NullPool
from sqlalchemy.exc import OperationalError

from services.common.values.annex import HEADINGS

from .models import (
    PROJECTION_TABLES,
    AmendmentRow,
    ArchivedEvent,
    Base,
    BudgetLineRow,
    BudgetRow,
    CallClosureRow,
    CallRow,
    ClosureRow,
    ContractRow,
    DecommitmentRow,
    ExpenditureLineRow,
    ExpenditureRow,
    GrantPaymentsRow,
    GrantReportRow,
    GrantRow,
    GrantStandingRow,
    IndicatorResultRow,
    PaymentCancellationRow,
    PaymentRequestRow,
    ProgrammeRow,
    ProposalOutcomeRow,
    ProposalRow,
    ReportExpenditureRow,
    TerminationRow,
    TrancheRow,
    WindowRow,
)
from . import standing
from .projections import AWARD, replay_archive

SHADOW = "__rebuild"  # the new tables and indexes, until they take the old ones' names
ARCHIVE = ArchivedEvent.__tablename__
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's lock_not_available: lock_timeout ran out
REBUILD_LOCK = 0x4A4D44490001  # advisory lock id: one rebuild at a time (their new tables share names)


def supported(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- the SQL of each fact table ----------------------------------------------------------------------------------


def _money(expr: str) -> str:
    """EUR in a Money column: integer cents (an amount on the wire has at most two places, exactly)."""
    return f"(({expr})::numeric * 100)::bigint"


def _day(expr: str) -> str:
    """The date of an aware ISO date-time in its own offset, as Python's datetime.date() gives it: a cast to a
    timestamp without time zone keeps the wall clock and drops the offset."""
    return f"(({expr})::timestamp)::date"


def _money_map(json_map: str) -> str:
    """projections._money_map in SQL: heading -> amount as a string with two places, in the budget's order."""
    return (
        f"(SELECT COALESCE(json_object_agg(m.key, round(m.value::numeric, 2)::text ORDER BY m.ord), '{{}}')"
        f" FROM json_each_text({json_map}) WITH ORDINALITY AS m(key, value, ord))"
    )


def _ts(expr: str) -> str:
    return f"({expr})::timestamptz"


def _by_heading(value_of, suffix: str = "") -> str:
    """A column per Annex III heading (budget_facts, report_expenditure_facts): `value_of(heading) AS heading`."""
    return ", ".join(f'{value_of(h)} AS "{h}{suffix}"' for h in HEADINGS)


@dataclass(frozen=True)
class FactSql:
    """How one fact table is computed: `rows` selects every column of the table by name, plus `seq` and `sub`
    (the row's place in its event's projection), from the events of `event_types` up to :upto (as `e`, read where
    `rows` names them with _events); the first row of a `key` in that order wins. `unique`: the rows cannot repeat
    a key (one row per event, whose id the archive holds once, or per key of a jsonb object), so none is sorted
    away."""

    model: type[Base]
    event_types: tuple[str, ...]
    key: tuple[str, ...]
    rows: str
    unique: bool = False

    def insert(self, table: str, staged: frozenset[str] = frozenset()) -> str:
        """The statement filling `table`; the events of the `staged` types, and the `staged` derived rows
        (DERIVED), are read from their temporary tables (_staged_table)."""
        cols = ", ".join(f'"{c.name}"' for c in self.model.__table__.columns)
        key = ", ".join(self._sort_key(c) for c in self.key)
        rows = _resolve(self.rows, staged)
        if self.unique:  # sorted all the same: the primary key is then built from rows in its order
            return f"INSERT INTO {table} ({cols}) SELECT {cols} FROM ({rows}) AS r ORDER BY {key}"
        return (
            f"INSERT INTO {table} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM ({rows}) AS r "
            f"ORDER BY {key}, seq, sub"
        )

    def _sort_key(self, column: str) -> str:
        # the keys are sorted to find their first rows, not for their order: byte order groups text keys as the
        # database's collation does (deterministic: equal strings are equal bytes) and sorts several times faster
        text_key = isinstance(self.model.__table__.columns[column].type, String)
        return f'"{column}" COLLATE "C"' if text_key else f'"{column}"'


def _fact(
    model: type[Base], event_types: str | tuple[str, ...], key: tuple[str, ...], rows: str, unique: bool = False
) -> FactSql:
    """`rows` reads `{e}`: the events as (seq, event_id, occurred_at, d: the data as jsonb, at: the envelope's
    occurred_at as written, budget: the data's budget as json for the BUDGETED types)."""
    types = (event_types,) if isinstance(event_types, str) else event_types
    return FactSql(model, types, key, rows.replace("{e}", _events(types)), unique)


def _with_contract_date(model: type[Base], rows: str) -> FactSql:
    """The grants' rows (`rows` reads `{e}`: the grant_awarded events), next to `c`: the signing date of each
    grant's first contract_signed, whether it came before or after the award (models.COPIED_COLUMNS)."""
    signed_on = _day("d->>'signed_at'")
    first_contracts = (
        f"(SELECT DISTINCT ON (d->>'grant_id') d->>'grant_id' AS grant_id, {signed_on} AS signed_on "
        f"FROM {_events(('contract_signed',))} ORDER BY d->>'grant_id', seq) AS c"
    )
    events = f"{_events(('grant_awarded',))} LEFT JOIN {first_contracts} ON c.grant_id = e.d->>'grant_id'"
    return FactSql(model, ("grant_awarded", "contract_signed"), ("grant_id",), rows.replace("{e}", events))


BUDGETED = ("grant_awarded", "grant_amended")  # the types whose budget is read as json (its headings' order)
STAGED_EVENTS = "rebuild_events"  # the events read by more than one statement, parsed once per rebuild, a table a type
_SOURCE = re.compile(r"\{([a-z_]+): ([^}]*)\}")  # where a fact's SQL reads events or derived rows
_TYPE = re.compile(r"'([a-z_]+)'")


def _events(event_types: tuple[str, ...]) -> str:
    """Where a fact's SQL reads the events of `event_types`: resolved by FactSql.insert (_events_from)."""
    return "{events: " + ", ".join(f"'{t}'" for t in event_types) + "}"


def _budget_lines(event_types: tuple[str, ...]) -> str:
    """Where a fact's SQL reads the budget lines of each event of `event_types` (DERIVED["budget_lines"])."""
    return "{budget_lines: " + ", ".join(f"'{t}'" for t in event_types) + "}"


def _resolve(sql: str, staged: frozenset[str]) -> str:
    return _SOURCE.sub(lambda m: _source_from(m.group(1), tuple(_TYPE.findall(m.group(2))), staged), sql)


def _source_from(name: str, event_types: tuple[str, ...], staged: frozenset[str]) -> str:
    if name == "events":
        return _events_from(event_types, staged)
    types, sql = DERIVED[name]
    assert set(event_types) == set(types), (name, event_types)
    if name in staged:
        return f"{_staged_table(name)} AS {name}"
    return f"({_derived(name, staged)}) AS {name}"


def _derived(name: str, staged: frozenset[str]) -> str:
    types, sql = DERIVED[name]
    return _resolve(sql.replace("{e}", _events(types)), staged)


def _staged_events(event_type: str) -> str:
    """A table of one type's events: a statement reads only its own types' bodies, not every staged one."""
    return f"{STAGED_EVENTS}_{event_type}"


def _staged_table(name: str) -> str:
    return f"rebuild_{name}"


def _parsed(event_types: tuple[str, ...]) -> str:
    """The archive's events of `event_types` up to :upto, each body parsed once: (seq, event_id, event_type,
    occurred_at, d, at, budget). OFFSET 0 keeps the subquery apart: the body is cast to jsonb once, not once per
    field read."""
    types = ", ".join(f"'{t}'" for t in event_types)
    budgeted = ", ".join(f"'{t}'" for t in BUDGETED)
    return (
        f"SELECT seq, event_id, event_type, occurred_at, b->'data' AS d, b->>'occurred_at' AS at, "
        f"CASE WHEN event_type IN ({budgeted}) THEN json_extract_path(body, 'data', 'budget') END AS budget "
        f"FROM (SELECT seq, event_id, event_type, occurred_at, body, body::jsonb AS b FROM {ARCHIVE} "
        f"WHERE event_type IN ({types}) AND seq <= :upto OFFSET 0) AS a"
    )


def _events_from(event_types: tuple[str, ...], staged: frozenset[str]) -> str:
    if staged.issuperset(event_types):
        return "(" + " UNION ALL ".join(f"SELECT * FROM {_staged_events(t)}" for t in event_types) + ") AS e"
    return f"({_parsed(event_types)} OFFSET 0) AS e"


def _outcome(
    event_type: str,
    kind: str,
    outcome: str,
    on: str,
    score: str = "NULL",
    proposal_id: str = "d->>'proposal_id'",
    sub: str = "0",
    elements: str = "",
) -> str:
    """The proposal_outcomes rows of one event type (projections._outcome)."""
    return (
        f"SELECT event_id, {proposal_id} AS proposal_id, d->>'call_id' AS call_id, '{kind}' AS kind, "
        f"{outcome} AS outcome, ({score})::numeric AS score, occurred_at, {on} AS decided_on, seq, {sub} AS sub "
        f"FROM {_events((event_type,))} {elements}"
    )


_RANKED = """CROSS JOIN LATERAL (
    SELECT l.list, l.n, r.value AS ranked, r.ord FROM (VALUES ('main', 1), ('reserve', 2)) AS l(list, n)
    CROSS JOIN LATERAL jsonb_array_elements(d->l.list) WITH ORDINALITY AS r(value, ord)) AS k"""
_EXCLUDED = "CROSS JOIN LATERAL jsonb_array_elements_text(d->'excluded') WITH ORDINALITY AS x(proposal_id, ord)"

_OUTCOMES = " UNION ALL ".join(
    [
        _outcome("proposal_withdrawn", "withdrawn", "'withdrawn'", _day("d->>'withdrawn_at'")),
        _outcome("proposal_screened", "screened", "d->>'outcome'", _day("at")),
        _outcome(
            "proposal_evaluated",
            "evaluated",
            "(d->>'stage') || ':' || CASE WHEN (d->>'passed')::boolean THEN 'passed' ELSE 'failed' END",
            _day("at"),
            score="d->>'score'",
        ),
        # a ranking's lists in the projector's order: main, reserve, then the excluded
        _outcome(
            "ranking_published",
            "ranked",
            "k.list",
            _day("d->>'published_at'"),
            score="k.ranked->>'score'",
            proposal_id="k.ranked->>'proposal_id'",
            sub="k.n * 1000000 + k.ord",
            elements=_RANKED,
        ),
        _outcome(
            "ranking_published",
            "ranked",
            "'excluded'",
            _day("d->>'published_at'"),
            proposal_id="x.proposal_id",
            sub="3000000 + x.ord",
            elements=_EXCLUDED,
        ),
        _outcome("proposal_rejected", "rejected", "'rejected'", _day("at")),
    ]
)

# budget_report.budget_lines in SQL, each event's lines (a grant awarded twice: each event's lines, the first ones
# win): integer cents, the EC's part of each heading by the largest remainders, ties in the budget's order. The window
# functions run over one event's headings (LATERAL), a few rows each; what is the event's (its grant, source and
# amount) is read from its data once (OFFSET 0), not once per heading. Parts in bigint where share x cents cannot leave
# its range (|both| <= _SAFE), else in numeric: the same integers, bigint's arithmetic is faster. Staged once per
# rebuild (DERIVED): budget lines and budget rows both read them (one flat sort of every line by event and remainder
# instead of the per-event windows was slower).
_SAFE = 3_037_000_499  # floor(sqrt(2**63 - 1))


def _share_of_line(op: str, function: str) -> str:
    return (
        f"CASE WHEN total <= 0 THEN 0 WHEN total <= {_SAFE} AND abs(share) <= {_SAFE} AND abs(cents) <= {_SAFE} "
        f"THEN share * cents {op} total::bigint ELSE {function}(share::numeric * cents, total)::bigint END"
    )


_BUDGET_LINES = f"""
SELECT seq, grant_id, source, l.heading, l.position, l.cents AS amount, l.ec_part
FROM (SELECT seq, d->>'grant_id' AS grant_id, COALESCE(d->>'amendment_id', '{AWARD}') AS source,
             {_money("d->>'amount_eur'")} AS amount, budget
      FROM {{e}} WHERE json_typeof(budget) = 'object' OFFSET 0) AS g
CROSS JOIN LATERAL (
    SELECT heading, position, cents,
           part + CASE WHEN total > 0 AND row_number() OVER (ORDER BY remainder DESC, position)
                                          <= share - sum(part) OVER () THEN 1 ELSE 0 END AS ec_part
    FROM (SELECT *, {_share_of_line("/", "div")} AS part, {_share_of_line("%", "mod")} AS remainder
          FROM (SELECT *, LEAST(amount, total)::bigint AS share
                FROM (SELECT h.key AS heading, h.ord::int AS position, trunc(h.value::numeric * 100)::bigint AS cents,
                             sum(trunc(h.value::numeric * 100)) OVER () AS total
                      FROM json_each_text(budget) WITH ORDINALITY AS h(key, value, ord) OFFSET 0) AS headings
                OFFSET 0) AS shared
          OFFSET 0) AS parts
    ) AS l"""

# budget_report.budget_fact in SQL: one event's budget lines side by side, a column per heading (None where the
# budget has no such heading); the first event of a (grant, source) wins, as for its lines
_BUDGET_ROWS = (
    f"SELECT grant_id, source, {_by_heading(lambda h: f'MAX(CASE WHEN heading = {h!r} THEN amount END)')}, "
    f"{_by_heading(lambda h: f'MAX(CASE WHEN heading = {h!r} THEN ec_part END)', '_ec')}, seq, 0 AS sub "
    f"FROM {_budget_lines(BUDGETED)} GROUP BY seq, grant_id, source"
)

_REPORT_LINES = """CROSS JOIN LATERAL jsonb_array_elements(
    CASE jsonb_typeof(d->'lines') WHEN 'array' THEN d->'lines' ELSE '[]' END) WITH ORDINALITY AS l(line, n)"""

FACTS = (
    _fact(
        ProgrammeRow,
        "call_opened",
        ("programme_id",),
        f"""
        SELECT d->>'programme_id' AS programme_id, d->>'programme_name' AS name,
               {_money("d->>'envelope_eur'")} AS envelope, (d->>'programme_start')::date AS period_start,
               (d->>'programme_end')::date AS period_end, seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        CallRow,
        "call_opened",
        ("call_id",),
        f"""
        SELECT d->>'call_id' AS call_id, d->>'programme_id' AS programme_id, d->>'title' AS title,
               d->>'rule_profile' AS rule_profile, {_ts("d->>'deadline'")} AS deadline, occurred_at AS opened_at,
               seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        WindowRow,
        "call_opened",
        ("call_id", "window"),
        f"""
        SELECT d->>'call_id' AS call_id, w.value->>'window' AS "window", d->>'programme_id' AS programme_id,
               COALESCE(NULLIF(w.value->>'name', ''), w.value->>'window') AS name,
               {_money("w.value->>'allocation_eur'")} AS allocation, (w.ord - 1)::int AS position, seq, w.ord AS sub
        FROM {{e}} CROSS JOIN LATERAL jsonb_array_elements(d->'windows') WITH ORDINALITY AS w(value, ord)""",
    ),
    _fact(
        CallClosureRow,
        "call_closed",
        ("call_id",),
        f"""
        SELECT d->>'call_id' AS call_id, {_ts("d->>'closed_at'")} AS closed_at, (d->>'proposals')::int AS proposals,
               seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        ProposalRow,
        "proposal_submitted",
        ("proposal_id",),
        f"""
        SELECT d->>'proposal_id' AS proposal_id, d->>'reference' AS reference, d->>'call_id' AS call_id,
               d->>'programme_id' AS programme_id, d->>'window' AS "window", upper(d->>'target_country') AS country,
               d->>'applicant_type' AS applicant_type, {_money("d->>'ec_amount_requested_eur'")} AS requested,
               {_day("d->>'submitted_at'")} AS submitted_on, seq, 0 AS sub FROM {{e}}""",
    ),
    FactSql(
        ProposalOutcomeRow,
        ("proposal_withdrawn", "proposal_screened", "proposal_evaluated", "ranking_published", "proposal_rejected"),
        ("event_id", "proposal_id"),
        _OUTCOMES,
    ),
    _with_contract_date(
        GrantRow,
        f"""
        SELECT d->>'grant_id' AS grant_id, d->>'proposal_id' AS proposal_id, d->>'programme_id' AS programme_id,
               d->>'reference' AS reference, d->>'title' AS title, d->>'call_id' AS call_id,
               d->>'window' AS "window", upper(d->>'country') AS country, d->>'applicant_type' AS applicant_type,
               d->>'lead_organisation' AS lead_organisation, {_money("d->>'amount_eur'")} AS amount,
               {_money_map("budget")} AS budget, d->>'decision_reference' AS decision_reference,
               (d->>'decision_date')::date AS decision_date, {_ts("d->>'awarded_at'")} AS awarded_at,
               c.signed_on AS contract_signed_on,
               seq, 0 AS sub FROM {{e}}""",
    ),
    FactSql(
        BudgetLineRow,
        BUDGETED,
        ("grant_id", "source", "heading"),
        f"SELECT grant_id, source, heading, position, amount, ec_part, seq, position AS sub "
        f"FROM {_budget_lines(BUDGETED)}",
    ),
    FactSql(BudgetRow, BUDGETED, ("grant_id", "source"), _BUDGET_ROWS),
    _fact(
        ContractRow,
        "contract_signed",
        ("grant_id",),
        f"""
        SELECT d->>'grant_id' AS grant_id, {_money("d->>'amount_eur'")} AS amount,
               (d->>'start_date')::date AS start_date, (d->>'end_date')::date AS end_date,
               (d->>'duration_months')::int AS duration_months, {_day("d->>'signed_at'")} AS signed_on,
               seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        AmendmentRow,
        "grant_amended",
        ("amendment_id",),
        f"""
        SELECT d->>'amendment_id' AS amendment_id, d->>'grant_id' AS grant_id, d->>'kind' AS kind,
               {_money("d->>'amount_eur'")} AS amount, (d->>'duration_months')::int AS duration_months,
               {_money_map("budget")} AS budget, occurred_at, {_day("at")} AS effective_on,
               seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        PaymentRequestRow,
        "payment_requested",
        ("payment_id",),
        f"""
        SELECT d->>'payment_id' AS payment_id, d->>'grant_id' AS grant_id,
               (d->>'tranche_number')::int AS tranche_number, {_money("d->>'amount_eur'")} AS amount,
               {_day("d->>'requested_at'")} AS requested_on, seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        PaymentCancellationRow,
        "payment_cancelled",
        ("payment_id",),
        f"""
        SELECT d->>'payment_id' AS payment_id, d->>'grant_id' AS grant_id,
               {_day("d->>'cancelled_at'")} AS cancelled_on, seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        TrancheRow,
        "tranche_paid",
        ("payment_id",),
        f"""
        SELECT d->>'payment_id' AS payment_id, d->>'grant_id' AS grant_id,
               (d->>'tranche_number')::int AS tranche_number, {_money("d->>'amount_eur'")} AS amount,
               (d->>'value_date')::date AS value_date, d->>'bank_reference' AS bank_reference,
               occurred_at AS paid_at, seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(  # repository.tally_payments: each grant's tranches as the first event of each payment gave them
        GrantPaymentsRow,
        "tranche_paid",
        ("grant_id",),
        f"""
        SELECT grant_id, SUM(amount) AS paid, COUNT(*) AS tranches, COUNT(DISTINCT tranche_number) AS tranche_numbers,
               MIN(seq) AS seq, 0 AS sub
        FROM (SELECT DISTINCT ON (d->>'payment_id' COLLATE "C") d->>'grant_id' AS grant_id, seq,
                     (d->>'tranche_number')::int AS tranche_number, {_money("d->>'amount_eur'")} AS amount
              FROM {{e}} ORDER BY d->>'payment_id' COLLATE "C", seq) AS t
        GROUP BY grant_id""",
    ),
    _fact(
        GrantReportRow,
        ("report_submitted", "report_accepted"),
        ("event_id",),
        f"""
        SELECT event_id, d->>'report_id' AS report_id, d->>'grant_id' AS grant_id, d->>'kind' AS kind,
               COALESCE(d->>'outcome', 'submitted') AS status, {_money("d->>'total_eur'")} AS total,
               {_day("COALESCE(d->>'decided_at', d->>'submitted_at')")} AS decided_on, seq, 0 AS sub FROM {{e}}""",
        unique=True,
    ),
    _fact(
        ExpenditureRow,
        "report_accepted",
        ("event_id", "heading"),
        f"""
        SELECT event_id, x.key AS heading, report_id, grant_id, {_money("x.value")} AS amount, accepted_on,
               seq, 0 AS sub
        FROM (SELECT seq, event_id, d->>'report_id' AS report_id, d->>'grant_id' AS grant_id,
                     {_day("d->>'decided_at'")} AS accepted_on, d->'expenditure' AS expenditure
              FROM {{e}} WHERE d->>'outcome' = 'accepted' OFFSET 0) AS a  -- the report's, once, not once per heading
        CROSS JOIN LATERAL jsonb_each_text(expenditure) AS x(key, value)""",
        unique=True,
    ),
    _fact(
        ReportExpenditureRow,
        "report_accepted",
        ("event_id",),
        f"""
        SELECT event_id, d->>'report_id' AS report_id, d->>'grant_id' AS grant_id,
               {_day("d->>'decided_at'")} AS accepted_on,
               {_by_heading(lambda h: _money(f"d->'expenditure'->>{h!r}"))}, seq, 0 AS sub
        FROM {{e}} WHERE d->>'outcome' = 'accepted'""",
        unique=True,
    ),
    _fact(
        ClosureRow,
        "grant_closed",
        ("grant_id",),
        f"""
        SELECT d->>'grant_id' AS grant_id, d->>'kind' AS kind, {_money("d->>'paid_eur'")} AS paid,
               {_money("d->>'accepted_expenditure_eur'")} AS accepted_expenditure,
               {_money("d->>'recovery_eur'")} AS recovery, {_day("d->>'closed_at'")} AS closed_on,
               seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        DecommitmentRow,
        "grant_decommitted",
        ("decommitment_id",),
        f"""
        SELECT d->>'decommitment_id' AS decommitment_id, d->>'grant_id' AS grant_id,
               {_money("d->>'amount_eur'")} AS amount, d->>'reason' AS reason,
               {_day("d->>'decommitted_at'")} AS decommitted_on, seq, 0 AS sub FROM {{e}}""",
    ),
    _fact(
        ExpenditureLineRow,
        "report_submitted",
        ("report_id", "line_no"),
        f"""
        SELECT d->>'report_id' AS report_id, l.n::int AS line_no, d->>'grant_id' AS grant_id,
               l.line->>'heading' AS heading, {_money("l.line->>'amount'")} AS amount,
               l.line->>'currency' AS currency, (l.line->>'incurred_on')::date AS incurred_on,
               COALESCE(l.line->>'description', '') AS description, (l.line->>'rate')::numeric AS rate,
               l.line->>'rate_type' AS rate_type, l.line->>'rate_month' AS rate_month,
               {_money("l.line->>'amount_eur'")} AS amount_eur, seq, 0 AS sub
        FROM {{e}} {_REPORT_LINES}""",
    ),
    _fact(
        IndicatorResultRow,
        "results_reported",
        ("report_id", "code"),
        f"""
        SELECT d->>'report_id' AS report_id, r.value->>'code' AS code, d->>'grant_id' AS grant_id,
               d->>'reference' AS reference, d->>'programme_id' AS programme_id, d->>'window' AS "window",
               upper(d->>'country') AS country, d->>'kind' AS report_kind,
               COALESCE((d->>'number')::int, 1) AS report_number, (d->>'period_start')::date AS period_start,
               (d->>'period_end')::date AS period_end, r.value->>'result_type' AS result_type,
               r.value->>'result_title' AS result_title, r.value->>'title' AS title, r.value->>'measure' AS measure,
               COALESCE(r.value->>'unit', '') AS unit, r.value->>'baseline_value' AS baseline_value,
               (r.value->>'baseline_year')::int AS baseline_year, r.value->>'target_value' AS target_value,
               (r.value->>'target_date')::date AS target_date, r.value->>'actual_value' AS actual_value,
               COALESCE(r.value->>'comment', '') AS comment, {_day("d->>'decided_at'")} AS decided_on,
               seq, r.ord AS sub
        FROM {{e}} CROSS JOIN LATERAL jsonb_array_elements(d->'results') WITH ORDINALITY AS r(value, ord)""",
    ),
    _fact(
        TerminationRow,
        "grant_terminated",
        ("grant_id",),
        f"""
        SELECT d->>'grant_id' AS grant_id, (d->>'effective_date')::date AS effective_on,
               {_day("d->>'terminated_at'")} AS terminated_on, d->>'reason' AS reason, seq, 0 AS sub FROM {{e}}""",
    ),
)


# --- build and swap ----------------------------------------------------------------------------------------------

DERIVED = {"budget_lines": (BUDGETED, _BUDGET_LINES)}  # rows derived from events that several facts read


def _read_by_several() -> frozenset[str]:
    """The derived rows and the event types more than one statement reads: staged once per rebuild (the events
    parsed into STAGED_EVENTS, each derived set into its own table), a staged derived set reading its events once."""
    sources = [(m.group(1), _TYPE.findall(m.group(2))) for fact in FACTS for m in _SOURCE.finditer(fact.rows)]
    derived = Counter(name for name, _ in sources if name != "events")
    staged = {name for name, n in derived.items() if n > 1}
    reads = Counter(t for name, types in sources if name not in staged for t in types)
    reads.update(t for name in staged for t in DERIVED[name][0])
    return frozenset(staged | {t for t, n in reads.items() if n > 1})


STAGED = _read_by_several()


BUILDERS = 2  # connections filling the new tables at once: PostgreSQL 15 runs no INSERT ... SELECT in parallel


def rebuild(session) -> int:
    """Rebuild every projection from the archive (module docstring); returns the events replayed. Commits the
    snapshot's transaction itself; the caller commits the rest."""
    upto = _snapshot(session)
    session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": REBUILD_LOCK})
    for setting in _SETTINGS:
        session.execute(text(f"SET LOCAL {setting}"))
    tables = [model.__tablename__ for model in PROJECTION_TABLES]
    indexes = {table: _indexes(session, table) for table in tables}
    _build(session.get_bind().engine, upto, indexes, _groups(session, upto))
    replayed = session.execute(text(f"SELECT count(*) FROM {ARCHIVE} WHERE seq <= :upto"), {"upto": upto}).scalar()

    _lock_for_the_swap(session, tables)  # live batches wait from here to the commit
    session.execute(text("DROP TABLE " + ", ".join(f'"{table}"' for table in tables)))
    for table in tables:
        session.execute(text(f'ALTER TABLE "{table}{SHADOW}" RENAME TO "{table}"'))
        for index in indexes[table]:
            session.execute(text(f'ALTER INDEX "{index.name}{SHADOW}" RENAME TO "{index.name}"'))
    return replayed + replay_archive(session, after_seq=upto)


def _groups(session, upto: int) -> list[list[FactSql]]:
    """The fact statements split among BUILDERS connections: statements reading the same staged events or derived
    rows stay together (a connection's temporary tables are its own), the heaviest sets first to the least loaded
    builder, weighed by the size of the bodies each statement reads."""
    sizes = dict(  # a body's stored size: how long parsing it takes, roughly (a budget weighs more than a payment)
        session.execute(
            text(f"SELECT event_type, sum(pg_column_size(body)) FROM {ARCHIVE} WHERE seq <= :upto GROUP BY event_type"),
            {"upto": upto},
        ).all()
    )
    sets: list[tuple[set[str], list[FactSql]]] = []  # (staged sources, statements), merged where they share one
    for fact in FACTS:
        staged, joined = _staged_sources(fact), [fact]
        for other in [s for s in sets if s[0] & staged]:
            sets.remove(other)
            staged |= other[0]
            joined = other[1] + joined
        sets.append((staged, joined))
    weight = {id(facts): sum(sizes.get(t, 0) for f in facts for t in f.event_types) for _, facts in sets}
    groups: list[list[FactSql]] = [[] for _ in range(BUILDERS)]
    loads = [0] * BUILDERS
    for _, facts in sorted(sets, key=lambda s: -weight[id(s[1])]):
        least = loads.index(min(loads))
        groups[least].extend(facts)
        loads[least] += weight[id(facts)]
    order = {id(fact): n for n, fact in enumerate(FACTS)}
    return [sorted(group, key=lambda f: order[id(f)]) for group in groups if group]


def _staged_sources(fact: FactSql) -> set[str]:
    """The staged event types and derived rows a statement reads, the derived rows' own staged types included."""
    names = {
        m.group(1) if m.group(1) in DERIVED else t
        for m in _SOURCE.finditer(fact.rows)
        for t in _TYPE.findall(m.group(2))
    }
    names = {n for n in names if n in STAGED}
    return names | {t for n in names & DERIVED.keys() for t in DERIVED[n][0] if t in STAGED}


def _build(engine, upto: int, indexes: dict, groups: list[list[FactSql]]):
    """Fill, index and analyse the new tables, each group of statements on a connection of its own, at once; each
    commits its tables (still under their build names). A failed rebuild's tables are dropped before and after."""
    builder = create_engine(engine.url, poolclass=NullPool)  # the service's pool stays for its workers
    try:
        _drop_new_tables(builder)
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:  # green threads under eventlet
            futures = [pool.submit(_build_group, builder, upto, indexes, group) for group in groups]
            failures = [exc for exc in (f.exception() for f in futures) if exc is not None]
        if failures:
            _drop_new_tables(builder)
            raise failures[0]
        try:
            _derive_standing(builder, indexes)
        except Exception:
            _drop_new_tables(builder)
            raise
    finally:
        builder.dispose()


def _derive_standing(engine, indexes: dict):
    """The grants' standing rows (standing.py) from the new fact tables, once every group has committed them:
    the live batches' statement over every grant, on the new tables."""
    table = GrantStandingRow.__tablename__
    with engine.begin() as conn:
        for setting in _SETTINGS:
            conn.execute(text(f"SET LOCAL {setting}"))
        conn.execute(text(f'CREATE TABLE "{table}{SHADOW}" (LIKE "{table}" INCLUDING ALL EXCLUDING INDEXES)'))
        _keep_storage_parameters(conn, table)
        conn.execute(text(standing.fill_sql(SHADOW)))
        for index in indexes[table]:
            for statement in index.build(table):
                conn.execute(text(statement))
        conn.execute(text(f'ANALYZE "{table}{SHADOW}"'))


def _build_group(engine, upto: int, indexes: dict, facts: list[FactSql]):
    with engine.begin() as conn:
        for setting in _SETTINGS:
            conn.execute(text(f"SET LOCAL {setting}"))
        tables = [fact.model.__tablename__ for fact in facts]
        for table in tables:  # without indexes while filled: they are built once, at the end
            conn.execute(text(f'CREATE TABLE "{table}{SHADOW}" (LIKE "{table}" INCLUDING ALL EXCLUDING INDEXES)'))
            _keep_storage_parameters(conn, table)
        staged = frozenset(set().union(*(_staged_sources(fact) for fact in facts)))
        _stage(conn, upto, staged)
        for fact in facts:
            conn.execute(text(fact.insert(f'"{fact.model.__tablename__}{SHADOW}"', STAGED)), {"upto": upto})
        if staged:
            conn.execute(text("DROP TABLE " + ", ".join(_staged_name(name) for name in sorted(staged))))
        for table in tables:
            for index in indexes[table]:
                for statement in index.build(table):
                    conn.execute(text(statement))
            conn.execute(text(f'ANALYZE "{table}{SHADOW}"'))


def _drop_new_tables(engine):
    with engine.begin() as conn:
        conn.execute(
            text("DROP TABLE IF EXISTS " + ", ".join(f'"{m.__tablename__}{SHADOW}"' for m in PROJECTION_TABLES))
        )


def _keep_storage_parameters(conn, table: str):
    """The table's storage parameters (LIKE does not copy them) on its new table: grant_payments' fillfactor."""
    options = conn.execute(
        text("SELECT reloptions FROM pg_class WHERE oid = CAST(:table AS regclass)"), {"table": f'"{table}"'}
    ).scalar()
    if options:
        conn.execute(text(f'ALTER TABLE "{table}{SHADOW}" SET ({", ".join(options)})'))


def _staged_name(name: str) -> str:
    return _staged_table(name) if name in DERIVED else _staged_events(name)


def _stage(conn, upto: int, staged: frozenset[str]):
    """The events and derived rows several statements read (those of `staged`), each computed once, into
    temporary tables."""
    for event_type in sorted(staged - DERIVED.keys()):
        conn.execute(
            text(f"CREATE TEMP TABLE {_staged_events(event_type)} ON COMMIT DROP AS {_parsed((event_type,))}"),
            {"upto": upto},
        )
    for name in sorted(staged & DERIVED.keys()):
        conn.execute(
            text(f"CREATE TEMP TABLE {_staged_table(name)} ON COMMIT DROP AS {_derived(name, STAGED - {name})}"),
            {"upto": upto},
        )


# for the rebuild's transaction only: the DISTINCT ON sorts of the largest tables and the index builds in memory;
# no JIT (its compilation costs seconds and each statement runs its expressions once per row of one pass)
_SETTINGS = ("work_mem = '256MB'", "maintenance_work_mem = '256MB'", "jit = off")

SWAP_LOCK_TIMEOUT_MS = 2000  # how long live batches may wait for the old tables' readers, per attempt
SWAP_ATTEMPTS = 5  # the last one waits for the readers as long as they take


def _lock_for_the_swap(session, tables: list[str]):
    """The archive, then the old tables (dropping them waits for the reports reading them). A long report would
    hold live batches back behind the archive's lock: each attempt gives up after SWAP_LOCK_TIMEOUT_MS and
    releases the archive (the savepoint's rollback releases its locks) for the batches to go on, then tries again;
    the events they archive meanwhile are in the tail."""
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        savepoint = session.begin_nested()
        try:
            if attempt < SWAP_ATTEMPTS:
                session.execute(text(f"SET LOCAL lock_timeout = {SWAP_LOCK_TIMEOUT_MS}"))
            session.execute(text(f"LOCK TABLE {ARCHIVE} IN EXCLUSIVE MODE"))
            session.execute(
                text("LOCK TABLE " + ", ".join(f'"{table}"' for table in tables) + " IN ACCESS EXCLUSIVE MODE")
            )
        except OperationalError as exc:
            if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
                raise
            savepoint.rollback()
            continue
        savepoint.commit()
        session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
        return


def _snapshot(session) -> int:
    """The archive's last seq once the batches being archived have committed (the lock waits for them): every
    event up to it is visible from now on, and every event archived later has a higher seq."""
    session.execute(text(f"LOCK TABLE {ARCHIVE} IN EXCLUSIVE MODE"))
    upto = session.execute(text(f"SELECT COALESCE(max(seq), 0) FROM {ARCHIVE}")).scalar()
    session.commit()
    return upto


@dataclass(frozen=True)
class Index:
    """An index of a fact table as the migrations made it, to be made again on the new table."""

    name: str
    definition: str  # pg_get_indexdef
    unique: bool
    constraint: str | None  # PRIMARY KEY / UNIQUE when the index carries that constraint

    def build(self, table: str) -> list[str]:
        name = f"{self.name}{SHADOW}"
        method_and_columns = self.definition.split(" USING ", 1)[1]
        statements = [
            f'CREATE {"UNIQUE " if self.unique else ""}INDEX "{name}" ON "{table}{SHADOW}" USING {method_and_columns}'
        ]
        if self.constraint:
            statements.append(
                f'ALTER TABLE "{table}{SHADOW}" ADD CONSTRAINT "{name}" {self.constraint} USING INDEX "{name}"'
            )
        return statements


def _indexes(session, table: str) -> list[Index]:
    rows = session.execute(
        text("""
        SELECT i.relname, pg_get_indexdef(x.indexrelid), x.indisunique,
               CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' END
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u')
        WHERE x.indrelid = CAST(:table AS regclass) ORDER BY i.relname"""),
        {"table": table},
    ).all()
    return [Index(*row) for row in rows]
