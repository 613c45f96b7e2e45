"""The P4/P5 data set: seeded JMDI facts loaded fast into reporting's projections and its event archive.

`tests/support/report_facts.generate_facts` gives realistic facts (16 countries, 4 windows, awards of EUR 50k-200k, tranches
within each award, expenditure by Annex III heading). Here they become (a) the events that would have produced
them — call_opened, grant_awarded, contract_signed, tranche_paid, report_accepted, in the wire form
`make_event` gives (a sample is checked with `parse_event`) — COPYed into the archive, and (b) the projection
rows those events give, COPYed into the fact tables. P5 rebuilds (b) from (a) and the bench checks that the
totals come out the same.

The event -> row mapping mirrors services/reporting/projections.py: ROWS_FROM_EVENT is the one place to adapt
when the reporting tables change; the columns a table copies from another (models.COPIED_COLUMNS) are set after
the COPY, as the fact writer sets them after its inserts, and so is each grant's payments row (grant_payments,
repository.tally_payments: computed from the tranches, as the writer computes it after a batch's inserts) and each
grant's standing row (grant_standing, standing.py's statement over every grant).
"""

import csv
import functools
import io
import json
import time
import uuid
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import JSON, Date, DateTime

from services.common.contracts.events import parse_event
from services.common.storage.types import Money
from services.reporting import models, standing
from services.reporting.domain.budget_report import budget_fact, budget_lines, expenditure_fact
from tests.support.report_facts import generate_facts

CALL_ID = "JMDI-2008"
UTC = timezone.utc
_NAMESPACE = 0xB3C4 << 112  # event ids: deterministic per seed and position, distinct from uuid4's


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, dtime(hour, 0), UTC)


@functools.lru_cache(maxsize=None)
def _iso_at(day: date, hour: int = 10) -> str:
    return _at(day, hour).isoformat()


def _m(amount: Decimal) -> str:
    return f"{amount:.2f}"


class EventSource:
    """Builds envelope bodies in the wire form, with deterministic event ids."""

    def __init__(self, seed: int):
        self.seed = seed
        self.n = 0

    def body(self, event_type: str, producer: str, data: dict, occurred_at: str, actor=None) -> dict:
        self.n += 1
        return {
            "event_id": str(uuid.UUID(int=_NAMESPACE + (self.seed << 48) + self.n)),
            "event_type": event_type,
            "version": 1,
            "occurred_at": occurred_at,
            "producer": producer,
            "actor": actor,
            "data": data,
        }


