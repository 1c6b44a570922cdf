"""The lookup index kept in DATA_DIR/index.snapshot between starts, on SQLite and PostgreSQL.

A restart reads the snapshot back and catches up with every event after it, and answers
for every indexed token exactly as reading the database whole does. A snapshot that is not
this database's history or this code's (damaged, cut short, another database, a database
restored from an older backup, another registry version or schema revision, too far behind)
is not used: the registry says why in one line and reads the database. Writing one never
fails a stop; `index_snapshot_seconds = 0` neither writes nor reads one; one process of
several writes it; the follower writes it every `index_snapshot_seconds`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from jpr_client import Credentials, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2
from registry.datadir import ADMIN_CREDENTIALS, INDEX_SNAPSHOT, DataDir
from registry.server.app import start
from registry.settings import load_settings
from registry.store import index_snapshot, view
from registry.store.database import Database
from registry.store.models import EventRow, ReportTokenRow
from registry.store.view import ReadView
from tests.conftest import AdminClient, Registry
from tests.integration.test_import import valid_ric
from tests.integration.test_lookup import accept, applicant, report


def ids(count: int) -> list[str]:
    """Valid mainland ID numbers."""
    return [valid_ric(n) for n in range(1, count + 1)]


def tokens_of(database: Database) -> list[bytes]:
    with database.read() as conn:
        return sorted(set(conn.execute(select(ReportTokenRow.token)).scalars()))


def same_answers(database: Database, restored: ReadView) -> None:
    """Every indexed token (and an unknown one) answers as a view that read the database whole."""
    whole = ReadView(database)
    whole.load()
    tokens = [*tokens_of(database), bytes(64)]
    assert len(tokens) > 5
    assert (restored.subjects_indexed, restored.tokens_indexed) == (whole.subjects_indexed, whole.tokens_indexed)
    for now in (datetime.now(UTC), datetime.now(UTC) + timedelta(days=3000)):
        for token in tokens:
            assert restored.find([token], now) == whole.find([token], now), token.hex()


def new_member(registry: Registry, port: int, name: str) -> Credentials:
    """A member added through the registry started again on `port` (the fixture's has stopped)."""
    admin = AdminClient(Credentials.load(registry.data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{port}"), DataDir(registry.data_dir).issuer())
    try:
        return admin.add_member(name).with_endpoint(f"127.0.0.1:{port}")
    finally:
        admin.close()


def settings_of(registry: Registry, **flags: object) -> object:
    return load_settings({"data_dir": registry.data_dir, "listen": "127.0.0.1:0", "database_url": registry.database.url, **flags}, environ={})


@dataclass
class Kept:
    data_dir: Path
    database: Database
    snapshot: Path


@pytest.fixture
def kept(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> Iterator[Kept]:
    """A history with a snapshot of its first half kept, then more changes; the registry stopped."""
    people = ids(6)
    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        first = [a.submit_report(report(("cn_ric", p), ("phone", f"1380013800{n}"))).report_id for n, p in enumerate(people[:3])]
        accept(admin, first[0])
        accept(admin, first[1])
        registry.running.view.write_snapshot()
        snapshot = registry.data_dir / INDEX_SNAPSHOT
        early = registry.data_dir / "early.snapshot"
        shutil.copyfile(snapshot, early)
        # After the snapshot: new reports, one accepted; a listing lifted; a report retracted; a shared phone.
        later = [b.submit_report(report(("cn_ric", p), ("phone", "13800138000"))).report_id for p in people[3:]]
        accept(admin, later[0])
        listing = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=first[2], reason="verified"))
        admin.call("LiftListing", admin_pb2.LiftListingRequest(
            listing_id=listing.listing.listing_id, reason="record corrected", grounds=admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION))  # type: ignore[attr-defined]
        b.retract_report(later[2], "filed in error")
    registry.running.stop(grace=None)  # writes the snapshot of everything
    assert index_snapshot.read(snapshot).stamp.floor > index_snapshot.read(early).stamp.floor
    shutil.copyfile(early, snapshot)  # as if the registry had crashed after the early snapshot
    yield Kept(registry.data_dir, registry.database, snapshot)


def test_a_restart_reads_the_snapshot_back_and_catches_up_with_the_events_after_it(
    kept: Kept, registry: Registry, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="registry.store.view")
    running = start(settings_of(registry))  # type: ignore[arg-type]
    try:
        assert any("lookup index restored from" in r.getMessage() for r in caplog.records), caplog.text
        same_answers(kept.database, running.view)
        credentials = new_member(registry, running.port, "platform-c")
        with RegistryClient(credentials) as c:
            people = ids(6)
            verdicts = [c.lookup(applicant(("cn_ric", p))).verdict for p in people]
        # accepted before the snapshot (2), lifted after it, retracted after it, accepted after it, still under review
        assert verdicts == [Verdict.DENY, Verdict.DENY, Verdict.CLEAR, Verdict.DENY, Verdict.REVIEW, Verdict.CLEAR]
    finally:
        running.stop(grace=None)


def _damaged(kept: Kept) -> None:
    data = bytearray(kept.snapshot.read_bytes())
    data[len(data) // 2] ^= 0x01
    kept.snapshot.write_bytes(bytes(data))


def _cut_short(kept: Kept) -> None:
    kept.snapshot.write_bytes(kept.snapshot.read_bytes()[:-10])


def _not_a_snapshot(kept: Kept) -> None:
    kept.snapshot.write_text("registry.db\n")


def _rewritten(kept: Kept, **changes: object) -> None:
    old = index_snapshot.read(kept.snapshot)
    table, records, subjects = _export(old)
    index_snapshot.write(kept.snapshot, replace(old.stamp, **changes), table, records, subjects)  # type: ignore[arg-type]


def _export(old: index_snapshot.Snapshot) -> tuple[dict[str, bytes], list[bytes | None], int]:
    return old.table.sections(), old.records, old.subjects


def _header_of_wrong_types(kept: Kept) -> None:
    """A file whose SHA-256 holds but whose header says what no writer wrote."""
    data = kept.snapshot.read_bytes()[:-32]
    (size,) = struct.unpack_from("<I", data, 8)
    header = json.loads(data[12 : 12 + size])
    header["events"] = float("inf")
    text = json.dumps(header).encode()
    body = data[:8] + struct.pack("<I", len(text)) + text + data[12 + size :]
    kept.snapshot.write_bytes(body + hashlib.sha256(body).digest())


def _an_event_missing_below(kept: Kept) -> None:
    """The database lacks an event the snapshot counted: a backup taken while it was still committing."""
    with kept.database.engine.begin() as conn:
        conn.execute(delete(EventRow).where(EventRow.seq == 1))


def _another_history(kept: Kept) -> None:
    floor = index_snapshot.read(kept.snapshot).stamp.floor
    with kept.database.engine.begin() as conn:
        conn.execute(update(EventRow).where(EventRow.seq == floor).values(salt=bytes(32)))


def _older_backup(kept: Kept) -> None:
    _rewritten(kept, floor=10**9)


CASES = {
    "damaged": (_damaged, "is damaged (its SHA-256 does not match)"),
    "cut short": (_cut_short, "is damaged (its SHA-256 does not match)"),
    "not a snapshot": (_not_a_snapshot, "is not a lookup index snapshot of this format"),
    "another format": (lambda kept: _rewritten(kept, format=99), "is of format 99; this registry reads format 1"),
    "another version": (lambda kept: _rewritten(kept, version="0.0.1"), "it was written by registry 0.0.1"),
    "another revision": (lambda kept: _rewritten(kept, revision="0001"), "it was written at schema revision 0001"),
    "another history": (_another_history, "is not the one the snapshot applied"),
    "an older backup": (_older_backup, "the database has no event 1000000000"),
    "too far behind": (lambda kept: None, "events came after it, more than reading the database again costs"),
    "another layout": (lambda kept: _rewritten(kept, layout="0" * 16), "was written by code that packs records or codes types otherwise"),
    "a header of the wrong types": (_header_of_wrong_types, "does not hold a lookup index"),
    "an event missing below it": (_an_event_missing_below, "events up to event"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_snapshot_that_is_not_this_databases_history_is_not_used(
    kept: Kept, case: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    change, reason = CASES[case]
    change(kept)
    if case == "too far behind":
        monkeypatch.setattr(view, "_SNAPSHOT_CATCH_UP", 0)
    caplog.set_level(logging.INFO, logger="registry.store.view")
    restored = ReadView(kept.database, snapshot=kept.snapshot)
    restored.load()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and reason in warnings[0] and "reading the database instead" in warnings[0], warnings
    assert not any(r.exc_info for r in caplog.records)
    assert any("lookup index loaded" in r.getMessage() for r in caplog.records)
    same_answers(kept.database, restored)


def test_a_snapshot_that_cannot_be_written_is_one_warning_and_the_stop_completes(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], caplog: pytest.LogCaptureFixture,
) -> None:
    with RegistryClient(member("platform-a")) as a:
        a.submit_report(report(("cn_ric", ids(1)[0])))
    (registry.data_dir / INDEX_SNAPSHOT).mkdir()  # the rename over it fails, as on a read-only data directory
    caplog.set_level(logging.INFO)
    registry.running.stop(grace=None)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == [f"could not write the lookup index snapshot {registry.data_dir / INDEX_SNAPSHOT}"]
    assert not any(r.exc_info for r in caplog.records)
    assert not list(registry.data_dir.glob(".index.snapshot.*.tmp"))  # no temporary file left behind


def test_snapshots_turned_off_are_neither_written_nor_read(kept: Kept, registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    before = kept.snapshot.read_bytes()
    caplog.set_level(logging.INFO, logger="registry.store.view")
    running = start(settings_of(registry, index_snapshot_seconds=0))  # type: ignore[arg-type]
    try:
        assert any("lookup index loaded" in r.getMessage() for r in caplog.records)
        assert not any("restored" in r.getMessage() for r in caplog.records)
    finally:
        running.stop(grace=None)
    assert kept.snapshot.read_bytes() == before


def test_only_the_process_that_keeps_the_snapshot_writes_it(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as a:
        a.submit_report(report(("cn_ric", ids(1)[0])))
    registry.running.stop(grace=None)
    snapshot = registry.data_dir / INDEX_SNAPSHOT
    snapshot.unlink()
    start(settings_of(registry), keeps_snapshot=False).stop(grace=None)  # type: ignore[arg-type]
    assert not snapshot.exists()
    start(settings_of(registry)).stop(grace=None)  # type: ignore[arg-type]
    assert snapshot.exists()


def test_the_follower_writes_the_snapshot_every_interval(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    registry.running.stop(grace=None)
    snapshot = registry.data_dir / INDEX_SNAPSHOT
    snapshot.unlink(missing_ok=True)
    running = start(settings_of(registry, index_snapshot_seconds=1))  # type: ignore[arg-type]
    try:
        credentials = new_member(registry, running.port, "platform-a")
        with RegistryClient(credentials) as a:
            a.submit_report(report(("cn_ric", ids(1)[0])))
        floor = running.view.floor
        deadline = time.monotonic() + 10
        while not (snapshot.exists() and index_snapshot.read(snapshot).stamp.floor >= floor) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert snapshot.exists() and index_snapshot.read(snapshot).stamp.floor >= floor
    finally:
        running.stop(grace=None)


READ_BACK = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from registry.store.database import Database
from registry.store.view import ReadView
database = Database(sys.argv[1])
view = ReadView(database, snapshot=Path(sys.argv[2]))
view.load()
found = view.find([bytes.fromhex(t) for t in json.loads(sys.argv[3])], datetime.now(UTC))[0]
print(json.dumps({t.hex(): sorted(h.subject for h in hits) for t, hits in found.items()}))
"""


@pytest.mark.parametrize("seed", ["1", "random"])
def test_a_snapshot_read_back_by_another_process_answers_alike(kept: Kept, registry: Registry, seed: str) -> None:
    """The next start is another process, with its own hash() key: every token must still be found."""
    tokens = tokens_of(kept.database)
    result = subprocess.run(
        [sys.executable, "-c", READ_BACK, kept.database.url, str(kept.snapshot), json.dumps([t.hex() for t in tokens])],
        env={**os.environ, "PYTHONHASHSEED": seed}, check=True, capture_output=True, text=True,
    )
    whole = ReadView(kept.database)
    whole.load()
    expected = {t.hex(): sorted(h.subject for h in hits) for t, hits in whole.find(tokens, datetime.now(UTC))[0].items()}
    assert json.loads(result.stdout) == expected and len(expected) > 5


def test_a_snapshot_is_put_off_while_a_later_event_is_applied_past_a_gap(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL commits out of sequence order: an event above the floor may be applied already, and a
    snapshot stamped with the floor alone would not say so; the registry waits until the gap closes."""
    with RegistryClient(member("platform-a")) as a:
        a.submit_report(report(("cn_ric", ids(1)[0])))
    running = registry.running
    running.view._cursor.take([running.view.floor + 2])  # as if event floor + 2 had committed before floor + 1
    caplog.set_level(logging.INFO, logger="registry.store.view")
    running.view.write_snapshot()
    assert not (registry.data_dir / INDEX_SNAPSHOT).exists()
    assert any("snapshot put off" in r.getMessage() for r in caplog.records)
