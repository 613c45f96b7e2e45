"""The budget report computed by PostgreSQL equals the reference (the facts loaded and aggregated by the pure
model, the path SQLite takes): JSON, CSV, the XLSX sheets and the paged grant lines, for the whole programme and
as of past dates, on realistic facts plus every rule's edge (amendments with and without a budget, grants
declined before and after a payment, recoveries, decommitments, cancelled and unpaid requests, facts of another
programme and of grants not known here). The finance gauges read the same SQL totals."""

import importlib.util
import io
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from services.common.values.errors import Conflict
from services.reporting import commands, report_sql
from services.reporting import views as queries
from services.reporting.domain.budget_report import budget_fact, budget_lines, expenditure_fact
from services.reporting.models import (
    COPIED_COLUMNS,
    AmendmentRow,
    BudgetLineRow,
    BudgetRow,
    ClosureRow,
    ContractRow,
    DecommitmentRow,
    ExpenditureRow,
    GrantRow,
    PaymentCancellationRow,
    PaymentRequestRow,
    ProgrammeRow,
    ProposalRow,
    ReportExpenditureRow,
    TerminationRow,
    TrancheRow,
    WindowRow,
)
from services.reporting import standing
from services.reporting.repository import copy_column, tally_payments
from tests.support.reporting_db import SessionUow, reporting_database
from tests.support.report_facts import generate_facts

UTC = timezone.utc
D = Decimal


@pytest.fixture(scope="module")
def engine():
    with reporting_database("report_sql") as engine:
        yield engine


def _at(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC).replace(hour=10)


def _insert_budgets(session: Session, budgets):
    """The budget facts the projection writes for each (grant id, source, amount, budget): lines and one row."""
    lines = [budget_lines(*budget) for budget in budgets]
    session.execute(insert(BudgetLineRow), [line for each in lines for line in each])
    session.execute(insert(BudgetRow), [budget_fact(b[0], b[1], each) for b, each in zip(budgets, lines) if each])


def _insert_expenditure(session: Session, rows: list[dict]):
    """Accepted expenditure as the projection writes it: a row per heading, and a row per report."""
    session.execute(insert(ExpenditureRow), rows)
    reports: dict[str, dict] = {}
    for r in rows:
        reports.setdefault(r["event_id"], {**r, "expenditure": {}})["expenditure"][r["heading"]] = r["amount"]
    session.execute(
        insert(ReportExpenditureRow),
        [
            expenditure_fact(r["event_id"], r["report_id"], r["grant_id"], r["accepted_on"], r["expenditure"])
            for r in reports.values()
        ],
    )


