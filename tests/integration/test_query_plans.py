"""The lookup statement probes indexes whatever the number of tokens (SQLite plans without statistics;
PostgreSQL plans from ANALYZE)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from registry.store.database import Database
from registry.store.lookups import LookupStore


@pytest.mark.parametrize("size", [1, 2, 8, 500])
def test_token_statement_searches_the_token_index(sqlite_template: Path, tmp_path: Path, size: int) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "plan.db")
    db = Database(f"sqlite+pysqlite:///{tmp_path / 'plan.db'}")
    try:
        sql = LookupStore(db)._prepared(size).sql
        plan = db.hot.rows(f"EXPLAIN QUERY PLAN {sql}", [os.urandom(64) for _ in range(size)])
    finally:
        db.dispose()
    steps = [row[-1] for row in plan]
    assert any("report_tokens USING INDEX ix_report_tokens_token" in s for s in steps), steps
    assert not any(s.startswith("SCAN") for s in steps), steps


def test_postgres_lookups_reuse_one_connection_and_a_prepared_statement(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no server session or prepared statements to reuse")
    from datetime import UTC, datetime

    db = Database(database_url)
    try:
        store = LookupStore(db)
        tokens = [os.urandom(64), os.urandom(64)]
        backends = set()
        for _ in range(8):
            store.find(tokens, datetime.now(UTC))
            backends.add(db.hot.rows("SELECT pg_backend_pid()", [])[0][0])
        prepared = db.hot.rows("SELECT statement FROM pg_prepared_statements", [])
    finally:
        db.dispose()
    assert len(backends) == 1, "each lookup opened a new connection"
    assert any("report_tokens.token IN" in statement for (statement,) in prepared), prepared
