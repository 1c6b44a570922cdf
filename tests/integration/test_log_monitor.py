"""The SDK follows a real registry's transparency log over gRPC and TLS: it proves receipts, changes and
matches against checkpoints it verified, and refuses a registry whose operator rewrote history with the
registry's own log key, or serves an older state of the log."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import delete, insert, select, update

from jpr_client import (
    Credentials,
    LogForkError,
    LogProofError,
    LogRollbackError,
    MonitorConfig,
    Opinion,
    RegistryClient,
)
from jpr_client.api.jpr.v1 import log_pb2, log_pb2_grpc
from jpr_client.client import secure_channel
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.merkle import Appender, leaf_hash
from jpr_client.transparency.note import open_note, sign_note
from registry.datadir import DataDir
from registry.server.app import start
from registry.settings import load_settings
from registry.store.models import EventRow, LogCheckpointRow, LogCosignatureRow, LogLeafRow, LogNodeRow, LogStateRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_changes import take
from tests.integration.test_lookup import PHONE, RIC, accept, applicant, report


def grown(client: RegistryClient, beyond: int, within: float = 15.0) -> Checkpoint:
    """The client's newest verified checkpoint once it covers more than `beyond` leaves."""
    deadline = time.monotonic() + within
    while True:
        checkpoint = client.checkpoint()
        if checkpoint.size > beyond:
            return checkpoint
        assert time.monotonic() < deadline, f"no checkpoint beyond size {beyond} within {within} s"
        time.sleep(0.3)


def rewrite_history(registry: Registry, leaf_index: int) -> None:
    """What an operator holding the data directory could do: replace one leaf, rebuild every node of the
    tree over it, drop the checkpoints signed so far and sign the rewritten tree with the registry's log.key."""
    signer = DataDir(registry.data_dir).log_signer()

    def rewrite(conn: Any) -> None:
        conn.execute(update(LogLeafRow).where(LogLeafRow.leaf_index == leaf_index).values(commitment=bytes(32)))
        size = conn.execute(select(LogStateRow.size).where(LogStateRow.name == "integrated")).scalar_one()
        leaves = conn.execute(select(LogLeafRow.commitment).where(LogLeafRow.leaf_index < size).order_by(LogLeafRow.leaf_index)).scalars()
        appender, nodes = Appender(), list[dict[str, Any]]()
        for commitment in leaves:
            nodes.extend({"level": level, "idx": index, "hash": hashed} for level, index, hashed in appender.append(leaf_hash(commitment)))
        conn.execute(delete(LogNodeRow))
        conn.execute(insert(LogNodeRow), nodes)
        conn.execute(update(LogStateRow).where(LogStateRow.name == "integrated").values(root_hash=appender.root()))
        conn.execute(delete(LogCosignatureRow))
        conn.execute(delete(LogCheckpointRow))
        note = sign_note(Checkpoint(signer.name, size, appender.root()).body(), [signer])
        conn.execute(insert(LogCheckpointRow).values(size=size, root_hash=appender.root(), note=note, signed_at=registry.clock()))

    registry.database.write_locked(rewrite)


def member_client(member: Callable[[str], Credentials], name: str, state: Path | None = None) -> RegistryClient:
    return RegistryClient(member(name), monitor=MonitorConfig(state_file=state))