def _load(session: Session):
    facts = generate_facts(seed=16, n_grants=240, n_tranches=600)
    not_paid_yet = {g.grant_id for g in facts.grants[-5:]}  # awarded, no payment yet
    facts.tranches[:] = [t for t in facts.tranches if t.grant_id not in not_paid_yet]
    prog = facts.programme
    session.execute(
        insert(ProgrammeRow),
        [
            {
                "programme_id": "JMDI",
                "name": prog.name,
                "envelope": prog.envelope,
                "period_start": None,
                "period_end": None,
            },
            {
                "programme_id": "OTHER",
                "name": "Another programme",
                "envelope": D("1000000.00"),
                "period_start": date(2009, 1, 1),
                "period_end": date(2012, 12, 31),
            },
        ],
    )
    session.execute(
        insert(WindowRow),
        [
            {
                "call_id": "JMDI-2008",
                "window": code,
                "programme_id": "JMDI",
                "name": name,
                "allocation": allocation,
                "position": i,
            }
            for i, (code, (name, allocation)) in enumerate(prog.windows.items())
        ]
        + [
            {
                "call_id": "OTHER-1",
                "window": "other_window",
                "programme_id": "OTHER",
                "name": "Other",
                "allocation": D("1000000.00"),
                "position": 0,
            }
        ],
    )
    grants = []
    for g in facts.grants:
        grants.append(
            {
                "grant_id": g.grant_id,
                "proposal_id": "P-" + g.grant_id,
                "programme_id": "JMDI",
                "reference": g.proposal_reference,
                "title": g.title,
                "call_id": "JMDI-2008",
                "window": g.window,
                "country": g.country,
                "applicant_type": g.applicant_type,
                "lead_organisation": g.lead_organisation,
                "amount": g.committed,
                "budget": {h: str(v) for h, v in g.budget_by_heading.items()},
                "decision_reference": "D-" + g.grant_id,
                "decision_date": g.awarded_at,
                "awarded_at": _at(g.awarded_at),
            }
        )
    # a grant of another programme, with a payment: neither in JMDI's report nor unmatched there
    grants.append(
        {
            **grants[0],
            "grant_id": "OTHER-G1",
            "proposal_id": "P-O1",
            "programme_id": "OTHER",
            "reference": "OTHER-0001",
            "window": "other_window",
            "decision_date": date(2009, 9, 1),
        }
    )
    session.execute(insert(GrantRow), grants)
    _insert_budgets(session, [(g["grant_id"], "award", g["amount"], g["budget"]) for g in grants])
    session.execute(
        insert(ContractRow),
        [
            {
                "grant_id": g.grant_id,
                "amount": g.committed,
                "start_date": g.awarded_at,
                "end_date": g.awarded_at + timedelta(days=700),
                "duration_months": 24,
                "signed_on": g.awarded_at + timedelta(days=15 + i % 40),
            }
            for i, g in enumerate(facts.grants)
            if g.contracted and g.grant_id not in not_paid_yet
        ],
    )
    for copied in COPIED_COLUMNS:  # the contracts' dates on the grants' rows, as the fact writer sets them
        session.execute(copy_column(copied, [g["grant_id"] for g in grants]))
    tranches = [
        {
            "payment_id": f"PAY-{t.grant_id}-{t.tranche_number}",
            "grant_id": t.grant_id,
            "tranche_number": t.tranche_number,
            "amount": t.amount,
            "value_date": t.value_date,
            "bank_reference": "B",
            "paid_at": _at(t.value_date),
        }
        for t in facts.tranches
    ]
    tranches += [
        {
            "payment_id": "PAY-UNKNOWN",
            "grant_id": "G-UNKNOWN",
            "tranche_number": 1,
            "amount": D("10.00"),
            "value_date": date(2010, 1, 5),
            "bank_reference": "B",
            "paid_at": _at(date(2010, 1, 5)),
        },
        {
            "payment_id": "PAY-OTHER",
            "grant_id": "OTHER-G1",
            "tranche_number": 1,
            "amount": D("20.00"),
            "value_date": date(2010, 1, 5),
            "bank_reference": "B",
            "paid_at": _at(date(2010, 1, 5)),
        },
    ]
    session.execute(insert(TrancheRow), tranches)
    tally_payments(session)  # each grant's payments row, as the fact writer computes it after its inserts
    _insert_expenditure(
        session,
        [
            {
                "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{e.grant_id}/{e.accepted_at}")),
                "heading": e.heading,
                "report_id": "R-" + e.grant_id,
                "grant_id": e.grant_id,
                "amount": e.amount,
                "accepted_on": e.accepted_at,
            }
            for e in facts.expenditures
        ]
        + [
            {
                "event_id": str(uuid.uuid4()),
                "heading": "travel",
                "report_id": "R-X",
                "grant_id": "G-UNKNOWN",
                "amount": D("5.00"),
                "accepted_on": date(2010, 2, 1),
            }
        ],
    )

    paid = {}
    for t in facts.tranches:
        paid.setdefault(t.grant_id, []).append(t)
    unpaid = [g for g in facts.grants if g.grant_id not in paid]
    with_payments = [g for g in facts.grants if g.grant_id in paid]
    assert len(unpaid) >= 2 and len(with_payments) > 60
    # amendments: a new amount and budget; a new amount only ({} budget); two in a row; one after most dates
    amendments = []
    for i, g in enumerate(with_payments[:12]):
        budget = {h: str((v * D("1.1")).quantize(D("0.01"))) for h, v in g.budget_by_heading.items()} if i % 2 else {}
        amendments.append(
            {
                "amendment_id": f"A-{i}",
                "grant_id": g.grant_id,
                "kind": "budget",
                "amount": g.committed + D("1000.01") * (i + 1),
                "duration_months": 30,
                "budget": budget,
                "occurred_at": _at(g.awarded_at + timedelta(days=100 + 60 * i)),
                "effective_on": g.awarded_at + timedelta(days=100 + 60 * i),
            }
        )
    g = with_payments[0]
    amendments.append(
        {
            "amendment_id": "A-second",
            "grant_id": g.grant_id,
            "kind": "extension",
            "amount": g.committed + D("7.77"),
            "duration_months": 36,
            "budget": {},
            "occurred_at": _at(date(2011, 3, 1)),
            "effective_on": date(2011, 3, 1),
        }
    )
    session.execute(insert(AmendmentRow), amendments)
    _insert_budgets(session, [(a["grant_id"], a["amendment_id"], a["amount"], a["budget"]) for a in amendments])
    # closures: declined before any payment (left out), declined after a payment (commits 0), a recovery,
    # final payments that gave money back (decommitments)
    closures = [
        {
            "grant_id": unpaid[0].grant_id,
            "kind": "declined",
            "paid": 0,
            "accepted_expenditure": 0,
            "recovery": 0,
            "closed_on": unpaid[0].awarded_at + timedelta(days=30),
        },
        {
            "grant_id": with_payments[20].grant_id,
            "kind": "declined",
            "paid": 0,
            "accepted_expenditure": 0,
            "recovery": 0,
            "closed_on": date(2010, 12, 1),
        },
        {
            "grant_id": with_payments[21].grant_id,
            "kind": "recovery",
            "paid": 0,
            "accepted_expenditure": 0,
            "recovery": D("1234.56"),
            "closed_on": date(2011, 6, 1),
        },
    ]
    decommitments = []
    for i, g in enumerate(with_payments[30:40]):
        on = date(2011, 1 + i, 10)
        closures.append(
            {
                "grant_id": g.grant_id,
                "kind": "final_payment",
                "paid": 0,
                "accepted_expenditure": 0,
                "recovery": 0,
                "closed_on": on,
            }
        )
        decommitments.append(
            {
                "decommitment_id": f"DC-{i}",
                "grant_id": g.grant_id,
                "amount": D("999.99") + i,
                "reason": "unspent",
                "decommitted_on": on,
            }
        )
    decommitments.append(
        {
            "decommitment_id": "DC-unknown",
            "grant_id": "G-UNKNOWN",
            "amount": D("1.00"),
            "reason": "x",
            "decommitted_on": date(2011, 1, 1),
        }
    )
    session.execute(insert(ClosureRow), closures)
    session.execute(
        insert(TerminationRow),
        [  # ended early: one before most as-of dates, one after
            {
                "grant_id": with_payments[60].grant_id,
                "effective_on": date(2010, 5, 1),
                "terminated_on": date(2010, 5, 3),
                "reason": "the partner withdrew",
            },
            {
                "grant_id": with_payments[61].grant_id,
                "effective_on": date(2011, 2, 1),
                "terminated_on": date(2011, 2, 1),
                "reason": "the context changed",
            },
        ],
    )
    session.execute(insert(DecommitmentRow), decommitments)
    # payment requests: paid (a tranche carries their payment id), cancelled, still awaiting payment
    requests = [
        {
            "payment_id": f"PAY-{t.grant_id}-{t.tranche_number}",
            "grant_id": t.grant_id,
            "tranche_number": t.tranche_number,
            "amount": t.amount,
            "requested_on": t.value_date - timedelta(days=5),
        }
        for t in facts.tranches[:50]
    ]
    for i, g in enumerate(with_payments[50:56]):
        requests.append(
            {
                "payment_id": f"REQ-{i}",
                "grant_id": g.grant_id,
                "tranche_number": 9,
                "amount": D("5000.00") + i,
                "requested_on": date(2010, 6, 1 + i),
            }
        )
    session.execute(insert(PaymentRequestRow), requests)
    session.execute(
        insert(PaymentCancellationRow),
        [
            {"payment_id": "REQ-0", "grant_id": with_payments[50].grant_id, "cancelled_on": date(2010, 7, 1)},
            {"payment_id": "REQ-1", "grant_id": with_payments[51].grant_id, "cancelled_on": date(2012, 7, 1)},
        ],
    )
    session.execute(
        insert(ProposalRow),
        [
            {
                "proposal_id": f"PR-{i}",
                "reference": f"R-{i}",
                "call_id": "JMDI-2008",
                "programme_id": "JMDI",
                "window": "remittances",
                "country": "MA",
                "applicant_type": "ngo",
                "requested": D("100000.00"),
                "submitted_on": date(2009, 3, 1) + timedelta(days=i),
            }
            for i in range(30)
        ],
    )
    standing.compute_all(session)  # each grant's standing row, as the fact writer keeps it after its inserts
    session.commit()
    return facts


