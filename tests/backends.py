"""The storage backend is a fixture parameter: every test that stores runs on SQLite and PostgreSQL.

Each test gets a fresh database: a copy of a template migrated once per session
(a file copy for SQLite). On PostgreSQL, CREATE DATABASE ... TEMPLATE costs about
0.2 s of the server's CPU, so a database a test is done with is emptied back to the
template's rows and sequences and handed to the next test (`_Recycler`), unless its
schema is no longer the template's (a test that migrated or altered it), which is
dropped. With CI=true an unreachable PostgreSQL fails the run; elsewhere it skips
with the reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from registry.store import schema
from registry.store.database import Database

POSTGRES_URL = os.environ.get("JPR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _admin_dsn() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_database_url(name: str) -> str:
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "registry.db"
    database = Database(f"sqlite+pysqlite:///{path}")
    schema.upgrade(database)
    database.dispose()
    return path


def _connect_admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} is unreachable: {error}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true requires it; set JPR_TEST_POSTGRES_URL)")
        pytest.skip(reason)


@contextmanager
def fresh_postgres_database(template: str = "template0") -> Iterator[str]:
    """A new, empty (or templated) PostgreSQL database, dropped afterwards."""
    name = f"jpr_test_{uuid.uuid4().hex[:12]}"
    with _connect_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _postgres_database_url(name)
    finally:
        with _connect_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    admin = _connect_admin()
    name = f"jpr_template_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        database = Database(_postgres_database_url(name))
        schema.upgrade(database)
        database.dispose()
        yield name
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# What makes two databases' schemas the same for the registry: tables, columns, indexes, constraints,
# triggers, functions, sequences, and the migration they are at (fails when alembic_version is gone).
_SCHEMA = """
SELECT string_agg(item, E'\n' ORDER BY item) FROM (
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS item
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'sequence ' || sequencename FROM pg_sequences WHERE schemaname = 'public'
    UNION ALL SELECT 'at ' || version_num FROM alembic_version
) AS schema_items
"""


class _Recycler:
    """This worker's PostgreSQL databases: created from the template when none is free, emptied back
    to the template's state after each test (every table's rows as the template has them, every
    sequence where the template's is) and kept for the next."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.free: list[str] = []
        with psycopg.connect(_postgres_database_url(template).replace("+psycopg", ""), autocommit=True) as conn:
            self.schema = conn.execute(_SCHEMA).fetchone()[0]  # type: ignore[index]
            self.tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            self.rows: dict[str, bytes] = {}
            for table in self.tables:
                with conn.cursor().copy(f'COPY "{table}" TO STDOUT (FORMAT binary)') as copy:
                    data = b"".join(bytes(chunk) for chunk in copy)
                if conn.execute(f'SELECT EXISTS (SELECT FROM "{table}")').fetchone()[0]:  # type: ignore[index]
                    self.rows[table] = data
            self.sequences = list(conn.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"))

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = f"jpr_test_{uuid.uuid4().hex[:12]}"
        with _connect_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def give_back(self, name: str) -> None:
        """Empty `name` for the next test, or drop it if its schema changed or emptying it failed."""
        with _connect_admin() as admin:  # a server a failed test left running loses its connections, as DROP ... WITH (FORCE) did
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        try:
            with psycopg.connect(_postgres_database_url(name).replace("+psycopg", "")) as conn:
                if conn.execute(_SCHEMA).fetchone()[0] != self.schema:  # type: ignore[index]
                    raise LookupError("the test changed the schema")
                conn.execute("SET LOCAL session_replication_role = replica")  # no foreign-key order to follow
                for table in self.tables:
                    conn.execute(f'DELETE FROM "{table}"')
                for table, data in self.rows.items():
                    with conn.cursor().copy(f'COPY "{table}" FROM STDIN (FORMAT binary)') as copy:
                        copy.write(data)
                for sequence, last_value in self.sequences:
                    conn.execute("SELECT setval(%s, %s, %s)", (sequence, last_value or 1, last_value is not None))
            self.free.append(name)
        except (psycopg.Error, LookupError):
            self.drop(name)

    @staticmethod
    def drop(name: str) -> None:
        with _connect_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        while self.free:
            self.drop(self.free.pop())


@pytest.fixture(scope="session")
def postgres_databases(postgres_template: str) -> Iterator[_Recycler]:
    recycler = _Recycler(postgres_template)
    yield recycler
    recycler.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty registry database on the backend of this parameter."""
    if request.param == "sqlite":
        path = tmp_path / "backend.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+pysqlite:///{path}"
        return
    databases: _Recycler = request.getfixturevalue("postgres_databases")
    name = databases.take()
    try:
        yield _postgres_database_url(name)
    finally:
        databases.give_back(name)