def events_from_facts(facts, seed: int):
    """Yield event bodies (wire form) that, projected, give the facts: the archive of the data set."""
    source = EventSource(seed)
    programme = facts.programme
    opened = _iso_at(date(2008, 12, 1), 9)
    yield source.body(
        "call_opened",
        "calls",
        {
            "call_id": CALL_ID,
            "programme_id": programme.id,
            "programme_name": programme.name,
            "envelope_eur": _m(programme.envelope),
            "rule_profile": "ec_prag",
            "title": "JMDI call for proposals 2008",
            "windows": [
                {"window": code, "name": name, "allocation_eur": _m(allocation)}
                for code, (name, allocation) in programme.windows.items()
            ],
            "deadline": _iso_at(date(2009, 2, 15), 12),
            "min_grant_eur": "50000.00",
            "max_grant_eur": "200000.00",
            "max_ec_share": "0.9000",
        },
        opened,
        "maria.pm",
    )

    tranches_of: dict[str, list] = {}
    for t in facts.tranches:
        tranches_of.setdefault(t.grant_id, []).append(t)
    spent_of: dict[str, list] = {}
    for e in facts.expenditures:
        spent_of.setdefault(e.grant_id, []).append(e)

    for n, g in enumerate(facts.grants, start=1):
        awarded = _iso_at(g.awarded_at)
        yield source.body(
            "grant_awarded",
            "grants",
            {
                "grant_id": g.grant_id,
                "proposal_id": f"P-{g.grant_id}",
                "reference": g.proposal_reference,
                "call_id": CALL_ID,
                "programme_id": programme.id,
                "window": g.window,
                "country": g.country,
                "applicant_type": g.applicant_type,
                "lead_organisation": g.lead_organisation,
                "title": g.title,
                "amount_eur": _m(g.committed),
                "budget": {h: _m(v) for h, v in g.budget_by_heading.items()},
                "decision_reference": f"SC-{g.awarded_at:%Y-%m}",
                "decision_date": g.awarded_at.isoformat(),
                "awarded_at": awarded,
            },
            awarded,
            "steering.committee",
        )
        if g.contracted:
            signed = g.awarded_at + timedelta(days=14)  # tranches start 20+ days after the award
            start = signed + timedelta(days=1)
            yield source.body(
                "contract_signed",
                "grants",
                {
                    "grant_id": g.grant_id,
                    "reference": g.proposal_reference,
                    "start_date": start.isoformat(),
                    "end_date": (start + timedelta(days=730)).isoformat(),
                    "duration_months": 24,
                    "amount_eur": _m(g.committed),
                    "schedule": [
                        {
                            "number": 1,
                            "kind": "pre_financing",
                            "planned_amount_eur": _m((g.committed * Decimal("0.8")).quantize(Decimal("0.01"))),
                            "condition": None,
                            "due_date": None,
                        }
                    ],
                    "signed_at": _iso_at(signed),
                },
                _iso_at(signed),
                "maria.pm",
            )
        spent = spent_of.get(g.grant_id, ())
        for t in tranches_of.get(g.grant_id, ()):
            if t.tranche_number == 2 and spent:
                decided = _iso_at(spent[0].accepted_at, 12)
                expenditure = {e.heading: _m(e.amount) for e in spent}
                yield source.body(
                    "report_accepted",
                    "grants",
                    {
                        "report_id": f"R-{g.grant_id}-1",
                        "grant_id": g.grant_id,
                        "reference": g.proposal_reference,
                        "kind": "interim",
                        "outcome": "accepted",
                        "reason": "",
                        "expenditure": expenditure,
                        "total_eur": _m(sum((e.amount for e in spent), Decimal("0.00"))),
                        "decided_at": decided,
                    },
                    decided,
                    "maria.pm",
                )
            yield source.body(
                "tranche_paid",
                "grants",
                {
                    "payment_id": f"PAY-{g.grant_id}-{t.tranche_number}",
                    "grant_id": g.grant_id,
                    "reference": g.proposal_reference,
                    "tranche_number": t.tranche_number,
                    "amount_eur": _m(t.amount),
                    "value_date": t.value_date.isoformat(),
                    "bank_reference": f"BNK-{n}-{t.tranche_number}",
                    "approved_by": "farid.finance",
                },
                _iso_at(t.value_date, 11),
                "farid.finance",
            )


# --- event -> projection rows (mirrors services/reporting/projections.py) -----------------------------------


def _call_opened(body):
    d = body["data"]
    yield (
        models.ProgrammeRow,
        {"programme_id": d["programme_id"], "name": d["programme_name"], "envelope": d["envelope_eur"]},
    )
    yield (
        models.CallRow,
        {
            "call_id": d["call_id"],
            "programme_id": d["programme_id"],
            "title": d["title"],
            "rule_profile": d["rule_profile"],
            "deadline": d["deadline"],
            "opened_at": body["occurred_at"],
        },
    )
    for position, w in enumerate(d["windows"]):
        yield (
            models.WindowRow,
            {
                "call_id": d["call_id"],
                "window": w["window"],
                "programme_id": d["programme_id"],
                "name": w["name"] or w["window"],
                "allocation": w["allocation_eur"],
                "position": position,
            },
        )


def _grant_awarded(body):
    d = body["data"]
    yield (
        models.GrantRow,
        {
            "grant_id": d["grant_id"],
            "proposal_id": d["proposal_id"],
            "programme_id": d["programme_id"],
            "reference": d["reference"],
            "title": d["title"],
            "call_id": d["call_id"],
            "window": d["window"],
            "country": d["country"],
            "applicant_type": d["applicant_type"],
            "lead_organisation": d["lead_organisation"],
            "amount": d["amount_eur"],
            "budget": d["budget"],
            "decision_reference": d["decision_reference"],
            "decision_date": d["decision_date"],
            "awarded_at": d["awarded_at"],
        },
    )
    lines = budget_lines(d["grant_id"], "award", d["amount_eur"], d["budget"])
    for line in lines:
        yield models.BudgetLineRow, line
    if lines:
        yield models.BudgetRow, budget_fact(d["grant_id"], "award", lines)


def _contract_signed(body):
    d = body["data"]
    yield (
        models.ContractRow,
        {
            "grant_id": d["grant_id"],
            "amount": d["amount_eur"],
            "start_date": d["start_date"],
            "end_date": d["end_date"],
            "duration_months": d["duration_months"],
            "signed_on": d["signed_at"][:10],
        },
    )


