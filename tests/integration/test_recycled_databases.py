"""The PostgreSQL databases tests share (tests/backends.py): one a test wrote to is handed to the next test
exactly as the template is, and one whose schema a test changed is dropped, never handed on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import subprocess
import sys

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from jpr_client.credentials import Credentials
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.server.app import start
from registry.settings import load_settings
from registry.store.database import Database
from tests.backends import _connect_admin, _postgres_database_url, _Recycler, sweep_abandoned
from tests.conftest import REGISTRY_NAME, AdminClient


def _connect(name: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(_postgres_database_url(name).replace("+psycopg", ""), autocommit=True)


def state(name: str) -> tuple[dict[str, bytes], dict[str, object]]:
    """Every table's rows (binary COPY, in key order) and every sequence's position."""
    with _connect(name) as conn:
        tables = sorted(row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        rows = {}
        for table in tables:
            with conn.cursor().copy(f'COPY (SELECT * FROM "{table}" ORDER BY 1) TO STDOUT (FORMAT binary)') as copy:
                rows[table] = b"".join(bytes(chunk) for chunk in copy)
        sequences = dict(conn.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'").fetchall())
    return rows, sequences


def written_to(name: str, tmp_path: Path) -> None:
    """A registry on `name` that created a member and a report's worth of rows: events, log leaves, sequences moved."""
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": _postgres_database_url(name)}, environ={}))
    try:
        credentials = Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}")
        admin = AdminClient(credentials, DataDir(data_dir).issuer())
        admin.add_member("platform-a")
        admin.add_member("platform-b")
        admin.close()
    finally:
        running.stop(grace=None)


def test_a_database_a_registry_wrote_to_is_handed_on_as_the_template_is(postgres_databases: _Recycler, tmp_path: Path) -> None:
    template = state(postgres_databases.template)
    name = postgres_databases.take()
    written_to(name, tmp_path)
    assert state(name) != template  # the registry wrote: the check below compares something
    kept = postgres_databases.give_back(name)
    assert kept is not None and kept in postgres_databases.free and not _exists(postgres_databases, name)
    assert state(kept) == template
    assert postgres_databases.take() == kept  # the next test gets it
    postgres_databases.give_back(kept)  # and the next test after this one