@pytest.fixture(scope="module")
def loaded(engine):
    with Session(engine) as session:
        return _load(session)


def _both(engine, programme_id, as_of):
    with Session(engine) as session:
        uow = SessionUow(session)
        reference, ref_facts = commands.build_report_in_python(uow, programme_id, as_of)
        assert report_sql.supported(session)
        sql, sql_facts = commands.build_report(uow, programme_id, as_of)
        assert isinstance(sql.grants, report_sql.GrantPages)
        produced = date(2026, 12, 1)
        out = {}
        for fmt in ("json", "csv", "table"):
            out[fmt] = (
                commands.render(reference, ref_facts, fmt, produced),
                commands.render(sql, sql_facts, fmt, produced),
            )
        out["xlsx"] = tuple(
            _sheets(commands.render(r, f, "xlsx", produced)) for r, f in ((reference, ref_facts), (sql, sql_facts))
        )
        out["totals_only"] = commands.render(sql, sql_facts, "json", produced, grants=False)
        pages, after = [], None
        while True:
            page = commands.grant_lines(uow, programme_id, as_of, after, 37)
            pages += page["grants"]
            after = page["next"]
            if after is None:
                break
        out["pages"] = pages
        return out


def _sheets(content: bytes) -> dict:
    book = load_workbook(io.BytesIO(content))
    return {ws.title: [[cell.value for cell in row] for row in ws.iter_rows()] for ws in book.worksheets}