def test_the_monitor_follows_the_growing_log_and_proves_receipts_matches_and_changes(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    state = tmp_path / "jpr-log.state"
    with member_client(member, "platform-a", state) as a, member_client(member, "platform-b") as b:
        receipt = a.submit_report(report(("cn_ric", RIC), ("phone", PHONE)))
        proof = a.prove_receipt(receipt)  # waits for the checkpoint covering it
        assert proof.event.report_id == receipt.report_id and proof.event.kind == "report.submitted"
        assert proof.leaf_index < proof.checkpoint.size
        first = a.checkpoint()
        accept(admin, receipt.report_id)
        (match,) = b.lookup(applicant(("cn_ric", RIC))).matches
        listing = b.prove_match(match)
        assert listing.event.listing_id == match.listing_id and listing.event.kind == "listing.created"
        b.record_opinion(match.listing_id, Opinion.CONFIRMED)  # a listing.opinion event: no state of the listing in it
        assert b.prove_match(match).event.seq == listing.event.seq
        (change,) = take(b.watch_changes(tmp_path / "changes.cursor"), 1)
        assert b.prove_change(change).event.seq == int(change.cursor)
        later = grown(a, first.size)
        assert open_note(state.read_text(encoding="utf-8"), [a.credentials.log_verifier]).text == later.body()
    with member_client(member, "platform-c", state) as restarted:  # a new process keeps checking from the file
        assert restarted.checkpoint().size >= later.size


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_a_history_rewritten_and_re_signed_with_the_registrys_log_key_is_refused_as_a_fork(
    registry: Registry, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    state = tmp_path / "jpr-log.state"
    with member_client(member, "platform-a", state) as a:
        a.prove_receipt(a.submit_report(report(("cn_ric", RIC))))
        seen = a.checkpoint()
        rewrite_history(registry, leaf_index=0)
        with pytest.raises(LogForkError) as caught:
            a.checkpoint()
        assert f"size {seen.size}" in str(caught.value) and str(state) in str(caught.value)
        a.submit_report(report(("cn_ric", "110101199003070978")))  # the registry signs a larger tree on the rewritten one
        time.sleep(3)
    with member_client(member, "platform-b", state) as restarted, pytest.raises(LogForkError, match="not consistent"):
        restarted.checkpoint()
    assert open_note(state.read_text(encoding="utf-8"), [restarted.credentials.log_verifier]).text == seen.body()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_registry_restored_from_an_older_backup_is_refused_as_a_rollback(
    registry: Registry, member: Callable[[str], Credentials], tmp_path: Path, database_url: str
) -> None:
    state, database_file = tmp_path / "jpr-log.state", Path(database_url.split("///", 1)[1])
    credentials = member("platform-a")
    with RegistryClient(credentials, monitor=MonitorConfig(state_file=state)) as a:
        a.prove_receipt(a.submit_report(report(("cn_ric", RIC))))
        old = a.checkpoint()
        backup = tmp_path / "backup.db"
        with sqlite3.connect(database_file) as source, sqlite3.connect(backup) as copy:
            source.backup(copy)
        a.prove_receipt(a.submit_report(report(("cn_ric", "110101199003070978"))))
        assert grown(a, old.size).size > old.size
    registry.running.stop(grace=None)
    with sqlite3.connect(backup) as saved, sqlite3.connect(database_file) as live:  # the restore, through SQLite (WAL and all)
        saved.backup(live)
    settings = load_settings({"data_dir": registry.data_dir, "listen": "127.0.0.1:0", "database_url": database_url}, environ={})
    restored = start(settings, clock=registry.clock)
    try:
        with RegistryClient(credentials.with_endpoint(f"127.0.0.1:{restored.port}"), monitor=MonitorConfig(state_file=state)) as a:
            with pytest.raises(LogRollbackError) as caught:
                a.checkpoint()
        assert f"size {old.size}" in str(caught.value)
    finally:
        restored.stop(grace=None)


def alter_event(registry: Registry, seq: int, **detail: Any) -> None:
    """Change an event row's detail in place, leaving its leaf as it is (what the auditor and the SDK catch)."""
    def alter(conn: Any) -> None:
        before = conn.execute(select(EventRow.detail).where(EventRow.seq == seq)).scalar_one()
        conn.execute(update(EventRow).where(EventRow.seq == seq).values(detail={**(before or {}), **detail}))

    registry.database.write_locked(alter)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_proofs_fail_when_an_event_row_was_altered_in_the_database(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    with member_client(member, "platform-a") as a, member_client(member, "platform-b") as b:
        receipt = a.submit_report(report(("cn_ric", RIC)))
        a.prove_receipt(receipt)
        accept(admin, receipt.report_id)
        (match,) = b.lookup(applicant(("cn_ric", RIC))).matches
        listing = b.prove_match(match)
        alter_event(registry, receipt.event_seq, envelope_sha256="00" * 32)
        with pytest.raises(LogProofError, match="not the one its log recorded"):
            a.prove_receipt(receipt)
        alter_event(registry, listing.event.seq, severity="SEVERE")
        with pytest.raises(LogProofError, match="not the one its log recorded"):
            b.prove_match(match)
        (change,) = take(b.watch_changes(tmp_path / "changes.cursor"), 1)  # the feed replays the altered snapshot
        with pytest.raises(LogProofError, match="not the one its log recorded"):
            b.prove_change(change)


def test_an_entry_asked_for_before_the_first_checkpoint_is_retried_not_missing(
    registry: Registry, member: Callable[[str], Credentials]
) -> None:
    """A new registry has signed no checkpoint: GetLogEntry says FAILED_PRECONDITION (retry, protocol 11),
    so `prove_receipt` waits for the first one instead of failing at once with NOT_FOUND."""
    registry.running.checkpoints.close()  # no pass signs behind the test's back
    registry.database.write_locked(lambda conn: (conn.execute(delete(LogCosignatureRow)), conn.execute(delete(LogCheckpointRow))))
    credentials = member("platform-a")
    with RegistryClient(credentials, monitor=MonitorConfig()) as a:
        receipt = a.submit_report(report(("cn_ric", RIC)))
        with secure_channel(credentials) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                log_pb2_grpc.TransparencyLogStub(channel).GetLogEntry(log_pb2.GetLogEntryRequest(event_seq=receipt.event_seq), timeout=10)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION, refused.value.details()
        assert registry.running.checkpoints.sign_now() is not None
        proof = a.prove_receipt(receipt)
        assert proof.leaf_index < proof.checkpoint.size
