"""A hot statement PostgreSQL parses, analyses and plans once per connection, not at every run.

psycopg2 sends every statement as text with its values in it, so the server parses, analyses and plans it anew
each time: for a long statement of few rows (a submission's one-statement write, its CTEs and casts) that is
more of the server's CPU than running it. `PreparedStatement` turns a SQLAlchemy text statement into
`PREPARE <name> (<types>) AS <the statement, $1...>`, sent once on each connection that runs it (the connection's
`info`, which SQLAlchemy empties when it reconnects, remembers it), and `EXECUTE <name> (:values)`, whose values
the statement's own bind types process as before. After a few runs PostgreSQL keeps a generic plan when it costs
no more than a custom one (plan_cache_mode auto). A prepared statement lives as long as its connection, whatever
the transaction does, and is analysed again after a change to the tables it names. PostgreSQL with psycopg2 only.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import bindparam, text
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
        self._forms: dict[tuple[str, str], tuple[str, str, TextClause]] = {}

    def run(self, connection: Connection, values: dict) -> CursorResult:
        """The statement's result for `values`, preparing it first if this connection has not yet."""
        dialect = connection.dialect
        key = (dialect.name, dialect.driver)
        if key not in self._forms:
            self._forms[key] = self._forms_for(dialect)
        name, prepare, execute = self._forms[key]
        prepared = connection.info.setdefault(_INFO_KEY, set())
        if name not in prepared:
            connection.exec_driver_sql(prepare)
            prepared.add(name)
        return connection.execute(execute, values)

    def _forms_for(self, dialect) -> tuple[str, str, TextClause]:
        compiled = self.statement.compile(dialect=dialect)
        order: list[str] = []

        def numbered(match: re.Match) -> str:
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"

        # the driver still formats a statement sent without values, so the dialect's escaping (%%) stays
        body = _PLACEHOLDER.sub(numbered, compiled.string)
        binds = [compiled.binds[name] for name in order]
        # a value without a type is left to PostgreSQL to infer from where it is first used
        types = ", ".join("unknown" if isinstance(b.type, NullType) else b.type.compile(dialect=dialect) for b in binds)
        name = f"{self.name_hint}_{hashlib.sha1(body.encode()).hexdigest()[:16]}"
        arguments = ", ".join(f":{key}" for key in order)
        execute = text(f"EXECUTE {name} ({arguments})").bindparams(*[bindparam(b.key, type_=b.type) for b in binds])
        return name, f"PREPARE {name} ({types}) AS {body}", execute