@pytest.mark.parametrize(
    "programme_id, as_of",
    [
        ("JMDI", None),
        (None, None),
        ("JMDI", date(2009, 12, 31)),
        ("JMDI", date(2010, 9, 30)),
        ("JMDI", date(2011, 4, 15)),
        ("OTHER", None),
        ("JMDI", date(2009, 1, 1)),
    ],
)
def test_sql_report_equals_the_reference(engine, loaded, programme_id, as_of):
    out = _both(engine, programme_id, as_of)
    reference_json, sql_json = out["json"]
    assert sql_json == reference_json
    assert out["csv"][1] == out["csv"][0]
    assert out["table"][1] == out["table"][0]
    assert out["xlsx"][1] == out["xlsx"][0]
    totals_only = out["totals_only"]
    assert "grants" not in totals_only and totals_only == {k: v for k, v in reference_json.items() if k != "grants"}
    assert out["pages"] == reference_json["grants"]


def test_the_edges_are_exercised(engine, loaded):
    """The data set really holds the edges the comparison is meant to cover."""
    data = _both(engine, "JMDI", None)["json"][0]
    assert data["declined_grants"] == 2 and data["amended_grants"] == 12 and data["terminated_grants"] == 2
    assert data["recovered_eur"] == "1234.56" and D(data["decommitted_eur"]) > 0
    assert D(data["payments_requested_unpaid_eur"]) > 0
    unmatched = data["unmatched_facts"]  # expenditure of the grant declined before payment counts too
    assert (unmatched["tranches"], unmatched["decommitments"]) == (1, 1) and unmatched["expenditures"] > 1
    assert D(data["contracted_eur"]) < D(data["committed_eur"])


