"""Engines, connections and transactions. The only place that opens a Session."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session


T = TypeVar("T")
log = logging.getLogger("jpr.store")

_BUSY_TIMEOUT_MS = 30_000
_RETRIES = 12


class SchemaError(RuntimeError):
    """The database is not ready for this version of the registry."""


class Database:
    """One registry database: SQLite (embedded) or PostgreSQL."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _create_engine(url, pool_size)
        self._after_write: list[Callable[[], None]] = []

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self, *, repeatable: bool = False) -> Iterator[Connection]:
        """A connection in a read transaction (Core statements).

        `repeatable`: every statement sees the same snapshot. SQLite's read
        transactions always do; PostgreSQL's default (READ COMMITTED) takes a
        new snapshot per statement.
        """
        with self.engine.connect() as conn:
            if repeatable and not self.is_sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def after_write(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each write transaction this object commits."""
        self._after_write.append(listener)

    def write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction; all of it commits or none.

        Lock conflicts are retried here with bounded backoff so that they never
        reach a client; `work` must therefore be safe to run again.
        """
        for attempt in range(_RETRIES):
            try:
                result = self._write_once(work)
            except DBAPIError as error:
                if attempt == _RETRIES - 1 or not _is_conflict(error):
                    raise
                log.info("write conflict (%s), retry %d", _conflict_name(error), attempt + 1)
                time.sleep(random.uniform(0.5, 1.0) * min(0.005 * 2**attempt, 0.5))
                continue
            for listener in self._after_write:
                listener()
            return result
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
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
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
