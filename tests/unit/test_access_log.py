"""The access log's counts: members only, by hour, elements only for answered calls, kept when the write fails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from registry.server.access_log import AccessLog
from registry.store import schema
from registry.store.access import AccessStore
from registry.store.database import Database
from registry.store.models import AccessCountRow

BATCH = "/jpr.v1.Registry/LookupBatch"
TEN = datetime(2026, 11, 28, 10, 59, 59, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite+pysqlite:///{tmp_path / 'registry.db'}")
    schema.upgrade(db)
    yield db
    db.dispose()


def stored(database: Database) -> list[tuple[str, datetime, str, int, int, int, int]]:
    with database.read() as conn:
        rows = conn.execute(select(AccessCountRow).order_by(AccessCountRow.member, AccessCountRow.hour, AccessCountRow.method))
        return [(r.member, r.hour, r.method, r.calls, r.refused, r.items, r.matched) for r in rows]


def test_counts_fold_by_member_hour_and_method_and_survive_a_failed_write(database: Database) -> None:
    now = [TEN]
    log = AccessLog(AccessStore(database).add, lambda: now[0], interval=3600)  # flushed by hand only
    try:
        log.record(BATCH, "member", "platform-a", "ab" * 32, "OK", 1.0, 100, 3)
        log.record(BATCH, "member", "platform-a", "ab" * 32, "RESOURCE_EXHAUSTED", 0.1, 1000, 0)  # asked, not answered
        log.record(BATCH, "admin", "alice", "cd" * 32, "OK", 1.0, 0, 0)  # not a member: logged, not counted
        now[0] = TEN + timedelta(seconds=1)  # the next hour
        log.record(BATCH, "member", "platform-a", "ab" * 32, "OK", 1.0, 10, 0)
        with database.engine.begin() as conn:
            conn.execute(text("ALTER TABLE access_counts RENAME TO access_counts_away"))
        with pytest.raises(Exception, match="no such table"):
            log.flush()
        with database.engine.begin() as conn:
            conn.execute(text("ALTER TABLE access_counts_away RENAME TO access_counts"))
        log.flush()  # what the failed write held is added now, once
        log.flush()
    finally:
        log.close()
    hour = TEN.replace(minute=0, second=0)
    assert stored(database) == [
        ("platform-a", hour, BATCH, 2, 1, 100, 3),
        ("platform-a", hour + timedelta(hours=1), BATCH, 1, 0, 10, 0),
    ]