def test_gauges_read_the_report_totals(engine, loaded):
    with Session(engine) as session:
        headline = queries.headline_totals(session)
        report, _ = commands.build_report(SessionUow(session), None, None)
    assert headline.windows == {w.window: (w.allocation, w.committed, w.disbursed) for w in report.by_window}
    assert headline.countries == {c.country: (c.committed, c.disbursed) for c in report.by_country}


def assert_same_conflict(session) -> Conflict:
    """Both paths refuse the facts with the same Conflict (returned)."""
    uow = SessionUow(session)
    with pytest.raises(Conflict) as python_error:
        commands.build_report_in_python(uow, "JMDI", None)
    with pytest.raises(Conflict) as sql_error:
        commands.build_report(uow, "JMDI", None)
    assert sql_error.value.args == python_error.value.args
    return sql_error.value


def test_inconsistent_facts_are_a_conflict_on_both_paths(engine, loaded):
    with Session(engine) as session:
        g = loaded.grants[-1]  # neither amended nor closed
        session.execute(
            insert(DecommitmentRow),
            [
                {
                    "decommitment_id": "DC-too-much",
                    "grant_id": g.grant_id,
                    "amount": g.committed + D("0.01"),
                    "reason": "x",
                    "decommitted_on": date(2012, 1, 1),
                }
            ],
        )
        standing.keep(session, [g.grant_id])
        assert_same_conflict(session)
        session.rollback()


def _tranche(grant_id: str, payment_id: str, number: int) -> dict:
    return {
        "payment_id": payment_id,
        "grant_id": grant_id,
        "tranche_number": number,
        "amount": D("1.00"),
        "value_date": date(2012, 2, 1),
        "bank_reference": "B",
        "paid_at": _at(date(2012, 2, 1)),
    }


@pytest.mark.parametrize("numbers", [(None,), (70, 70)])  # again a number already paid; two tranches numbered 70
def test_a_tranche_paid_twice_is_a_conflict_on_both_paths(engine, loaded, numbers):
    with Session(engine) as session:
        paid = loaded.tranches[0]
        session.execute(
            insert(TrancheRow),
            [
                _tranche(paid.grant_id, f"PAY-TWICE-{i}", paid.tranche_number if n is None else n)
                for i, n in enumerate(numbers)
            ],
        )
        tally_payments(session, [paid.grant_id])
        standing.keep(session, [paid.grant_id])
        assert "appears twice" in str(assert_same_conflict(session).args)
        session.rollback()


def test_tranche_numbers_64_apart_are_not_taken_for_the_same(engine, loaded):
    """The SQL looks for a number paid twice only where a grant's numbers, kept as a set of 64 bits, are fewer
    than its tranches: numbers that share a bit are then told apart by the numbers themselves."""
    with Session(engine) as session:
        grant_id = loaded.tranches[0].grant_id
        paid = {t.tranche_number for t in loaded.tranches if t.grant_id == grant_id}
        session.execute(insert(TrancheRow), [_tranche(grant_id, f"PAY-FAR-{n + 64}", n + 64) for n in paid])
        tally_payments(session, [grant_id])
        standing.keep(session, [grant_id])
        session.commit()
    try:
        out = _both(engine, "JMDI", None)
        assert out["json"][1] == out["json"][0]
    finally:
        with Session(engine) as session:
            session.execute(delete(TrancheRow).where(TrancheRow.payment_id.like("PAY-FAR-%")))
            tally_payments(session, [grant_id])
            standing.keep(session, [grant_id])
            session.commit()


