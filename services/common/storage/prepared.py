"""A hot statement PostgreSQL parses, analyses and plans once per connection, not at every run.

psycopg2 sends every statement as text with its values in it, so the server parses, analyses and plans it anew
each time: for a long statement of few rows (a submission's one-statement write, its CTEs and casts) that is
more of the server's CPU than running it. `PreparedStatement` turns a SQLAlchemy text statement into
`PREPARE <name> (<types>) AS <the statement, $1...>`, sent once on each connection that runs it (the connection's
`info`, which SQLAlchemy empties when it reconnects, remembers it), and `EXECUTE <name> (values)`, the values
processed by the statement's own bind types as before. After a few runs PostgreSQL keeps a generic plan when it costs
no more than a custom one (plan_cache_mode auto). A prepared statement lives as long as its connection, whatever
the transaction does, and is analysed again after a change to the tables it names. PostgreSQL with psycopg2 only.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import NullType

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_INFO_KEY = "prepared_statements"


class PreparedStatement:
    """`statement` (text with typed bind parameters) prepared as `name_hint`_<digest of its text>, in the form of
    the dialect of the first connection that runs it."""

    def __init__(self, statement: TextClause, name_hint: str):
        self.statement, self.name_hint = statement, name_hint
        self._forms: dict[tuple[str, str], _Forms] = {}

    def run(self, connection: Connection, values: dict) -> CursorResult:
        """The statement's result for `values`, preparing it first if this connection has not yet. The values go
        through their types' bind processing (JSON serialised, say) as in a compiled statement; the EXECUTE is sent
        as the driver's own SQL, sparing SQLAlchemy's compiled-statement work at every run."""
        dialect = connection.dialect
        key = (dialect.name, dialect.driver)
        if key not in self._forms:
            self._forms[key] = _forms_for(self.statement, self.name_hint, dialect)
        forms = self._forms[key]
        prepared = connection.info.setdefault(_INFO_KEY, set())
        if forms.name not in prepared:
            connection.exec_driver_sql(forms.prepare)
            prepared.add(forms.name)
        bound = {key: values[key] if process is None else process(values[key]) for key, process in forms.processors}
        return connection.exec_driver_sql(forms.execute, bound)


class _Forms(NamedTuple):
    name: str
    prepare: str  # PREPARE <name> (<types>) AS <the statement, $1...>
    execute: str  # EXECUTE <name> (%(key)s, ...), the driver's placeholders
    processors: tuple  # (key, the bind type's processor or None), in $n order


def _forms_for(statement: TextClause, name_hint: str, dialect) -> _Forms:
    compiled = statement.compile(dialect=dialect)
    order: list[str] = []

    def numbered(match: re.Match) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    # the driver still formats a statement sent without values, so the dialect's escaping (%%) stays
    body = _PLACEHOLDER.sub(numbered, compiled.string)
    binds = [compiled.binds[key] for key in order]
    # a value without a type is left to PostgreSQL to infer from where it is first used
    types = ", ".join("unknown" if isinstance(b.type, NullType) else b.type.compile(dialect=dialect) for b in binds)
    name = f"{name_hint}_{hashlib.sha1(body.encode()).hexdigest()[:16]}"
    return _Forms(
        name,
        f"PREPARE {name} ({types}) AS {body}",
        f"EXECUTE {name} ({', '.join(f'%({key})s' for key in order)})",
        tuple((b.key, b.type._cached_bind_processor(dialect)) for b in binds),
    )
