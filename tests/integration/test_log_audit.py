"""`jpr audit verify` finds any rewrite of the history, on SQLite and PostgreSQL.

A registry records a small history over gRPC (reports submitted, accepted, rejected,
retracted; listings created and lifted) and signs checkpoints of it. The registry is
stopped, and then each test rewrites the database directly, as an operator with
database access could: an event row changed, deleted, reordered or inserted, a
report's status or envelope changed, a listing's status changed, a checkpoint row
forged. The auditor, rebuilding the tree from the rows with only the log's public
key, must name each. The untouched database passes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Connection

from jpr_client import Credentials, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2
from jpr_client.transparency.entry import commitment
from registry.cli.main import main
from registry.datadir import ADMIN_CREDENTIALS
from registry.store.database import Database
from registry.store import events
from registry.store.events import log_event
from registry.store.models import EventRow, ListingRow, LogCheckpointRow, LogLeafRow, LogPendingRow, ReportRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_lookup import report


@dataclass
class History:
    data_dir: Path
    database: Database
    accepted: str  # a report accepted into a listing that is still active
    rejected: str


def _wait_for_checkpoint(database: Database) -> None:
    """Until the registry has signed a checkpoint of every leaf (it signs every few seconds)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with database.read() as conn:
            leaves = conn.execute(select(func.count()).select_from(LogLeafRow)).scalar_one()
            signed = conn.execute(select(func.max(LogCheckpointRow.size))).scalar_one()
            pending = conn.execute(select(func.count()).select_from(LogPendingRow)).scalar_one()
        if leaves and signed == leaves and not pending:
            return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of all {leaves} leaves within 20 s (newest: {signed})")


@pytest.fixture
def history(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> Iterator[History]:
    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        accepted = a.submit_report(report(("cn_ric", "11010519491231002X"), ("phone", "13800138000"))).report_id
        also = b.submit_report(report(("cn_ric", "11010519491231002X"))).report_id
        rejected = b.submit_report(report(("cn_ric", "110101199003070978"))).report_id
        lifted = a.submit_report(report(("passport", "CHN-E12345678"))).report_id
        retracted = a.submit_report(report(("cn_ric", "110101199003070978"), ("phone", "13900139000"))).report_id
        a.retract_report(retracted, "filed in error")
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=accepted))
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=also))
    admin.call("RejectReport", admin_pb2.RejectReportRequest(report_id=rejected, reason="not serious enough"))
    listing = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=lifted))
    admin.call("LiftListing", admin_pb2.LiftListingRequest(listing_id=listing.listing.listing_id, reason="record corrected", grounds=admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION))  # type: ignore[attr-defined]
    _wait_for_checkpoint(registry.database)
    registry.running.stop(grace=None)
    yield History(registry.data_dir, registry.database, accepted, rejected)


def audit(history: History, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["audit", "verify", "--data-dir", str(history.data_dir), "--database-url", history.database.url, "--json", *flags])
    return code, json.loads(capsys.readouterr().out)


def problems(result: dict[str, object]) -> list[str]:
    return [f"{f['check']}: {f['where']}: {f['problem']}" for f in result["findings"]]  # type: ignore[attr-defined]


