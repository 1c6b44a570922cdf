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


def test_reports_accepted_before_0007_keep_their_listings_end(empty_database: Database) -> None:
    """Reports accepted before each kept its own end take their listing's: a later retraction never
    shortens a listing below what the registry knew, and a report without a listing gets none."""
    from datetime import datetime

    schema.upgrade(empty_database, "0006")
    at, until = datetime(2026, 1, 5, 9, 30), datetime(2031, 1, 4, 9, 30)
    rows = {"at": at, "until": until, "blob": b"\x00" * 32}
    with empty_database.engine.begin() as conn:
        conn.execute(text("INSERT INTO members (id, name, status, created_at) VALUES (1, 'platform-a', 'ACTIVE', :at)"), rows)
        conn.execute(text("INSERT INTO member_keys (key_id, member_id, public_key, valid_from) VALUES ('k1', 1, :blob, :at)"), rows)
        conn.execute(text("INSERT INTO subjects (id, created_at) VALUES (1, :at)"), rows)
        conn.execute(text("INSERT INTO listings (id, subject_id, status, listed_from, listed_until, created_at, updated_at) "
                          "VALUES (1, 1, 'ACTIVE', :at, :until, :at, :at)"), rows)
        for report_id, status, listing in (("r-accepted", "ACCEPTED", 1), ("r-submitted", "SUBMITTED", None)):
            conn.execute(text(
                "INSERT INTO reports (report_id, member_id, subject_id, status, role, category, severity, created_at, received_at, "
                "key_id, envelope, envelope_sha256, payload_sha256, listing_id) VALUES (:id, 1, 1, :status, 'MERCHANT', 'FRAUD', "
                "'SEVERE', :at, :at, 'k1', :blob, :blob, :blob, :listing)"), {**rows, "id": report_id, "status": status, "listing": listing})
    schema.upgrade(empty_database)
    with empty_database.engine.connect() as conn:
        ends = dict(conn.execute(text("SELECT report_id, term_ends_at FROM reports")).all())
    assert ends["r-submitted"] is None
    assert ends["r-accepted"] in (until, until.isoformat(sep=" "), str(until))


def test_events_before_0011_get_salts_and_leaves_in_seq_order_and_the_tree_follows(empty_database: Database, database_url: str) -> None:
    """Every event written before the transparency log becomes a leaf, in seq order, committing to its
    row as stored; the sequencer then builds the tree and signs the first checkpoint."""
    from datetime import UTC, datetime

    from jpr_client.transparency.note import Signer, generate_signer_key
    from registry.domain.transparency import TransparencyService
    from registry.store.log import LogStore
    from registry.store.witnesses import WitnessStore
    from tests.integration.log_checks import check_log

    schema.upgrade(empty_database, "0010")
    with empty_database.engine.begin() as conn:
        for n in range(7):
            conn.execute(text("INSERT INTO events (occurred_at, actor, kind, report_id, subject_id, listing_id, detail) "
                              "VALUES (:at, 'admin:admin', 'member.created', NULL, :subject, NULL, :detail)"),
                         {"at": datetime(2026, 1, 5, 9, 30, n), "subject": n or None, "detail": '{"member": "platform-%d", "n": 1.5}' % n})
    schema.upgrade(empty_database)
    signer = Signer.from_key_string(generate_signer_key("jpr-test")[0])
    assert check_log(database_url, signer.verifier()) == (7, 0)
    service = TransparencyService(LogStore(empty_database), WitnessStore(empty_database), signer, clock=lambda: datetime.now(UTC))
    signed = service.advance()
    assert signed is not None and signed.size == 7
    assert check_log(database_url, signer.verifier()) == (7, 1)
    assert service.advance() is None, "nothing new: no second checkpoint of the same size"