CHANGES: dict[str, Callable[[psycopg.Connection[tuple[object, ...]]], object]] = {
    "a table added": lambda conn: conn.execute("CREATE TABLE scratch (k integer PRIMARY KEY)"),
    "a table dropped": lambda conn: conn.execute("DROP TABLE alembic_version"),
    "another revision": lambda conn: conn.execute("UPDATE alembic_version SET version_num = 'base0'"),
    "an index dropped": lambda conn: conn.execute("DROP INDEX ix_events_report_id"),
    "a column added": lambda conn: conn.execute("ALTER TABLE members ADD COLUMN scratch integer"),
    "a column's length": lambda conn: conn.execute("ALTER TABLE events ALTER COLUMN actor TYPE varchar(81)"),
    "a column's default": lambda conn: conn.execute("ALTER TABLE events ALTER COLUMN actor SET DEFAULT 'x'"),
    "a trigger disabled": lambda conn: conn.execute(
        "CREATE FUNCTION scratch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
        "CREATE TRIGGER scratch BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION scratch();"
        "ALTER TABLE events DISABLE TRIGGER scratch"),
    "a sequence's increment": lambda conn: conn.execute("ALTER SEQUENCE events_seq_seq INCREMENT BY 2"),
    "a type created": lambda conn: conn.execute("CREATE TYPE scratch AS ENUM ('a')"),
    "row security": lambda conn: conn.execute("ALTER TABLE events ENABLE ROW LEVEL SECURITY"),
    "a grant revoked": lambda conn: conn.execute("REVOKE INSERT ON events FROM PUBLIC; REVOKE INSERT ON events FROM postgres"),
    "a storage option": lambda conn: conn.execute("ALTER TABLE events SET (fillfactor = 70)"),
    "a statistics target": lambda conn: conn.execute("ALTER TABLE events ALTER COLUMN actor SET STATISTICS 7"),
    "a rule": lambda conn: conn.execute("CREATE RULE scratch AS ON DELETE TO events DO INSTEAD NOTHING"),
    "a sequence's owner": lambda conn: conn.execute("ALTER SEQUENCE events_seq_seq OWNED BY NONE"),
    "a connection limit": lambda conn: conn.execute(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT 50', current_database()); END $$"),
    "a database setting": lambda conn: conn.execute(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET work_mem = ''77MB''', current_database()); END $$"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_database_whose_schema_a_test_changed_is_dropped(postgres_databases: _Recycler, change: str) -> None:
    name = postgres_databases.take()
    with _connect(name) as conn:
        CHANGES[change](conn)
    free = list(postgres_databases.free)
    assert postgres_databases.give_back(name) is None
    assert postgres_databases.free == free and not _exists(postgres_databases, name)


def test_an_untouched_database_passes_the_schema_check(postgres_databases: _Recycler) -> None:
    """The check above compares something that holds for an untouched database: each change is what makes it fail.
    A session's temporary table is not a change of the schema."""
    name = postgres_databases.take()
    with _connect(name) as conn:
        conn.execute("CREATE TEMPORARY TABLE scratch (k integer)")
        kept = postgres_databases.give_back(name)
    assert kept is not None and kept in postgres_databases.free


def test_a_database_that_fails_to_be_handed_on_is_dropped_under_either_name(
    postgres_databases: _Recycler, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rename done, allowing connections again fails: the database goes, not left refusing connections."""
    name = postgres_databases.take()
    real = psycopg.Connection.execute

    def failing(self: psycopg.Connection[tuple[object, ...]], query: object, *args: object, **kwargs: object) -> object:
        if isinstance(query, str) and "ALLOW_CONNECTIONS true" in query:
            raise psycopg.OperationalError("refused for the test")
        return real(self, query, *args, **kwargs)  # type: ignore[arg-type]

    with _connect(postgres_databases.template) as conn:
        before = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    monkeypatch.setattr(psycopg.Connection, "execute", failing)
    assert postgres_databases.give_back(name) is None
    monkeypatch.undo()
    with _connect(postgres_databases.template) as conn:
        after = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert after == before - {name}


def _exists(databases: _Recycler, name: str) -> bool:
    with _connect(databases.template) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_a_connection_a_test_left_open_does_not_keep_its_database_from_the_next_test(postgres_databases: _Recycler) -> None:
    name = postgres_databases.take()
    left_open = _connect(name)
    left_open.execute("SELECT 1")
    assert postgres_databases.give_back(name) in postgres_databases.free
    assert left_open.closed or left_open.broken or _fails(left_open)


def test_a_server_a_test_left_running_cannot_write_into_the_next_tests_database(postgres_databases: _Recycler) -> None:
    """Its pool pings and reconnects after its connections were ended; it must find no database to write to."""
    name = postgres_databases.take()
    left_running = Database(_postgres_database_url(name))  # pool_pre_ping, as the registry's engine
    try:
        with left_running.engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
        kept = postgres_databases.give_back(name)
        assert kept is not None
        template = state(postgres_databases.template)
        with pytest.raises(OperationalError, match=name), left_running.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO subjects (created_at) VALUES (now())")
        assert state(kept) == template
    finally:
        left_running.dispose()


def _fails(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_databases_a_stopped_run_left_behind_are_dropped_and_a_live_runs_are_kept(postgres_databases: _Recycler) -> None:
    """A run stopped before its teardown leaves its databases; the next run's start drops them (their process
    is gone), never those of a run going on beside it, nor databases of any other name."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    left = {
        "dead test": f"jpr_test_{int(gone.stdout)}_0123456789ab",
        "dead template": f"jpr_template_{int(gone.stdout)}_0123456789ab",
        "live": postgres_databases.take(),
        "not ours": "jpr_unrelated_0123456789ab",
    }
    with _connect_admin() as admin:
        for key in ("dead test", "dead template", "not ours"):
            admin.execute(f'CREATE DATABASE "{left[key]}" TEMPLATE "{postgres_databases.template}"')
        try:
            dropped = sweep_abandoned(admin)
            assert left["dead test"] in dropped and left["dead template"] in dropped
            assert not _exists(postgres_databases, left["dead test"]) and not _exists(postgres_databases, left["dead template"])
            assert _exists(postgres_databases, left["live"]) and _exists(postgres_databases, left["not ours"])
            assert _exists(postgres_databases, postgres_databases.template)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{left["not ours"]}" WITH (FORCE)')
    postgres_databases.give_back(left["live"])
