"""Every projector has its counterpart in the set-based rebuild (services/reporting/rebuild_sql.py), so an event
type or a fact table added to the Python projections cannot be forgotten there; the proof that each computes the
same rows is tests/integration/test_reporting_rebuild_sql.py."""

from services.reporting.models import PROJECTION_TABLES, GrantStandingRow
from services.reporting.projections import PROJECTORS
from services.reporting.rebuild_sql import FACTS, SHADOW

POSTGRES_NAME_MAX = 63


def test_every_projected_event_type_is_read_by_the_sql_rebuild():
    read = {event_type for fact in FACTS for event_type in fact.event_types}
    assert read == set(PROJECTORS)


def test_every_fact_table_is_computed_once_by_the_sql_rebuild():
    derived_from_facts = {GrantStandingRow.__tablename__}  # rebuild_sql._derive_standing, from the new fact tables
    assert sorted(fact.model.__tablename__ for fact in FACTS) == sorted(
        m.__tablename__ for m in PROJECTION_TABLES if m.__tablename__ not in derived_from_facts
    )


def test_each_fact_sql_reads_only_its_own_event_types():
    for fact in FACTS:
        named = {event_type for event_type in PROJECTORS if f"'{event_type}'" in fact.rows}
        assert named == set(fact.event_types), fact.model.__tablename__


def test_the_keys_are_the_tables_primary_keys():
    for fact in FACTS:
        assert fact.key == tuple(c.name for c in fact.model.__table__.primary_key.columns), fact.model.__tablename__


def test_the_new_tables_and_indexes_names_fit_in_postgresql():
    for model in PROJECTION_TABLES:
        table = model.__table__
        names = [table.name, f"{table.name}_pkey"] + [index.name for index in table.indexes]
        assert all(len(f"{name}{SHADOW}") <= POSTGRES_NAME_MAX for name in names), names


def test_only_rows_keyed_by_their_event_skip_the_first_row_wins_sort():
    # the archive holds an event id once; a jsonb object's keys are distinct: such keys cannot repeat
    for fact in FACTS:
        if fact.unique:
            assert fact.key[0] == "event_id" and len(fact.key) <= 2, fact.model.__tablename__
