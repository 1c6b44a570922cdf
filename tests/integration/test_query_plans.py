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
        sql = LookupStore(db)._find(size)
        plan = db.hot.rows(f"EXPLAIN QUERY PLAN {sql}", [os.urandom(64) for _ in range(size)])
    finally:
        db.dispose()
    steps = [row[-1] for row in plan]
    assert any("report_tokens USING INDEX ix_report_tokens_token" in s for s in steps), steps
    assert not any(s.startswith("SCAN") for s in steps), steps
