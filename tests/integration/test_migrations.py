"""Alembic migrations: an empty database reaches the models exactly; the server refuses other revisions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from registry.datadir import DataDir
from registry.server.app import start
from registry.settings import load_settings
from registry.store import schema
from registry.store.database import Database
from registry.store.errors import SchemaError
from registry.store.models import Base


@pytest.fixture
def empty_database(database_url: str) -> Iterator[Database]:
    """The backend's fresh database, emptied back to no schema at all."""
    database = Database(database_url)
    with database.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE alembic_version"))
    yield database
    database.dispose()


def test_migrating_an_empty_database_to_head_matches_the_models(empty_database: Database) -> None:
    assert schema.current_revision(empty_database) is None
    schema.upgrade(empty_database)
    assert schema.current_revision(empty_database) == schema.head_revision()
    with empty_database.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def serve(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    if not data_dir.exists():
        DataDir(data_dir).initialize(registry_name="jpr-test", admin_name="admin", endpoint="127.0.0.1:0")
    settings = load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url}, environ={})
    start(settings).stop(grace=None)


def test_server_refuses_an_empty_database_and_names_the_command(tmp_path: Path, empty_database: Database) -> None:
    with pytest.raises(SchemaError, match="jpr db upgrade"):
        serve(tmp_path, empty_database.url)


def test_server_refuses_an_older_schema_and_names_the_command(tmp_path: Path, database_url: str) -> None:
    database = Database(database_url)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'base0'"))
    with pytest.raises(SchemaError, match="does not know"):
        serve(tmp_path, database_url)
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": schema.head_revision()})
    database.dispose()
    serve(tmp_path, database_url)  # at head it starts
