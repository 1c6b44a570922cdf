"""Engines, connections and transactions. The only place that opens a Session."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool


T = TypeVar("T")
log = logging.getLogger("jpr.store")

_BUSY_TIMEOUT_MS = 30_000
_RETRIES = 12


class SchemaError(RuntimeError):
    """The database is not ready for this version of the registry."""


@dataclass(frozen=True)
class Prepared:
    sql: str
    names: tuple[str, ...]
    positional: bool


class HeldReads:
    """Single-statement reads for the lookup hot path.

    Each server thread keeps its own DBAPI connection in autocommit: one
    statement is its own snapshot, so a lookup costs no BEGIN/COMMIT and no
    pool checkout. PostgreSQL prepares a statement after a few executions
    (psycopg's prepare_threshold). The connections come from an engine of
    their own, so they never starve the pool that writers use.
    """

    def __init__(self, url: str) -> None:
        self._engine = _create_engine(url, 0)
        self._local = threading.local()
        self._held: list[Any] = []
        self._lock = threading.Lock()

    def prepare(self, statement: Executable, **shape: Any) -> Prepared:
        """A Core statement as this driver's SQL text, built once; list parameters take the sizes in `shape`."""
        state = statement.compile(dialect=self._engine.dialect).construct_expanded_state(shape)  # type: ignore[attr-defined]
        positional = state.positiontup is not None
        return Prepared(state.statement, tuple(state.positiontup if positional else state.parameters), positional)

    def run(self, prepared: Prepared, values: Sequence[Any]) -> list[Any]:
        """Rows of a prepared statement; `values` in the order of its parameters."""
        params = list(values) if prepared.positional else dict(zip(prepared.names, values))
        return self.rows(prepared.sql, params)

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        try:
            return self._rows(sql, params)
        except Exception:
            self._drop()  # a broken connection is replaced on the next call
            raise

    def _rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _connection(self) -> Any:
        held = getattr(self._local, "connection", None)
        if held is None:
            held = self._engine.raw_connection()  # runs the connect hooks (SQLite pragmas)
            if self._engine.dialect.name != "sqlite":
                held.driver_connection.autocommit = True  # type: ignore[union-attr]
            self._local.connection = held
            with self._lock:
                self._held.append(held)
        return held.dbapi_connection

    def _drop(self) -> None:
        held = getattr(self._local, "connection", None)
        self._local.connection = None
        if held is not None:
            with self._lock:
                self._held.remove(held)
            held.invalidate()

    def close(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            connection.invalidate()
        self._engine.dispose()


class Database:
    """One registry database: SQLite (embedded) or PostgreSQL."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _create_engine(url, pool_size)
        self._hot: HeldReads | None = None
        self._hot_lock = threading.Lock()

    @property
    def hot(self) -> HeldReads:
        hot = self._hot  # every call reads it: take the lock only to create it
        if hot is not None:
            return hot
        with self._hot_lock:
            if self._hot is None:
                self._hot = HeldReads(self.url)
            return self._hot

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        with self._hot_lock:
            hot, self._hot = self._hot, None
        if hot is not None:
            hot.close()
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction (lookups: Core statements)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction; all of it commits or none.

        Lock conflicts are retried here with bounded backoff so that they never
        reach a client; `work` must therefore be safe to run again.
        """
        for attempt in range(_RETRIES):
            try:
                return self._write_once(work)
            except DBAPIError as error:
                if attempt == _RETRIES - 1 or not _is_conflict(error):
                    raise
                log.info("write conflict (%s), retry %d", _conflict_name(error), attempt + 1)
                time.sleep(random.uniform(0.5, 1.0) * min(0.005 * 2**attempt, 0.5))
        raise AssertionError("unreachable")

    def _write_once(self, work: Callable[[Session], T]) -> T:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                # Take the write lock at BEGIN, so no transaction fails half-way on upgrade.
                conn.execution_options(jpr_begin="BEGIN IMMEDIATE")
            else:
                # Concurrent replicas: PostgreSQL detects any interleaving that differs
                # from some serial order and aborts one side, which is retried above.
                conn.execution_options(isolation_level="SERIALIZABLE")
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                return work(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only ORM session (admin listings)."""
        with Session(self.engine) as session, session.begin():
            yield session


# serialization_failure, deadlock_detected, unique_violation (two writers racing to insert the same key)
_RETRIED_SQLSTATES = {"40001", "40P01", "23505"}


def _conflict_name(error: DBAPIError) -> str:
    return getattr(error.orig, "sqlstate", None) or str(error.orig).split("\n")[0]


def _is_conflict(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _RETRIED_SQLSTATES
    text = str(error.orig).lower()
    return isinstance(error, OperationalError) and ("locked" in text or "busy" in text)


def _create_engine(url: str, pool_size: int) -> Engine:
    """pool_size 0: no pool (each connection is opened for, and held by, its caller)."""
    pooling: dict[str, Any] = {"poolclass": NullPool} if pool_size == 0 else {"pool_size": pool_size}
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=pool_size > 0, **pooling)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        **pooling,
    )
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself, so writers can take the
    # write lock at BEGIN (IMMEDIATE) instead of failing on upgrade later.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    # Lookups probe a token index far larger than SQLite's default 2 MB page cache:
    # map the file instead of copying pages through read() on every probe.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.close()


def _begin_sqlite(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get("jpr_begin", "BEGIN"))