def test_an_untouched_history_passes(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = audit(history, capsys)
    assert (code, problems(result)) == (0, [])
    assert result["leaves"] == result["newest_checkpoint"] and result["checkpoints"] >= 1
    assert result["reports"] == 5 and result["listings"] == 2


def test_an_event_committed_but_not_yet_sequenced_is_counted_as_pending_not_a_finding(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    """The registry is stopped, so no sequencer gives this event its leaf: the live database's last second."""
    history.database.write(lambda session: events.record(session, at=datetime.now(UTC), actor="admin", kind="member.created", member="platform-c"))
    code, result = audit(history, capsys)
    assert (code, problems(result), result["pending"]) == (0, [], 1)
    main(["audit", "verify", "--data-dir", str(history.data_dir), "--database-url", history.database.url])
    assert "1 committed and not yet in the log" in capsys.readouterr().out


def test_the_log_key_from_a_credentials_file_or_the_command_line(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    credentials = history.data_dir / ADMIN_CREDENTIALS
    assert audit(history, capsys, "--credentials", str(credentials))[0] == 0
    key = Credentials.load(credentials).log_public_key
    assert audit(history, capsys, "--log-public-key", key)[0] == 0


def test_a_checkpoint_under_another_key_is_refused(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    from jpr_client.transparency.note import generate_signer_key

    _, other = generate_signer_key(Credentials.load(history.data_dir / ADMIN_CREDENTIALS).log_verifier.name)
    code, result = audit(history, capsys, "--log-public-key", other)
    assert code == 1 and all("does not verify with the log key" in p for p in problems(result) if p.startswith("checkpoints"))


def _rewrite(history: History, change: Callable[[Connection], None]) -> None:
    with history.database.engine.begin() as conn:
        change(conn)


def _seq(conn: Connection, kind: str, report_id: str) -> int:
    return int(conn.execute(select(EventRow.seq).where(EventRow.kind == kind, EventRow.report_id == report_id)).scalar_one())


def test_a_changed_event_row_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    def change(conn: Connection) -> None:
        seq = _seq(conn, "report.rejected", history.rejected)
        conn.execute(update(EventRow).where(EventRow.seq == seq).values(actor="admin:someone-else"))

    _rewrite(history, change)
    code, result = audit(history, capsys)
    assert code == 1
    assert any(p.startswith("events: leaf") and "differs from what its leaf committed to" in p for p in problems(result))
    assert any(p.startswith("checkpoints:") and "rewritten" in p for p in problems(result))


def test_a_deleted_event_row_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite(history, lambda conn: conn.execute(text("DELETE FROM events WHERE seq = :seq"),
                                                {"seq": _seq(conn, "report.rejected", history.rejected)}))
    code, result = audit(history, capsys)
    assert code == 1 and any("its event is not in the events table" in p for p in problems(result))


def test_an_event_deleted_with_its_leaf_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    def change(conn: Connection) -> None:
        seq = _seq(conn, "report.rejected", history.rejected)
        conn.execute(text("DELETE FROM log_leaves WHERE seq = :seq"), {"seq": seq})
        conn.execute(text("DELETE FROM events WHERE seq = :seq"), {"seq": seq})

    _rewrite(history, change)
    code, result = audit(history, capsys)
    found = problems(result)
    assert code == 1 and any("missing: the next leaf stored is" in p for p in found)
    assert any("history up to this size was rewritten" in p or "leaves were deleted" in p for p in found)


def test_reordered_leaves_are_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    """Two leaves swapped, each still committing correctly to its event: only the tree shows it."""
    def change(conn: Connection) -> None:
        first, second = conn.execute(select(LogLeafRow.leaf_index, LogLeafRow.seq, LogLeafRow.commitment)
                                     .order_by(LogLeafRow.leaf_index).offset(3).limit(2)).all()
        conn.execute(text("UPDATE log_leaves SET leaf_index = -1 WHERE leaf_index = :i"), {"i": first.leaf_index})
        conn.execute(text("UPDATE log_leaves SET leaf_index = :a WHERE leaf_index = :b"), {"a": first.leaf_index, "b": second.leaf_index})
        conn.execute(text("UPDATE log_leaves SET leaf_index = :b WHERE leaf_index = -1"), {"b": second.leaf_index})

    _rewrite(history, change)
    code, result = audit(history, capsys)
    found = problems(result)
    assert code == 1 and found and all(p.startswith("checkpoints:") and "rewritten" in p for p in found)


def test_an_inserted_event_row_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    """Written behind the API, it has no leaf; given one in the middle, with a correct commitment, every root after it changes."""
    def insert_without_leaf(conn: Connection) -> None:
        conn.execute(text("INSERT INTO events (occurred_at, actor, kind, report_id, detail, salt) "
                          "SELECT occurred_at, actor, 'report.rejected', report_id, detail, salt FROM events WHERE seq = :seq"),
                     {"seq": _seq(conn, "report.accepted", history.accepted)})

    _rewrite(history, insert_without_leaf)
    code, result = audit(history, capsys)
    assert code == 1 and any("has no leaf in the log" in p for p in problems(result))


def test_an_event_inserted_into_the_middle_of_the_log_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    def insert_in_the_middle(conn: Connection) -> None:
        seq = int(conn.execute(text("INSERT INTO events (occurred_at, actor, kind, report_id, detail, salt) "
                                    "SELECT occurred_at, actor, kind, report_id, detail, salt FROM events WHERE seq = :seq RETURNING seq"),
                               {"seq": _seq(conn, "report.rejected", history.rejected)}).scalar_one())
        row = conn.execute(select(EventRow).where(EventRow.seq == seq)).one()
        size = int(conn.execute(select(func.count()).select_from(LogLeafRow)).scalar_one())
        for index in range(size - 1, 4, -1):  # shift leaves 5.. up by one, from the end
            conn.execute(text("UPDATE log_leaves SET leaf_index = :new WHERE leaf_index = :old"), {"new": index + 1, "old": index})
        conn.execute(text("INSERT INTO log_leaves (leaf_index, seq, commitment) VALUES (5, :seq, :c)"),
                     {"seq": seq, "c": commitment(log_event(seq, row._mapping))})

    _rewrite(history, insert_in_the_middle)
    code, result = audit(history, capsys)
    found = problems(result)
    assert code == 1 and any(p.startswith("checkpoints:") and "rewritten" in p for p in found)
    assert not any("differs from what its leaf committed to" in p for p in found)  # each leaf is right: the order is not


def test_a_report_status_changed_in_the_database_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite(history, lambda conn: conn.execute(update(ReportRow).where(ReportRow.report_id == history.rejected).values(status="ACCEPTED")))
    code, result = audit(history, capsys)
    assert code == 1
    assert problems(result) == [f"reports: report {history.rejected}: status ACCEPTED in the database, REJECTED in the log"]


def test_a_report_envelope_changed_in_the_database_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    def change(conn: Connection) -> None:
        envelope = conn.execute(select(ReportRow.envelope).where(ReportRow.report_id == history.accepted)).scalar_one()
        conn.execute(update(ReportRow).where(ReportRow.report_id == history.accepted).values(envelope=bytes(envelope) + b" "))

    _rewrite(history, change)
    code, result = audit(history, capsys)
    assert code == 1 and any(p.startswith(f"reports: report {history.accepted}: its stored envelope hashes to") for p in problems(result))


def test_a_listing_status_changed_in_the_database_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite(history, lambda conn: conn.execute(update(ListingRow).where(ListingRow.status == "LIFTED").values(status="ACTIVE")))
    code, result = audit(history, capsys)
    assert code == 1 and any(p.startswith("listings:") and "status ACTIVE in the database, LIFTED in the log" in p for p in problems(result))


def test_a_forged_checkpoint_row_is_found(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    def forge(conn: Connection) -> None:
        newest = conn.execute(select(func.max(LogCheckpointRow.size))).scalar_one()
        note = conn.execute(select(LogCheckpointRow.note).where(LogCheckpointRow.size == newest)).scalar_one()
        lines = note.split("\n")
        lines[2] = "A" * 43 + "="  # another root, the signature left as it was
        conn.execute(update(LogCheckpointRow).where(LogCheckpointRow.size == newest).values(note="\n".join(lines)))

    _rewrite(history, forge)
    code, result = audit(history, capsys)
    assert code == 1 and any("does not verify with the log key" in p for p in problems(result))


def test_a_backup_is_audited_like_the_live_database(history: History, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if not history.database.is_sqlite:
        pytest.skip("jpr db backup copies SQLite databases; a PostgreSQL backup is restored with pg_restore, then audited by URL")
    copy = tmp_path / "backup.db"
    assert main(["db", "backup", str(copy), "--data-dir", str(history.data_dir), "--database-url", history.database.url]) == 0
    capsys.readouterr()
    code = main(["audit", "verify", "--data-dir", str(history.data_dir), "--backup", str(copy), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert (code, problems(result)) == (0, [])


def test_bad_inputs_name_the_flag(history: History, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    assert main(["audit", "verify", "--backup", str(missing), "--data-dir", str(history.data_dir)]) == 1
    assert f"--backup {missing}: no such file" in capsys.readouterr().err
    assert main(["audit", "verify", "--data-dir", str(history.data_dir), "--log-public-key", "not-a-key"]) == 1
    assert "--log-public-key" in capsys.readouterr().err
    not_a_registry = tmp_path / "other.db"
    not_a_registry.write_bytes(b"")
    assert main(["audit", "verify", "--backup", str(not_a_registry), "--data-dir", str(history.data_dir)]) == 1
    assert "is not a registry database with a transparency log" in capsys.readouterr().err
