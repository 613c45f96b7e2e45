"""A submission's write on PostgreSQL as one statement in its own transaction (autocommit: no BEGIN, no COMMIT),
for a call whose definitions the process already holds.

The statement checks that the call's and the programme's rows are still the versions (xmin) the definitions were
built from and that no newer exclusion list was loaded, holding the call FOR SHARE as the first way's read does (a
close waits for it). It then takes the reference's number (the sequence row's upsert), inserts the proposal, and
writes the proposal's events to the outbox, in the order emitted, and their audit rows. The reference exists only
once the number is taken, so the proposal's data, the events' bodies and the audit details are bound with a
stand-in the statement replaces by the reference. It writes all of that or nothing: it returns the reference, or
None having written nothing (a row changed, the key already used, a year's numbers used up), or fails on the
idempotency key's unique index, having written nothing, when another submission of the key committed meanwhile."""

import functools
from typing import NamedTuple

from sqlalchemy import Column, Table, bindparam, text
from sqlalchemy.dialects import postgresql

from services.common.storage.prepared import PreparedStatement
from services.common.storage.tables import audit_log, outbox

from .models import ProposalRow, ReferenceSequence

_DIALECT = postgresql.dialect()
_QUOTE = _DIALECT.identifier_preparer


class RowVersions(NamedTuple):
    """What the definitions held for a call were built from: the rows' xmin and the latest exclusion list."""

    call: str
    programme: str
    exclusion_list: int | None


def write_submission(
    connection,
    proposal: dict,
    events: list[dict],
    audit: list[dict],
    *,
    stand_in: str,
    prefix: str,
    versions: RowVersions,
) -> str | None:
    """The proposal's reference, or None if nothing was written. `connection` is in autocommit; `proposal` holds
    every column but the reference; `events` and `audit` are the unit of work's outbox and audit rows
    (UnitOfWork.take_event_rows)."""
    statement = _statement(tuple(proposal), tuple(events[0]), len(events), tuple(audit[0]) if audit else (), len(audit))
    values = {
        "call_version": versions.call,
        "programme_version": versions.programme,
        "list_id": versions.exclusion_list,
        "prefix": prefix,
        "quoted_stand_in": _json_string(stand_in),
        **{f"p_{key}": value for key, value in proposal.items()},
    }
    for tag, rows in (("o", events), ("a", audit)):
        for n, row in enumerate(rows):
            values.update({f"{tag}{n}_{key}": value for key, value in row.items()})
    return statement.run(connection, values).scalar_one_or_none()


def _json_string(value: str) -> str:
    """The stand-in as it appears in JSON text: quoted, so only a whole string value equal to it is replaced."""
    assert value.isprintable() and '"' not in value and "\\" not in value, "a stand-in needs no escaping"
    return f'"{value}"'


def _typed(expression: str, column: Column) -> str:
    return f"CAST({expression} AS {column.type.compile(dialect=_DIALECT)})"


def _with_reference(expression: str, column: Column, source: str) -> str:
    """The JSON text with the stand-in replaced by the reference of `source`'s row."""
    return _typed(f"replace(CAST({expression} AS TEXT), :quoted_stand_in, '\"' || {source}.reference || '\"')", column)


def _rows_of(table, keys: tuple[str, ...], count: int, bind_prefix: str, replaced: str, source: str) -> str:
    """INSERT of `count` rows into `table` after `source`'s one row, in their order (the ids the table's sequence
    gives follow it), the `replaced` column's stand-in replaced by the reference."""
    names = ", ".join(_QUOTE.quote(table.c[k].name) for k in keys)
    rows = ", ".join("(" + ", ".join([str(n)] + [f":{bind_prefix}{n}_{k}" for k in keys]) + ")" for n in range(count))
    picked = ", ".join(
        _with_reference(f"e.{_QUOTE.quote(k)}", table.c[k], source)
        if k == replaced
        else _typed(f"e.{_QUOTE.quote(k)}", table.c[k])
        for k in keys
    )
    columns = ", ".join(["ordinal"] + [_QUOTE.quote(k) for k in keys])
    return (
        f"INSERT INTO {_QUOTE.format_table(table)} ({names}) SELECT {picked} "
        f"FROM {source} CROSS JOIN (VALUES {rows}) AS e({columns}) ORDER BY e.ordinal"
    )


@functools.lru_cache(maxsize=16)
def _statement(proposal_keys: tuple, event_keys: tuple, events: int, audit_keys: tuple, audits: int):
    """Built once per shape (the columns, how many events and audit rows), the values being parameters; prepared
    once per connection (PostgreSQL's parse, analysis and planning were half its CPU per submission)."""
    proposals, sequences = ProposalRow.__table__, ReferenceSequence.__table__
    assert isinstance(sequences, Table)
    proposal_names = ", ".join(_QUOTE.quote(proposals.c[k].name) for k in ("reference", *proposal_keys))
    proposal_values = ", ".join(
        ["reference.reference"]
        + [
            _with_reference(f":p_{k}", proposals.c[k], "reference")
            if k == "data"
            else _typed(f":p_{k}", proposals.c[k])
            for k in proposal_keys
        ]
    )
    ctes = [
        # the call locked FOR SHARE, as the first way's read locks it; no row if any version moved
        "context AS (SELECT calls.id FROM calls JOIN programmes ON programmes.id = calls.programme_id"
        " WHERE calls.id = :p_call_id AND calls.xmin = CAST(:call_version AS xid)"
        " AND programmes.xmin = CAST(:programme_version AS xid)"
        " AND (SELECT max(exclusion_lists.id) FROM exclusion_lists) IS NOT DISTINCT FROM CAST(:list_id AS BIGINT)"
        " FOR SHARE OF calls)",
        # no number for a key already used, nor past 9999 (proposal_reference's bound: the first way refuses it)
        f"number AS (INSERT INTO {_QUOTE.format_table(sequences)} (prefix, country, last)"
        " SELECT :prefix, :p_target_country, 1 FROM context WHERE NOT EXISTS"
        f" (SELECT FROM {_QUOTE.format_table(proposals)} WHERE idempotency_key = :p_idempotency_key)"
        f" ON CONFLICT (prefix, country) DO UPDATE SET last = {sequences.name}.last + 1"
        f" WHERE {sequences.name}.last < 9999 RETURNING last)",
        # proposal_reference's form
        "reference AS (SELECT :prefix || '-' || :p_target_country || '-' || lpad(CAST(last AS TEXT), 4, '0')"
        " AS reference FROM number)",
        # no ON CONFLICT: a key committed meanwhile fails the statement, its number with it
        f"proposal AS (INSERT INTO {_QUOTE.format_table(proposals)} ({proposal_names}) SELECT {proposal_values}"
        " FROM reference RETURNING reference)",
        f"events AS ({_rows_of(outbox, event_keys, events, 'o', 'body', 'proposal')})",
    ]
    if audits:
        ctes.append(f"audit AS ({_rows_of(audit_log, audit_keys, audits, 'a', 'detail', 'proposal')})")
    sql = "WITH " + ",\n".join(ctes) + "\nSELECT reference FROM proposal"
    binds = [bindparam(f"p_{k}", type_=proposals.c[k].type) for k in proposal_keys]
    binds += [bindparam(f"o{n}_{k}", type_=outbox.c[k].type) for n in range(events) for k in event_keys]
    binds += [bindparam(f"a{n}_{k}", type_=audit_log.c[k].type) for n in range(audits) for k in audit_keys]
    return PreparedStatement(text(sql).bindparams(*binds), "submission")
