"""Engines, connections and transactions. The only place that opens a Session."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from registry.domain.errors import DeadlineExceeded, Unavailable


T = TypeVar("T")
log = logging.getLogger("jpr.store")

_BUSY_TIMEOUT_MS = 30_000
_RETRIES = 30  # about 12 s of backoff in all; a call's deadline ends the retries sooner
_PROGRESS_STEPS = 10_000  # SQLite virtual-machine steps between deadline checks
# A call without a deadline reports about 9.2e18 s remaining (gRPC has no "none"); anything
# beyond a day is treated as no deadline. PostgreSQL's statement_timeout stops at 2^31-1 ms anyway.
_LONGEST_DEADLINE_SECONDS = 86_400.0
_CLOCK_SLACK_SECONDS = 0.05  # the database's timer and ours do not tick together

# When the call being served must be done (time.monotonic()), or None: see `set_deadline`.
_deadline: ContextVar[float | None] = ContextVar("jpr_deadline", default=None)


def set_deadline(seconds: float | None) -> Token[float | None]:
    """Database work from now on in this context gets at most `seconds` (a gRPC call's time
    remaining); `reset_deadline` with the returned token ends it.

    Carried down to the database: PostgreSQL's `statement_timeout` (the time
    left when the transaction begins); SQLite's busy timeout and a progress
    handler that interrupts a running statement. Once it has passed, the next
    statement or lock wait ends the work with `DeadlineExceeded` and the
    transaction rolls back; a write finishing at the deadline may still commit.
    None (or more than a day): no deadline.
    """
    end = None
    if seconds is not None and math.isfinite(seconds) and seconds <= _LONGEST_DEADLINE_SECONDS:
        end = time.monotonic() + seconds
    return _deadline.set(end)


def reset_deadline(token: Token[float | None]) -> None:
    _deadline.reset(token)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """`set_deadline` for the work inside the block."""
    token = set_deadline(seconds)
    try:
        yield
    finally:
        reset_deadline(token)


def current_deadline() -> float | None:
    """When the work of this context must be done (time.monotonic()), or None: see `set_deadline`."""
    return _deadline.get()


def _remaining_ms() -> int | None:
    end = _deadline.get()
    if end is None:
        return None
    remaining = int((end - time.monotonic()) * 1000)
    if remaining <= 0:
        raise DeadlineExceeded("the call's deadline passed; the registry abandoned its work on it (nothing was written)")
    return remaining


class Database:
    """One registry database: SQLite (embedded) or PostgreSQL."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _create_engine(url, pool_size)
        self._after_write: list[Callable[[], None]] = []
        self._on_conflict: list[Callable[[], None]] = []
        self._on_dispose: list[Callable[[], None]] = []

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        for listener in self._on_dispose:
            listener()
        self._on_dispose.clear()
        self.engine.dispose()

    def on_dispose(self, listener: Callable[[], None]) -> None:
        """Call `listener` when the database is disposed of, before its connections close."""
        self._on_dispose.append(listener)

    @contextmanager
    def read(self, *, repeatable: bool = False) -> Iterator[Connection]:
        """A connection in a read transaction (Core statements).

        `repeatable`: every statement sees the same snapshot. SQLite's read
        transactions always do; PostgreSQL's default (READ COMMITTED) takes a
        new snapshot per statement.
        """
        timeout = _remaining_ms()
        with self.engine.connect() as conn, _translating_timeouts():
            if repeatable and not self.is_sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                _limit_statements(conn, timeout, self.is_sqlite)
                yield conn

    def after_write(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each write transaction this object commits."""
        self._after_write.append(listener)

    def on_conflict(self, listener: Callable[[], None]) -> None:
        """Call `listener` each time a write transaction is run again after a conflict."""
        self._on_conflict.append(listener)

    def write(self, work: Callable[[Session], T], *, tell: bool = True) -> T:
        """Run `work` in one write transaction; all of it commits or none.

        Lock conflicts are retried here with bounded backoff, until the call's
        deadline, so that they rarely reach a client (then as UNAVAILABLE, which
        clients retry); `work` must therefore be safe to run again.
        `tell=False`: the caller calls `tell_written` itself (once for several writes).
        """
        for attempt in range(_RETRIES):
            timeout = _remaining_ms()  # no new attempt once the caller's deadline passed
            try:
                with _translating_timeouts():
                    result = self._write_once(work, timeout)
            except DBAPIError as error:
                if not _is_conflict(error):
                    raise
                if attempt == _RETRIES - 1:
                    raise Unavailable(
                        f"the registry's database kept refusing this write as conflicting ({_conflict_name(error)}) "
                        f"after {_RETRIES} attempts; retry the call"
                    ) from error
                log.info("write conflict (%s), retry %d", _conflict_name(error), attempt + 1)
                for listener in self._on_conflict:
                    listener()
                time.sleep(random.uniform(0.5, 1.0) * min(0.005 * 2**attempt, 0.5))
                continue
            if tell:
                self.tell_written()
            return result
        raise AssertionError("unreachable")

    def tell_written(self) -> None:
        """Call the `after_write` listeners (after one or more committed writes)."""
        token = set_deadline(None)  # the write committed: catching up must not be cut short
        try:
            for listener in self._after_write:
                listener()
        finally:
            reset_deadline(token)

    def write_locked(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one short write transaction (Core) that orders itself by row locks
        (SELECT ... FOR UPDATE) under PostgreSQL's READ COMMITTED, so it waits instead of
        failing as conflicting; SQLite takes its write lock at BEGIN. For counters other
        processes change too (rate-limit buckets): views are not told, they follow none of it.
        """
        timeout = _remaining_ms()
        with self.engine.connect() as conn, _translating_timeouts():
            if self.is_sqlite:
                conn.execution_options(jpr_begin="BEGIN IMMEDIATE")
            with conn.begin():
                _limit_statements(conn, timeout, self.is_sqlite)
                return work(conn)

    def _write_once(self, work: Callable[[Session], T], timeout: int | None) -> T:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                # Take the write lock at BEGIN, so no transaction fails half-way on upgrade.
                conn.execution_options(jpr_begin="BEGIN IMMEDIATE")
            else:
                # Concurrent replicas: PostgreSQL detects any interleaving that differs
                # from some serial order and aborts one side, which is retried above.
                conn.execution_options(isolation_level="SERIALIZABLE")
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                _limit_statements(session, timeout, self.is_sqlite)
                return work(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only ORM session (admin listings)."""
        timeout = _remaining_ms()
        with Session(self.engine) as session, _translating_timeouts(), session.begin():
            _limit_statements(session, timeout, self.is_sqlite)
            yield session


def _limit_statements(executor: Session | Connection, timeout: int | None, is_sqlite: bool) -> None:
    """PostgreSQL: the time left, for each statement of the transaction just begun."""
    if timeout is not None and not is_sqlite:  # SQLite: set at BEGIN, see _begin_sqlite
        executor.execute(text(f"SET LOCAL statement_timeout = {timeout}"))


@contextmanager
def _translating_timeouts() -> Iterator[None]:
    """A statement cut short by the deadline becomes DeadlineExceeded."""
    try:
        yield
    except DBAPIError as error:
        if _deadline.get() is None or not _is_timeout(error):
            raise
        raise DeadlineExceeded(
            "the call's deadline passed while the database worked; the registry abandoned the call (nothing was written)"
        ) from error


def _is_timeout(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:  # query_canceled: statement_timeout, unless an operator cancelled it
        return bool(sqlstate == "57014") and _past_deadline()
    text_ = str(error.orig).lower()
    return "interrupted" in text_ or (("locked" in text_ or "busy" in text_) and _past_deadline())


def _past_deadline() -> bool:
    end = _deadline.get()
    return end is not None and time.monotonic() >= end - _CLOCK_SLACK_SECONDS



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


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Create an empty file that only its owner may read or write; FileExistsError if one is there.

    SQLite creates a database file with the umask's mode (0644 under the usual
    one) and gives its -wal, -shm and journal files the database file's mode:
    a database file created here first keeps all of them owner-only from the start.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _create_engine(url: str, pool_size: int) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size, hide_parameters=True)
    engine = create_engine(
        url,
        hide_parameters=True,  # a logged database error never carries tokens or envelopes
        connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
    )
    if (path := _sqlite_file(url)) is not None:
        event.listen(engine, "do_connect", _creating_private_file(path))
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _sqlite_file(url: str) -> str | None:
    """The file an SQLite URL names; None for an in-memory database or a `file:` URI."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def _creating_private_file(path: str) -> Callable[..., None]:
    """A do_connect listener: before SQLite opens `path`, create it owner-only if it is not there.

    Any failure (it exists, its folder does not) is left for SQLite to open or report as before.
    """

    def create(*_connect: Any) -> None:
        with contextlib.suppress(OSError):
            create_private_file(path)

    return create


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
    # Every transaction sets both, so a pooled connection never keeps an earlier call's deadline.
    end = _deadline.get()
    raw = conn.connection.dbapi_connection
    assert raw is not None
    if end is None:
        raw.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        raw.set_progress_handler(None, 0)
    else:
        wait = max(1, min(_BUSY_TIMEOUT_MS, int((end - time.monotonic()) * 1000)))
        raw.execute(f"PRAGMA busy_timeout={wait}")
        raw.set_progress_handler(lambda: time.monotonic() >= end, _PROGRESS_STEPS)
    conn.exec_driver_sql(conn.get_execution_options().get("jpr_begin", "BEGIN"))


def log_background_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled by a background pass (the view's follower, expiry, checkpoints,
    the access log's writer): when the database refused (gone, locked, a table missing), one line with
    its reason, which is what an operator acts on; a traceback only for anything else, which is a bug.
    Only the first line of the driver's message: the lines after it may quote values."""
    error = sys.exc_info()[1]
    if isinstance(error, DBAPIError):
        reason = str(error.orig).strip().splitlines()[0] if error.orig is not None and str(error.orig).strip() else type(error).__name__
        logger.error(f"{message}: the database refused: %s", *args, reason)
    else:
        logger.exception(message, *args)
