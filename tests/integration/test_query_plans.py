"""The statements that keep the lookup view current, SubmitReport's reads, and other reads of events and of
merged subjects search the index of the column they select by, whatever the number of rows (SQLite plans
without statistics: see docs/performance.md, "Pitfall")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Select, literal_column, select

from registry.store import changes, log, members, opinions, reports, subjects, view
from registry.store.database import Database
from registry.store.prepared import Prepared

BY_SUBJECT = {
    "_REPORTS": view._REPORTS,
    "_TOKENS": view._TOKENS,
    "_LISTINGS": view._LISTINGS,
    "_APPEALED": view._APPEALED,
    "_OPINIONS": view._OPINIONS,
}


def plan(db: Database, statement: Select | Prepared, **values: object) -> list[str]:  # type: ignore[type-arg]
    if isinstance(statement, Prepared):
        statement = statement.statement  # type: ignore[assignment]
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


# Each read SubmitReport makes, and others of the same class, with the search it must make: a search by another index of
# the same table (the reporter's reports, every event of one kind), or a scan, reads rows in proportion to the registry's size.
BY_KEY = {
    "_RECEIPT_OF": (reports._RECEIPT_OF, {"payload_sha256": b"p" * 32},
                    ["SEARCH reports USING INDEX ix_reports_payload_sha256 (payload_sha256=?)",
                     "SEARCH members USING INTEGER PRIMARY KEY (rowid=?)"]),
    "_FILED_UNDER": (reports._FILED_UNDER, {"report_id": "r"}, ["SEARCH reports USING INDEX sqlite_autoindex_reports_1 (report_id=?)"]),
    "_EVENTS_OF_REPORT": (reports._EVENTS_OF_REPORT, {"report_id": "r"}, ["SEARCH events USING INDEX ix_events_report_id (report_id=?)"]),
    "_SIGNING_KEY": (members._SIGNING_KEY, {"name": "n", "key_id": "k"},
                     ["SEARCH member_keys USING INDEX sqlite_autoindex_member_keys_1 (key_id=?)",
                      "SEARCH members USING INTEGER PRIMARY KEY (rowid=?)"]),
    "_ATTACHED": (reports._ATTACHED, {"tokens": [b"a" * 64, b"b" * 64]}, ["SEARCH subject_tokens USING INDEX sqlite_autoindex_subject_tokens_1 (token=?)"]),
    "_HELD_BY_SUBJECT": (reports._HELD_BY_SUBJECT, {"subject_id": 1, "tokens": [b"a" * 64]},
                         ["SEARCH subject_tokens USING COVERING INDEX sqlite_autoindex_subject_tokens_1 (token=? AND subject_id=?)"]),
    # Not SubmitReport's, but of the same class: events searched by their kind read every event of it.
    "changes._CHANGES": (changes._CHANGES, {"after": 3, "through": 900, "limit": 100}, ["SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"]),
    "log._NEWEST_CHANGE": (log._NEWEST_CHANGE, {"listing_id": 5}, ["SEARCH events USING INDEX ix_events_listing_id (listing_id=?)"]),
    # Subjects merged into one: a merge (SubmitReport), an opinion's match check, a subject shown.
    # A merge's statements, each searched by the subject it moves rows from (the UPDATE's or DELETE's own search).
    **{f"reports._MERGE_STATEMENTS[{n}]": (select(literal_column("1")).select_from(statement.table).where(statement.whereclause),
                                           {"merged": 3, "survivor": 1}, expected)
       for n, (statement, expected) in enumerate(zip(reports._MERGE_STATEMENTS, [
           ["SEARCH subject_tokens USING COVERING INDEX sqlite_autoindex_subject_tokens_1 (token=? AND subject_id=?)",  # per survivor token
            "SEARCH subject_tokens USING INDEX ix_subject_tokens_subject_id (subject_id=?)"],
           ["SEARCH subject_tokens USING COVERING INDEX ix_subject_tokens_subject_id (subject_id=?)"],
           ["SEARCH reports USING COVERING INDEX ix_reports_subject_status (subject_id=?)"],
           ["SEARCH listings USING COVERING INDEX ix_listings_subject_status (subject_id=?)"],
           ["SEARCH subjects USING COVERING INDEX ix_subjects_merged_into (merged_into=?)"],
           ["SEARCH subjects USING INTEGER PRIMARY KEY (rowid=?)"],
       ], strict=True))},
    "subjects._MERGED_INTO": (subjects._MERGED_INTO, {"subject_id": 3}, ["SEARCH subjects USING COVERING INDEX ix_subjects_merged_into (merged_into=?)"]),
    "opinions._MATCHED": (opinions._MATCHED, {"member_id": 1, "subject_id": 3}, [
        "SEARCH subject_matches USING COVERING INDEX sqlite_autoindex_subject_matches_1 (subject_id=? AND member_id=?)",
        "SEARCH subjects USING COVERING INDEX ix_subjects_merged_into (merged_into=?)",
        "SEARCH subject_matches USING COVERING INDEX sqlite_autoindex_subject_matches_1 (subject_id=? AND member_id=?)",
    ]),
    "_SUBJECT_OF_REPORTS": (view._SUBJECT_OF_REPORTS, {"ids": ["r", "s"]}, ["SEARCH reports USING INDEX sqlite_autoindex_reports_1 (report_id=?)"]),
}


@pytest.mark.parametrize("name", sorted(BY_KEY))
def test_reads_search_their_key(db: Database, name: str) -> None:
    statement, values, expected = BY_KEY[name]
    steps = [s for s in plan(db, statement, **values) if s.startswith("SEARCH") or s.startswith("SCAN")]
    assert steps == expected