def _tranche_paid(body):
    d = body["data"]
    yield (
        models.TrancheRow,
        {
            "payment_id": d["payment_id"],
            "grant_id": d["grant_id"],
            "tranche_number": d["tranche_number"],
            "amount": d["amount_eur"],
            "value_date": d["value_date"],
            "bank_reference": d["bank_reference"],
            "paid_at": body["occurred_at"],
        },
    )


def _report_accepted(body):
    d = body["data"]
    on = d["decided_at"][:10]
    yield (
        models.GrantReportRow,
        {
            "event_id": body["event_id"],
            "report_id": d["report_id"],
            "grant_id": d["grant_id"],
            "kind": d["kind"],
            "status": d["outcome"],
            "total": d["total_eur"],
            "decided_on": on,
        },
    )
    for heading, amount in d["expenditure"].items():
        yield (
            models.ExpenditureRow,
            {
                "event_id": body["event_id"],
                "heading": heading,
                "report_id": d["report_id"],
                "grant_id": d["grant_id"],
                "amount": amount,
                "accepted_on": on,
            },
        )
    yield (
        models.ReportExpenditureRow,
        expenditure_fact(body["event_id"], d["report_id"], d["grant_id"], on, d["expenditure"]),
    )


ROWS_FROM_EVENT = {
    "call_opened": _call_opened,
    "grant_awarded": _grant_awarded,
    "contract_signed": _contract_signed,
    "tranche_paid": _tranche_paid,
    "report_accepted": _report_accepted,
}


# --- COPY ------------------------------------------------------------------------------------------------------


class TableWriter:
    """CSV for COPY, columns taken from the model so a renamed or new NOT NULL column fails loudly here."""

    def __init__(self, table):
        self.table = table
        # the database numbers autoincrement keys (the archive's seq)
        self.columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        self.fields = [(c.name, self._converter(c)) for c in self.columns]
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")
        self.rows = 0

    @staticmethod
    def _converter(column):
        kind = column.type
        if isinstance(kind, Money):
            return lambda v: None if v is None else int(Decimal(v) * 100)
        if isinstance(kind, JSON):
            return lambda v: None if v is None else json.dumps(v, ensure_ascii=False)
        if isinstance(kind, (Date, DateTime)) or isinstance(getattr(kind, "impl", None), (Date, DateTime)):
            return lambda v: v if v is None or isinstance(v, str) else v.isoformat()
        return None

    def _check(self, values: dict):
        unknown = set(values) - {c.name for c in self.columns}
        if unknown:
            raise KeyError(f"{self.table.name}: no column(s) {sorted(unknown)}")
        for c in self.columns:
            if values.get(c.name) is None and not c.nullable and c.server_default is None and c.default is None:
                raise KeyError(f"{self.table.name}.{c.name}: no value for a NOT NULL column")

    def add(self, values: dict):
        if not self.rows:  # the mapping is checked once per table: the rows of a table all have the same keys
            self._check(values)
        get = values.get
        self.writer.writerow([convert(get(name)) if convert else get(name) for name, convert in self.fields])
        self.rows += 1

    def add_archived(self, body: dict, archived_at: str):
        """The archive's row for an event body, written directly (the bulk of the data set's bytes)."""
        if not self.rows:
            self._check({"event_id": 1, "event_type": 1, "producer": 1, "occurred_at": 1, "body": 1, "archived_at": 1})
            assert [c.name for c in self.columns] == [
                "event_id",
                "event_type",
                "producer",
                "occurred_at",
                "body",
                "archived_at",
            ], "the archive's columns changed"
        quoted = json.dumps(body, ensure_ascii=False).replace('"', '""')
        self.buffer.write(
            f"{body['event_id']},{body['event_type']},{body['producer']},{body['occurred_at']},"
            f'"{quoted}",{archived_at}\n'
        )
        self.rows += 1

    def flush(self, cursor):
        if self.buffer.tell() == 0:
            return
        self.buffer.seek(0)
        names = ", ".join(f'"{c.name}"' for c in self.columns)
        cursor.copy_expert(f'COPY "{self.table.name}" ({names}) FROM STDIN WITH (FORMAT csv)', self.buffer)
        self.buffer.seek(0)
        self.buffer.truncate()


