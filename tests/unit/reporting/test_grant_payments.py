"""The fact writer keeps each grant's payments row (grant_payments) on SQLite too (`make run`): computed again from
the grant's tranches after each batch's inserts, a payment given again not counted twice, a tranche number paid
under two payments counted once among the distinct numbers."""

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from services.reporting.models import Base
from tests.support.tranche_batches import write_tranches


def test_the_writer_keeps_each_grants_payments_row_on_sqlite():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        write_tranches(session, [("P1", "G1", 1, "10.00"), ("P2", "G1", 1, "5.50"), ("P1", "G1", 2, "1.00")])
        write_tranches(session, [("P1", "G1", 3, "99.00"), ("P3", "G2", 2, "1.00"), ("P4", "G1", 2, "0.01")])
        rows = session.execute(text("SELECT * FROM grant_payments ORDER BY grant_id")).all()
    assert rows == [("G1", 1551, 3, 2), ("G2", 100, 1, 1)]


BATCHES = [
    [("P1", "G1", 1, "10.00"), ("P2", "G2", 1, "3.00")],
    [("P1", "G1", 1, "10.00"), ("P3", "G1", 2, "2.50")],  # a payment given again
    [("P4", "G2", 1, "0.25"), ("P5", "G3", 1, "7.00")],  # a tranche number paid under a second payment
    [("P6", "G1", 3, "1.00")],
]


def test_the_rows_kept_batch_by_batch_are_the_rows_computed_from_every_tranche_in_any_order():
    from itertools import permutations

    from services.reporting.repository import tally_payments

    for order in permutations(BATCHES):
        engine = create_engine("sqlite://")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            for batch in order:
                write_tranches(session, batch)
            kept = session.execute(text("SELECT * FROM grant_payments ORDER BY grant_id")).all()
            tally_payments(session)  # every grant, from scratch
            computed = session.execute(text("SELECT * FROM grant_payments ORDER BY grant_id")).all()
        assert kept == computed == [("G1", 1350, 3, 3), ("G2", 325, 2, 1), ("G3", 700, 1, 1)], order