def test_the_migration_fills_in_the_lines_the_projections_write(engine, loaded):
    """Budget lines of grants projected before budget_line_facts existed come from the migration's SQL: the
    same rows (EC parts included) as the projection writes."""
    path = Path(__file__).resolve().parents[2] / "services/reporting/migrations/versions/0007_budget_line_facts.py"
    spec = importlib.util.spec_from_file_location("budget_line_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    order = (BudgetLineRow.grant_id, BudgetLineRow.source, BudgetLineRow.heading)
    with Session(engine) as session:
        projected = session.execute(select(BudgetLineRow.__table__).order_by(*order)).all()
        session.execute(delete(BudgetLineRow))
        session.execute(text(migration._BACKFILL))
        filled = session.execute(select(BudgetLineRow.__table__).order_by(*order)).all()
        session.rollback()
    assert len(projected) > 1000 and filled == projected


def test_the_migration_fills_in_the_heading_columns_the_projections_write(engine, loaded):
    """Budgets and accepted expenditure projected before budget_facts and report_expenditure_facts existed come
    from the migration's SQL over their rows by heading: the same rows as the projection writes."""
    path = Path(__file__).resolve().parents[2] / "services/reporting/migrations/versions/0008_heading_columns.py"
    spec = importlib.util.spec_from_file_location("heading_columns_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with Session(engine) as session:
        for model, sql in ((BudgetRow, migration._BUDGETS), (ReportExpenditureRow, migration._EXPENDITURE)):
            table = model.__table__
            order = list(table.primary_key.columns)
            projected = session.execute(select(table).order_by(*order)).all()
            session.execute(delete(table))
            session.execute(text(sql))
            filled = session.execute(select(table).order_by(*order)).all()
            assert len(projected) > 200 and filled == projected
        session.rollback()


def test_the_migration_fills_in_the_contract_dates_the_fact_writer_copies(engine, loaded):
    """Grants projected before grant_facts.contract_signed_on existed get their contract's date from the
    migration's SQL: the same rows as the fact writer's copy gives (None for a grant not contracted)."""
    path = (
        Path(__file__).resolve().parents[2] / "services/reporting/migrations/versions/0009_grant_contract_signed_on.py"
    )
    spec = importlib.util.spec_from_file_location("contract_signed_on_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    query = select(GrantRow.grant_id, GrantRow.contract_signed_on).order_by(GrantRow.grant_id)
    with Session(engine) as session:
        copied = session.execute(query).all()
        session.execute(GrantRow.__table__.update().values(contract_signed_on=None))
        session.execute(text(migration._FILL))
        filled = session.execute(query).all()
        session.rollback()
    signed = {grant_id for grant_id, on in copied if on is not None}
    assert 200 < len(signed) < len(copied) and filled == copied


def test_the_report_of_everything_recorded_reads_the_standing_rows(engine, loaded):
    """Without a date the report reads each grant's paid total from grant_standing, not from the tranches: a row
    out of step with its tranches shows (the comparison with the reference above is then the writer's proof); as
    of a date it aggregates the tranches."""
    grant_id = loaded.tranches[0].grant_id

    def paid_by_window(uow, as_of):
        return sum((w.disbursed for w in commands.build_report(uow, "JMDI", as_of)[0].by_window), D("0.00"))

    with Session(engine) as session:
        uow = SessionUow(session)
        before, as_of = paid_by_window(uow, None), paid_by_window(uow, date(2030, 1, 1))
        assert before == as_of > 0
        session.execute(text("UPDATE grant_standing SET paid = paid + 100 WHERE grant_id = :g"), {"g": grant_id})
        assert paid_by_window(uow, None) == before + D("1.00")
        assert paid_by_window(uow, date(2030, 1, 1)) == as_of
        session.rollback()


def test_the_migration_fills_in_the_payments_rows_the_fact_writer_keeps(engine, loaded):
    """Tranches projected before grant_payments existed give their grants' rows by the migration's SQL: the same
    rows as the fact writer's tally (unknown grants' and another programme's too)."""
    path = Path(__file__).resolve().parents[2] / "services/reporting/migrations/versions/0010_grant_payments.py"
    spec = importlib.util.spec_from_file_location("grant_payments_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    query = text("SELECT grant_id, paid, tranches, tranche_numbers FROM grant_payments ORDER BY grant_id")
    with Session(engine) as session:
        tallied = session.execute(query).all()
        session.execute(text("DELETE FROM grant_payments"))
        session.execute(text(migration._FILL))
        filled = session.execute(query).all()
        session.rollback()
    assert len(tallied) > 60 and {"G-UNKNOWN", "OTHER-G1"} <= {row[0] for row in tallied} and filled == tallied


def test_a_heading_only_in_budgets_that_do_not_count_is_not_shown(engine):
    """Headings come and go with the budgets that count: one only in a grant declined before payment, one only in
    an award budget an amendment replaced, one only in a grant awarded after the date are not in the report, on
    either path (the SQL sums every award budget and takes those grants back out)."""
    with reporting_database("report_sql_headings") as edge, Session(edge) as session:
        session.execute(
            insert(ProgrammeRow),
            [
                {
                    "programme_id": "EDGE",
                    "name": "Edges",
                    "envelope": D("900000.00"),
                    "period_start": None,
                    "period_end": None,
                }
            ],
        )
        session.execute(
            insert(WindowRow),
            [
                {
                    "call_id": "E-1",
                    "window": "w1",
                    "programme_id": "EDGE",
                    "name": "W",
                    "allocation": D("900000.00"),
                    "position": 0,
                }
            ],
        )
        budgets = {
            "E-A": {"human_resources": "60000.00"},  # counts as awarded
            "E-B": {"human_resources": "50000.00", "equipment_supplies": "10000.00"},  # declined before payment
            "E-C": {"human_resources": "40000.00", "travel": "20000.00"},  # replaced by an amendment's budget
            "E-D": {"human_resources": "50000.00", "other": "10000.00"},  # awarded after the date below
        }
        awarded = {"E-A": date(2010, 1, 4), "E-B": date(2010, 1, 5), "E-C": date(2010, 1, 6), "E-D": date(2011, 3, 1)}
        grants = [
            {
                "grant_id": g,
                "proposal_id": "P-" + g,
                "programme_id": "EDGE",
                "reference": "REF-" + g,
                "title": "Grant " + g,
                "call_id": "E-1",
                "window": "w1",
                "country": "MA",
                "applicant_type": "ngo",
                "lead_organisation": "Association " + g,
                "amount": sum(D(v) for v in budget.values()),
                "budget": budget,
                "decision_reference": "D-" + g,
                "decision_date": awarded[g],
                "awarded_at": _at(awarded[g]),
            }
            for g, budget in budgets.items()
        ]
        session.execute(insert(GrantRow), grants)
        amended = {"human_resources": "60000.00"}
        session.execute(
            insert(AmendmentRow),
            [
                {
                    "amendment_id": "E-C-1",
                    "grant_id": "E-C",
                    "kind": "budget",
                    "amount": D("60000.00"),
                    "duration_months": 24,
                    "budget": amended,
                    "occurred_at": _at(date(2010, 6, 1)),
                    "effective_on": date(2010, 6, 1),
                }
            ],
        )
        _insert_budgets(
            session,
            [(g["grant_id"], "award", g["amount"], g["budget"]) for g in grants]
            + [("E-C", "E-C-1", D("60000.00"), amended)],
        )
        session.execute(
            insert(ClosureRow),
            [
                {
                    "grant_id": "E-B",
                    "kind": "declined",
                    "paid": D("0.00"),
                    "accepted_expenditure": D("0.00"),
                    "recovery": D("0.00"),
                    "closed_on": date(2010, 2, 1),
                }
            ],
        )
        standing.compute_all(session)
        session.commit()
        for as_of in (None, date(2010, 12, 31)):
            out = _both(edge, "EDGE", as_of)
            reference_json, sql_json = out["json"]
            assert sql_json == reference_json
            assert out["csv"][1] == out["csv"][0]
            assert out["xlsx"][1] == out["xlsx"][0]
            assert out["totals_only"] == {k: v for k, v in reference_json.items() if k != "grants"}
            shown = {h["heading"] for h in sql_json["headings"]}
            assert shown == ({"human_resources", "other"} if as_of is None else {"human_resources"}), as_of