def validate_sample(bodies, every: int = 997):
    """Every event type's first body and one in `every` go through the consumers' own validation."""
    seen = set()
    for i, body in enumerate(bodies):
        if body["event_type"] not in seen or i % every == 0:
            seen.add(body["event_type"])
            parse_event(body)


def load(dsn: str, seed: int, grants: int, tranches: int, chunk: int = 20000, log=print) -> dict:
    """Generate the facts and COPY archive + projections into the (migrated, empty) reporting database."""
    from .db import connect

    started = time.perf_counter()
    facts = generate_facts(seed, grants, tranches)
    generated = time.perf_counter()
    archive = TableWriter(models.ArchivedEvent.__table__)
    writers = {}
    counts: dict[str, int] = {}
    archived_at = datetime.now(UTC).isoformat()
    conn = connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            pending = []
            for body in events_from_facts(facts, seed):
                counts[body["event_type"]] = counts.get(body["event_type"], 0) + 1
                pending.append(body)
                archive.add_archived(body, archived_at)
                for model, row in ROWS_FROM_EVENT[body["event_type"]](body):
                    writer = writers.get(model)
                    if writer is None:
                        writer = writers[model] = TableWriter(model.__table__)
                    writer.add(row)
                if len(pending) >= chunk:
                    validate_sample(pending)
                    pending.clear()
                    archive.flush(cur)
                    for writer in writers.values():
                        writer.flush(cur)
            validate_sample(pending)
            archive.flush(cur)
            for writer in writers.values():
                writer.flush(cur)
            copied = copy_columns(cur)
            tally_payments(cur)
            cur.execute(standing.fill_sql(""))  # each grant's standing row, as the fact writer keeps it
        with conn.cursor() as cur:
            conn.autocommit = True
            for table in copied:  # compact again, as a table whose rows were updated long ago would be
                cur.execute(f'VACUUM FULL "{table}"')
            # statistics of every table written, as the set-based rebuild leaves them (no autovacuum on the bench's
            # server): the report's plan depends on them
            derived = (models.ArchivedEvent, models.GrantPaymentsRow, models.GrantStandingRow)
            for table in [m.__table__ for m in derived] + [m.__table__ for m in writers]:
                cur.execute(f'ANALYZE "{table.name}"')
    finally:
        conn.close()
    log(
        f"  data set: {len(facts.grants):,} grants, {len(facts.tranches):,} tranches, "
        f"{sum(counts.values()):,} archived events in {time.perf_counter() - started:.1f} s"
    )
    return {
        "seed": seed,
        "grants": len(facts.grants),
        "tranches": len(facts.tranches),
        "expenditure_lines": len(facts.expenditures),
        "events": counts,
        "archived_events": sum(counts.values()),
        "rows": {w.table.name: w.rows for w in writers.values()},
        "generate_s": round(generated - started, 2),
        "load_s": round(time.perf_counter() - generated, 2),
        "expected": expected_totals(facts),
    }


def copy_columns(cursor) -> set[str]:
    """The columns one fact table copies from another (models.COPIED_COLUMNS: the contract's signing date on the
    grant's row), set as the fact writer sets them, over the whole tables at once; returns the tables updated."""
    for c in models.COPIED_COLUMNS:
        target, source = c.target.__tablename__, c.source.__tablename__
        cursor.execute(
            f'UPDATE "{target}" t SET "{c.column}" = s."{c.source_column}" FROM "{source}" s '
            f'WHERE s."{c.key}" = t."{c.key}"'
        )
    return {c.target.__tablename__ for c in models.COPIED_COLUMNS}


def tally_payments(cursor):
    """Each grant's payments row from its tranches (models.GrantPaymentsRow), with the fact writer's own statement
    (repository.tally_payments) over every grant."""
    from sqlalchemy.dialects import postgresql

    from services.reporting.repository import tally_payments

    statements = []
    tally_payments(SimpleNamespace(execute=statements.append))
    for statement in statements:
        cursor.execute(str(statement.compile(dialect=postgresql.dialect())))


def expected_totals(facts) -> dict:
    """Committed and disbursed overall, straight from the facts: the check for both the SQL and the report."""
    committed = sum((g.committed for g in facts.grants), Decimal("0.00"))
    disbursed = sum((t.amount for t in facts.tranches), Decimal("0.00"))
    return {"committed_eur": _m(committed), "disbursed_eur": _m(disbursed), "grants": len(facts.grants)}
