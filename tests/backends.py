"""The storage backend is a fixture parameter: every test that stores runs on SQLite and PostgreSQL.

Each test gets a fresh database copied from a template migrated once per
session (a file copy for SQLite, CREATE DATABASE ... TEMPLATE for PostgreSQL).
With CI=true an unreachable PostgreSQL fails the run; elsewhere it skips
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


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty registry database on the backend of this parameter."""
    if request.param == "sqlite":
        path = tmp_path / "backend.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+pysqlite:///{path}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_template")) as url:
        yield url
