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
import re
import shutil
import time
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


def _drop(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _new_name(kind: str = "test") -> str:
    """`jpr_test_<pid>_<12 hex digits>`: the process that made the database is in its name (`sweep_abandoned`)."""
    return f"jpr_{kind}_{os.getpid()}_{uuid.uuid4().hex[:12]}"


_MADE_BY = re.compile(r"^jpr_(?:test|template)_(\d+)_[0-9a-f]{12}$")


def sweep_abandoned(admin: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Drop the test databases whose process is gone: a run stopped before its teardown (Ctrl-C, a killed
    worker) leaves them behind, and each holds a copy of the schema. Only on a server of this machine,
    where a process id means the same process; a database of a live process (another run in parallel)
    is never touched. Runs in separate containers sharing one server do not share process ids: there a
    live run's databases could be taken for abandoned ones, so such runs need a server each. The ones dropped."""
    if make_url(POSTGRES_URL).host not in {None, "", "127.0.0.1", "localhost", "::1"}:
        return []
    dropped = []
    for (name,) in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'jpr%'").fetchall():
        made_by = _MADE_BY.match(str(name))
        if made_by is not None and not _alive(int(made_by.group(1))):
            _drop(admin, str(name))
            dropped.append(str(name))
    return dropped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _end_connections(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """End every connection to `name` and wait until their backends are gone (termination is asynchronous)."""
    end = time.monotonic() + 10
    while admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (name,)).fetchone()[0]:  # type: ignore[index]
        if time.monotonic() > end:
            raise TimeoutError(f"connections to {name} did not end")
        time.sleep(0.005)


@contextmanager
def fresh_postgres_database(template: str = "template0") -> Iterator[str]:
    """A new, empty (or templated) PostgreSQL database, dropped afterwards."""
    name = _new_name()
    with _connect_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _postgres_database_url(name)
    finally:
        with _connect_admin() as admin:
            _drop(admin, name)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    admin = _connect_admin()
    name = _new_name("template")
    with admin:
        sweep_abandoned(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
        database = Database(_postgres_database_url(name))
        schema.upgrade(database)
        database.dispose()
        yield name
        _drop(admin, name)


# What makes two databases' schemas the same for the registry: every relation (with its row security, persistence,
# owner, grants and storage options), column (type with its length, nullability, default, identity, collation,
# statistics target), index, constraint, trigger (and whether it is enabled), function (and its body), sequence (and
# its options and owner column), type, policy, schema (not the temporary ones a session makes), extension, rule,
# view, the database's own settings and connection limit, and the migration it is at (fails when alembic_version is
# gone). Not covered: comments, enum labels, function attributes (SECURITY DEFINER...).
_SCHEMA = """
SELECT string_agg(item, E'\n' ORDER BY item) FROM (
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
           || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || a.attidentity::text || a.attgenerated::text || ' ' || a.attcollation
           || ' ' || coalesce(a.attstattarget::text, '') AS item
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
     WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT 'relation ' || relname || ' ' || relkind::text || ' ' || relpersistence::text || ' ' || relrowsecurity || ' ' || relforcerowsecurity
           || ' ' || relowner::regrole::text || ' ' || coalesce(relacl::text, '') || ' ' || coalesce(array_to_string(reloptions, ','), '')
      FROM pg_class WHERE relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT 'function ' || oid::regprocedure::text || ' ' || md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'sequence ' || sequencename || ' ' || data_type::text || ' ' || start_value || ' ' || min_value || ' ' || max_value
           || ' ' || increment_by || ' ' || cycle || ' ' || cache_size FROM pg_sequences WHERE schemaname = 'public'
    UNION ALL SELECT 'type ' || typname || ' ' || typtype::text FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL SELECT 'policy ' || polrelid::regclass::text || ' ' || polname FROM pg_policy
    UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_'
    UNION ALL SELECT 'rule ' || ev_class::regclass::text || ' ' || rulename FROM pg_rewrite
     WHERE ev_class IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind <> 'v')
    UNION ALL SELECT 'view ' || viewname || ' ' || md5(definition) FROM pg_views WHERE schemaname = 'public'
    UNION ALL SELECT 'owned ' || objid::regclass::text || ' ' || refobjid::regclass::text || '.' || refobjsubid FROM pg_depend
     WHERE classid = 'pg_class'::regclass AND deptype IN ('a', 'i')
       AND objid IN (SELECT oid FROM pg_class WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace)
    UNION ALL SELECT 'database ' || datconnlimit FROM pg_database WHERE datname = current_database()
    UNION ALL SELECT 'extension ' || extname || ' ' || extversion FROM pg_extension
    UNION ALL SELECT 'setting ' || setrole || ' ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
     WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
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
        name = _new_name()
        with _connect_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def give_back(self, name: str) -> str | None:
        """Empty `name` for the next test, under a new name (returned), or drop it (None) if its schema changed
        or emptying it failed.

        A server a failed test left running (a pool that pings and reconnects) would otherwise write into
        the next test's database: connections to `name` are refused, the ones open are ended, and the
        database is renamed, so that any later connection to `name` fails as it would on a dropped one.
        """
        kept = _new_name()
        try:
            with _connect_admin() as admin:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                _end_connections(admin, name)
                admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{kept}"')
                admin.execute(f'ALTER DATABASE "{kept}" WITH ALLOW_CONNECTIONS true')
        except (psycopg.Error, TimeoutError):  # under either name, whichever step failed
            self.drop(name)
            self.drop(kept)
            return None
        try:
            with psycopg.connect(_postgres_database_url(kept).replace("+psycopg", "")) as conn:
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
        except (psycopg.Error, LookupError):
            self.drop(kept)
            return None
        self.free.append(kept)
        return kept

    @staticmethod
    def drop(name: str) -> None:
        with _connect_admin() as admin:
            _drop(admin, name)

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
