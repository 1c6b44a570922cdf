"""The statements that keep the lookup view current probe indexes, whatever the number of subjects
(SQLite plans without statistics: see docs/performance.md, "Pitfall")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Select

from registry.store import view
from registry.store.database import Database

BY_SUBJECT = {
    "_REPORTS": view._REPORTS,
    "_TOKENS": view._TOKENS,
    "_LISTINGS": view._LISTINGS,
    "_APPEALED": view._APPEALED,
    "_OPINIONS": view._OPINIONS,
}


def plan(db: Database, statement: Select, **values: object) -> list[str]:  # type: ignore[type-arg]
    sql = statement.params(**values).compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        return [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]


@pytest.fixture
def db(sqlite_template: Path, tmp_path: Path) -> Database:
    shutil.copyfile(sqlite_template, tmp_path / "plan.db")
    database = Database(f"sqlite+pysqlite:///{tmp_path / 'plan.db'}")
    yield database  # type: ignore[misc]
    database.dispose()


@pytest.mark.parametrize("size", [1, 2, 8, 500])
@pytest.mark.parametrize("name", sorted(BY_SUBJECT))
def test_subject_statements_search_indexes(db: Database, name: str, size: int) -> None:
    steps = plan(db, BY_SUBJECT[name], subjects=list(range(1, size + 1)))
    assert not any(s.startswith("SCAN") for s in steps), steps
    assert any("USING INDEX" in s or "USING COVERING INDEX" in s or "PRIMARY KEY" in s for s in steps), steps


def test_following_the_event_log_reads_only_new_rows(db: Database) -> None:
    steps = plan(db, view._EVENTS_AFTER, after=41)
    assert any("events USING INTEGER PRIMARY KEY (rowid>?)" in s for s in steps), steps
