"""Deadlines carried into SQLite: a long statement is interrupted, and a pooled connection forgets the deadline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from registry.domain.errors import DeadlineExceeded
from registry.store.database import Database, deadline

# Counts to ten million: seconds of work for SQLite's virtual machine.
LONG_QUERY = text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000) SELECT count(*) FROM n")


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite+pysqlite:///{tmp_path / 'deadline.db'}", pool_size=1)
    yield db  # type: ignore[misc]
    db.dispose()


def test_a_statement_running_past_the_deadline_is_interrupted(database: Database) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="deadline passed"), deadline(0.2), database.read() as conn:
        conn.execute(LONG_QUERY)
    assert time.monotonic() - started < 1.5


def test_a_pooled_connection_does_not_keep_an_earlier_calls_deadline(database: Database) -> None:
    with deadline(0.2), database.read() as conn:
        conn.execute(text("SELECT 1"))
    time.sleep(0.3)  # that deadline has passed; the same pooled connection serves the next read
    with database.read() as conn:
        assert conn.execute(text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) "
                                 "SELECT count(*) FROM n")).scalar() == 2_000_000


def test_no_deadline_or_grpcs_no_deadline_value_means_none(database: Database) -> None:
    for seconds in (None, float("inf"), 9.2e18):  # what time_remaining() says for a call without a deadline
        with deadline(seconds), database.read() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1


def test_work_starting_after_the_deadline_is_refused_at_once(database: Database) -> None:
    with deadline(0.0), pytest.raises(DeadlineExceeded):
        database.write(lambda session: session.execute(text("SELECT 1")))
