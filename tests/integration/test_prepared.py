"""Statements on the driver's cursor (registry/store/prepared.py) store and read exactly what the same
statements through SQLAlchemy do, on both backends: every column type the write path uses, IN lists of
any length, the statements' own literals, and driver errors as SQLAlchemy's."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from registry.store import events, members, reports, view
from registry.domain.errors import DeadlineExceeded
from registry.store.database import Database, deadline
from registry.store.models import EventRow, ListingRow, SubjectRow, SubjectTokenRow
from registry.store.prepared import Prepared

NOW = datetime(2026, 12, 3, 9, 41, 5, 123456, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def token(n: int) -> bytes:
    return n.to_bytes(2, "big") * 32


def event_row(n: int) -> dict[str, object]:
    return {"occurred_at": NOW + timedelta(microseconds=n), "actor": f"member:p{n}", "kind": "report.submitted", "report_id": f"r{n}",
            "subject_id": None, "listing_id": None, "detail": {"n": n, "nested": {"list": [1, "two", None]}, "text": "ü"}, "salt": bytes([n]) * 16}


def test_rows_inserted_through_the_driver_read_back_as_those_inserted_through_sqlalchemy(db: Database) -> None:
    """Datetimes (SQLite stores SQLAlchemy's string form), JSON, bytes, booleans, NULLs, RETURNING."""
    with db.engine.begin() as conn:
        ours = [events._INSERT.scalar(conn, event_row(n)) for n in range(3)]
        theirs = [conn.execute(insert(EventRow).returning(EventRow.seq), event_row(n + 3)).scalar_one() for n in range(3)]
        subject = reports._INSERT_SUBJECT.scalar(conn, {"created_at": NOW})
        reports._INSERT_SUBJECT_TOKENS.execute(conn, [
            {"token": token(n), "id_type": "phone" if n else "cn_ric", "strong": n == 0, "subject_id": subject, "attached_at": NOW} for n in range(3)])
        conn.execute(insert(SubjectTokenRow), [
            {"token": token(n), "id_type": "email", "strong": False, "subject_id": subject, "attached_at": NOW} for n in range(3, 5)])
    assert ours == [1, 2, 3] and theirs == [4, 5, 6]
    with db.engine.connect() as conn:
        stored = conn.execute(select(EventRow.occurred_at, EventRow.actor, EventRow.detail, EventRow.salt).order_by(EventRow.seq)).all()
        by_us = _EVENTS.rows(conn, {"after": 0})
        tokens = conn.execute(select(SubjectTokenRow.token, SubjectTokenRow.strong, SubjectTokenRow.attached_at).order_by(SubjectTokenRow.token)).all()
        created = conn.execute(select(SubjectRow.created_at)).scalar_one()
    expected = [(NOW + timedelta(microseconds=n), f"member:p{n}", event_row(n)["detail"], bytes([n]) * 16) for n in range(6)]
    assert [tuple(row) for row in stored] == expected
    assert [tuple(row) for row in by_us] == expected and by_us[0].detail == event_row(0)["detail"]
    assert [tuple(row) for row in tokens] == [(token(n), n == 0, NOW) for n in range(5)]
    assert created == NOW


_EVENTS = Prepared(select(EventRow.occurred_at, EventRow.actor, EventRow.detail, EventRow.salt).where(EventRow.seq > bindparam("after")).order_by(EventRow.seq))


def test_in_lists_of_every_length_and_the_statements_own_literals_find_what_sqlalchemy_finds(db: Database) -> None:
    with db.engine.begin() as conn:
        for n in range(1, 81):
            conn.execute(insert(SubjectRow), {"id": n, "created_at": NOW})
            conn.execute(insert(ListingRow), {
                "id": n, "subject_id": n, "status": ["ACTIVE", "PENDING_NOTICE", "LIFTED", "EXPIRED"][n % 4],
                "listed_from": NOW, "listed_until": NOW + timedelta(days=n), "created_at": NOW, "updated_at": NOW})
    statement = view._LISTINGS.statement
    with db.engine.connect() as conn:
        # 80 lengths, more than the forms one statement keeps: forms are compiled again, never mixed up
        for size in [*range(1, 81), 3, 1, 80]:
            wanted = list(range(1, size + 1))
            ours = view._LISTINGS.rows(conn, {"subjects": wanted})
            assert [tuple(r) for r in ours] == [tuple(r) for r in conn.execute(statement, {"subjects": wanted})]
            assert {r.id % 4 for r in ours} <= {0, 1}  # ACTIVE and PENDING_NOTICE only: the statement's literal list applied
        subjects = [s for s, in view._SUBJECT_OF_LISTINGS.rows(conn, {"ids": list(range(1, 81, 7))})]
        assert sorted(subjects) == list(range(1, 81, 7))


def test_a_driver_error_is_sqlalchemys_error_and_never_shows_the_values(db: Database) -> None:
    row = {"token": token(7), "id_type": "phone", "strong": True, "subject_id": 1, "attached_at": NOW}
    with db.engine.connect() as conn, conn.begin():
        conn.execute(insert(SubjectRow), {"id": 1, "created_at": NOW})
        reports._INSERT_SUBJECT_TOKENS.execute(conn, [row])
        with pytest.raises(IntegrityError) as raised:
            reports._INSERT_SUBJECT_TOKENS.execute(conn, [row])
    assert isinstance(raised.value, DBAPIError) and raised.value.orig is not None
    message = str(raised.value)  # PostgreSQL's own detail names the key, as it does through SQLAlchemy; the statement's values are not shown
    assert "[SQL: INSERT INTO subject_tokens" in message and "RETURNING" not in message and "[parameters" not in message


def test_an_insert_that_would_take_a_python_side_default_is_refused_when_compiled(db: Database) -> None:
    without_detail = {key: value for key, value in event_row(1).items() if key != "detail"}
    with db.engine.connect() as conn, pytest.raises(ValueError, match=r"\['detail'\] would take Python-side defaults"):
        events._INSERT.scalar(conn, without_detail)


def test_the_members_signing_key_read_gives_what_sqlalchemy_gives(db: Database) -> None:
    with db.engine.connect() as conn:
        assert members._SIGNING_KEY.rows(conn, {"name": "nobody", "key_id": "k"}) == []


def _end_connection(db: Database, conn: Connection) -> None:
    """The server ends the connection under the transaction (PostgreSQL: an administrator's or a failover's
    pg_terminate_backend), or it is closed (SQLite: the only way an embedded connection goes away)."""
    if db.is_sqlite:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.close()
        return
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    with db.engine.connect() as other:
        assert other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar_one()


_CALLS = {
    "rows": lambda conn: view._EVENTS_AFTER.rows(conn, {"after": 0}),
    "scalar": lambda conn: events._INSERT.scalar(conn, event_row(1)),
    "execute": lambda conn: reports._INSERT_SUBJECT_TOKENS.execute(
        conn, [{"token": token(1), "id_type": "phone", "strong": True, "subject_id": 1, "attached_at": NOW}]),
    "through SQLAlchemy": lambda conn: conn.execute(select(EventRow.seq)).all(),  # the behaviour the others must match
}


@pytest.mark.parametrize("call", list(_CALLS))
def test_a_connection_ended_under_a_statement_is_invalidated_and_its_error_is_the_one_raised(db: Database, call: str) -> None:
    """The error leaving the transaction is the lost connection's, marked as such (not the rollback's failure on it),
    and the pool never hands that connection out again: the next transaction works."""
    with pytest.raises(DBAPIError) as raised, db.engine.connect() as conn, conn.begin():
        _end_connection(db, conn)
        _CALLS[call](conn)
    error = raised.value
    assert error.connection_invalidated, error
    assert error.statement is not None and error.statement.split()[0] in {"SELECT", "INSERT"}, f"the rollback's error, not the statement's: {error!r}"
    assert "[parameters" not in str(error)
    for _ in range(3):  # every connection the pool holds
        with db.engine.connect() as conn:
            assert conn.execute(select(EventRow.seq)).all() == []


def test_sqlite_past_the_deadline_in_the_fetch_of_a_long_read_is_deadline_exceeded(sqlite_template: Path, tmp_path: Path) -> None:
    """SQLite returns a statement's first row from execute and runs its later steps in fetchall, where the
    deadline's interrupt lands: it reaches the caller as DeadlineExceeded, as an interrupt at execute does."""
    shutil.copyfile(sqlite_template, tmp_path / "registry.db")
    db = Database(f"sqlite+pysqlite:///{tmp_path / 'registry.db'}")
    try:
        with db.engine.begin() as conn:
            events._INSERT.execute(conn, [{**event_row(0), "report_id": f"r{n}", "detail": {"n": n}} for n in range(20_000)])
        with deadline(0.3), db.read() as conn:
            time.sleep(0.4)
            raw = conn.connection.dbapi_connection
            assert raw is not None
            cursor = raw.cursor()
            cursor.execute(view._EVENTS_AFTER._form(conn.dialect, {"after": 0}).sql, (0,))  # the first row: fewer steps than the check's interval
            with pytest.raises(sqlite3.OperationalError, match="interrupted"):
                cursor.fetchall()
            cursor.close()
        with pytest.raises(DeadlineExceeded), deadline(0.3), db.read() as conn:
            time.sleep(0.4)
            view._EVENTS_AFTER.rows(conn, {"after": 0})
    finally:
        db.dispose()
