"""Statements of the write path on the driver's cursor: SQLAlchemy compiles each once, nothing per call.

A Core statement executed through `Connection.execute` costs about 20 µs of Python
before the driver sees it (the compiled-cache lookup, an execution context, parameter
processing, result metadata; an expanding `IN` is expanded again on every execution),
where the driver's own `cursor.execute` costs 1 to 2 µs. A `SubmitReport` runs about ten
statements, in the one writer thread every report passes through, while the gRPC threads
wait for the interpreter lock: that overhead was a third of the writer's time.

`Prepared(statement)` compiles the statement for the connection's dialect the first time
(per number of values of each expanding parameter, at most `_SIZES` forms), keeps the SQL
text, the order of its parameters and the bind and result processors of the columns'
own types (SQLite's DATETIME strings, JSON, booleans: the same conversions SQLAlchemy
makes, taken from it), then executes on the connection's driver cursor, in the
connection's transaction. A driver error is raised as SQLAlchemy's `DBAPIError`, as
`Connection.execute` raises it, so conflict retries and deadlines (database.py) treat it
the same; parameters are never shown in it (`hide_parameters`, as the engines are made).

Only for statements whose every value the caller passes: an INSERT whose table has a
Python-side default for a column the caller leaves out is refused when compiled.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
_SIZES = 64  # compiled forms kept per statement (one per list length of its expanding parameters)


class _Form(NamedTuple):
    sql: str
    # each parameter in the SQL's order: (key in the values, index in its list or None, None), or (None, None, the
    # statement's own value: a literal such as `status.in_(OPEN)`)
    sources: tuple[tuple[str | None, int | None, Any], ...]
    binds: tuple[Processor, ...]
    names: tuple[str, ...] | None  # the parameters' names (a named paramstyle, PostgreSQL's), None: positional
    row: Any  # the rows' namedtuple class (fields named as the columns), None: no rows
    results: tuple[Processor, ...] | None  # None: no column needs converting


class Prepared:
    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        # The parameters the caller gives a list for (`bindparam(..., expanding=True)`: an IN list).
        compiled = statement.compile()
        assert isinstance(compiled, SQLCompiler)
        self._expanding = sorted({b.key for b in compiled.binds.values() if b.expanding and b.value is None})
        self._forms: dict[tuple[Any, ...], _Form] = {}
        self._lock = threading.Lock()

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[Any]:
        """The statement's rows for `values` (named tuples, fields as the columns' keys)."""
        form = self._form(conn.dialect, values)
        # SQLite runs a statement's later steps in fetchall: its errors (a deadline's interrupt, a lock) too are SQLAlchemy's
        found = self._run(conn, form, lambda c: (c.execute(form.sql, _parameters(form, values)), c.fetchall())[1])
        assert form.row is not None
        if form.results is not None:
            return [form.row._make(p(v) if p else v for p, v in zip(form.results, row, strict=True)) for row in found]
        return [form.row._make(row) for row in found]

    def scalar(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the only row."""
        (row,) = self.rows(conn, values)
        return row[0]

    def execute(self, conn: Connection, values: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> None:
        """Run the statement once per mapping in `values` (all with the same keys), or once for one mapping."""
        many = list(values) if not isinstance(values, Mapping) else [values]
        if not many:
            return
        form = self._form(conn.dialect, many[0])
        self._run(conn, form, lambda c: c.executemany(form.sql, [_parameters(form, v) for v in many]))

    def _run(self, conn: Connection, form: _Form, call: Callable[[Any], Any]) -> Any:
        dbapi = conn.dialect.loaded_dbapi
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = None
        try:
            cursor = raw.cursor()
            return call(cursor)
        except dbapi.Error as error:
            # As `Connection.execute` does for the connection itself: one the server ended (or that was closed) is
            # invalidated, so the pool never hands it out again and the transaction's rollback does not fail on it in
            # place of this error. Unlike it, the pool's other connections are not all discarded: PostgreSQL's engine
            # checks each one as it is taken (pool_pre_ping), and a closed SQLite connection is only ever this one.
            gone = bool(conn.dialect.is_disconnect(error, raw, cursor))
            if gone and not conn.invalidated:
                conn.invalidate(error)
            raise DBAPIError.instance(
                form.sql, None, error, dbapi.Error, hide_parameters=True, connection_invalidated=gone, dialect=conn.dialect) from error
        finally:
            if cursor is not None:
                with contextlib.suppress(dbapi.Error):  # a closed connection's cursor may refuse to close
                    cursor.close()

    def _form(self, dialect: Dialect, values: Mapping[str, Any]) -> _Form:
        key = (dialect.name, tuple(values), *(len(values[name]) for name in self._expanding))
        form = self._forms.get(key)
        if form is None:
            with self._lock:
                if len(self._forms) >= _SIZES:  # the oldest form goes: a list length seen again is compiled again
                    self._forms.pop(next(iter(self._forms)))
                form = self._forms[key] = _compile(self.statement, dialect, values)
        return form


def _parameters(form: _Form, values: Mapping[str, Any]) -> Any:
    converted = []
    for (key, index, constant), process in zip(form.sources, form.binds, strict=True):
        value = constant if key is None else values[key] if index is None else values[key][index]
        converted.append(value if process is None else process(value))
    return converted if form.names is None else dict(zip(form.names, converted, strict=True))


def _compile(statement: ClauseElement, dialect: Dialect, values: Mapping[str, Any]) -> _Form:
    columns = [(c.key, c.type) for c in getattr(statement, "exported_columns", ())]
    # A statement without rows of its own runs through executemany: no implicit RETURNING of the new primary key.
    compiled = statement.compile(dialect=dialect, column_keys=list(values), for_executemany=not columns)
    assert isinstance(compiled, SQLCompiler)
    if compiled.insert_prefetch or compiled.update_prefetch:
        missing = sorted(c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch))
        raise ValueError(f"a prepared statement must be given every column's value; {missing} would take Python-side defaults")
    state = compiled.construct_expanded_state(dict(values))  # the SQL with each IN list as long as these values'
    origin = {flat: (name, i) for name, flats in state.parameter_expansion.items() for i, flat in enumerate(flats)}
    order = state.positiontup if compiled.positional else list(state.parameters)
    assert order is not None
    sources, binds = [], []
    for name in order:
        base, index = origin.get(name, (name, None))
        sources.append((base, index, None) if base in values else (None, None, state.parameters[name]))
        binds.append(compiled.binds[base].type.dialect_impl(dialect).bind_processor(dialect))
    row = collections.namedtuple("Row", [key for key, _ in columns], rename=True) if columns else None
    results: tuple[Processor, ...] | None = tuple(t.dialect_impl(dialect).result_processor(dialect, None) for _, t in columns)
    if results is not None and not any(results):
        results = None
    return _Form(state.statement, tuple(sources), tuple(binds), None if compiled.positional else tuple(order), row, results)
