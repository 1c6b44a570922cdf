"""The auditor: rebuild the transparency log from the events and check everything it signed.

`jpr audit verify` runs this against the live database or a backup, with nothing
but the log's public key: it trusts neither the stored tree nor the stored leaves.

1. Leaves: indexes 0..n-1 without a gap, each naming an event that exists; every
   event has its leaf (an event row inserted behind the API has none).
2. Commitments: each leaf's commitment recomputed from its event row and salt
   (a changed event row, or one given another seq, no longer matches).
3. Tree: the tree rebuilt from the recomputed commitments, in leaf order; every
   stored checkpoint must carry the log key's signature and the rebuilt root at
   its size (a deleted, reordered or inserted leaf changes every root after it),
   and no checkpoint may be larger than the leaves that remain.
4. Reports: each stored envelope hashes to the digest its report.submitted event
   committed to; a report without that event was written behind the API; a report's
   status is the one its last report.* event recorded.
5. Listings: a listing's status is the one its last listing.* event recorded.

Everything is read in one snapshot, so a live database can be audited while it serves.
The tree is rebuilt in O(log n) memory; the per-report and per-listing expectations
are held in memory, one small entry each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from jpr_client.model import ListingStatus, ReportStatus
from jpr_client.transparency import merkle
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.entry import commitment
from jpr_client.transparency.note import NoteError, Verifier, open_note
from registry.store.database import Database
from registry.store.events import log_event
from registry.store.models import EventRow, ListingRow, LogCheckpointRow, LogLeafRow, LogPendingRow, ReportRow
from registry.store.refs import listing_ref

# report.* events and the status each leaves the report in (events before the log carried no status).
_REPORT_STATUS = {
    "report.submitted": ReportStatus.SUBMITTED.value,
    "report.accepted": ReportStatus.ACCEPTED.value,
    "report.rejected": ReportStatus.REJECTED.value,
    "report.retracted": ReportStatus.RETRACTED.value,
}
# Events recorded before listing events carried the listing's snapshot: the status some kinds imply.
_LISTING_STATUS_AFTER = {
    "listing.activated": ListingStatus.ACTIVE.value,
    "listing.lifted": ListingStatus.LIFTED.value,
    "listing.expired": ListingStatus.EXPIRED.value,
}
_STREAM = 5000  # rows fetched at a time


@dataclass(frozen=True)
class Finding:
    """One disagreement, named so an auditor can find the row: what, where, and what is wrong."""

    check: str  # "leaves", "events", "checkpoints", "reports", "listings"
    where: str  # e.g. "leaf 12 (event 14)", "checkpoint 40", "report 0c1d..."
    problem: str

    def __str__(self) -> str:
        return f"{self.check}: {self.where}: {self.problem}"


@dataclass(frozen=True)
class AuditReport:
    leaves: int
    checkpoints: int  # stored checkpoints checked
    newest_checkpoint: int  # the largest signed size; leaves beyond it are not signed yet
    reports: int
    listings: int
    findings: tuple[Finding, ...]
    root_hash: bytes = b""  # the rebuilt tree's root at `leaves`
    pending: int = 0  # events committed but not yet given a leaf by the sequencer (a live database's last second)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class _Expected:
    """What the events say about reports and listings, gathered in leaf order."""

    envelopes: dict[str, str] = field(default_factory=dict)  # report id -> hex SHA-256 its submission committed to
    submitted: set[str] = field(default_factory=set)
    report_status: dict[str, str] = field(default_factory=dict)
    listing_status: dict[str, str | None] = field(default_factory=dict)  # listing ref -> its status after its last event
    in_flight: set[str] = field(default_factory=set)  # report ids and listing refs of events still pending a leaf

    def take(self, kind: str, report_id: str, listing: str, detail: dict[str, Any]) -> None:
        if kind in _REPORT_STATUS and report_id:
            if kind == "report.submitted":
                self.submitted.add(report_id)
                if "envelope_sha256" in detail:
                    self.envelopes[report_id] = str(detail["envelope_sha256"])
            self.report_status[report_id] = str(detail.get("status", _REPORT_STATUS[kind]))
        if kind.startswith("listing.") and listing:
            status = detail.get("status", _LISTING_STATUS_AFTER.get(kind))
            self.listing_status[listing] = None if status is None else str(status)  # None: an early event without it


def verify(db: Database, log_key: Verifier, *, progress: Callable[[int], None] | None = None) -> AuditReport:
    """Rebuild the log from `db` and check it against every checkpoint signed with `log_key`."""
    findings: list[Finding] = []
    # One snapshot for every query: a live registry's writes after it began are not half seen.
    with db.read(repeatable=True) as conn:
        checkpoints = _checkpoints(conn, log_key, findings)
        expected = _Expected()
        tree = merkle.Appender()
        pending = sorted(checkpoints)
        for index, seq, stored, event in _leaves(conn):
            if index != tree.size:
                findings.append(Finding("leaves", f"leaf {tree.size}", f"missing: the next leaf stored is {index}"
                                        if index > tree.size else f"stored twice (again as event {seq})"))
                if index < tree.size:
                    continue
            if event is None:
                findings.append(Finding("leaves", f"leaf {index} (event {seq})", "its event is not in the events table (deleted?)"))
                data = stored
            else:
                data = commitment(event)
                if data != stored:
                    findings.append(Finding("events", f"leaf {index} (event {seq})",
                                            "the event row differs from what its leaf committed to (changed after it was logged)"))
                expected.take(event.kind, event.report_id, event.listing_id, dict(event.detail))
            # Leaves missing before this one would shift it; the tree is rebuilt as the rows stand.
            tree.append(merkle.leaf_hash(data))
            while pending and pending[0] == tree.size:
                _check_root(checkpoints[pending.pop(0)], tree.root(), findings)
            if progress is not None and tree.size % _STREAM == 0:
                progress(tree.size)
        if 0 in checkpoints:
            _check_root(checkpoints[0], merkle.EMPTY_ROOT, findings)
        for size in pending:
            if size:
                findings.append(Finding("checkpoints", f"checkpoint {size}",
                                        f"signed for {size} leaves, but only {tree.size} remain: leaves were deleted"))
        in_flight = 0
        without_leaf = (
            select(EventRow.seq, EventRow.report_id, EventRow.listing_id, LogPendingRow.commitment)
            .outerjoin(LogPendingRow, LogPendingRow.seq == EventRow.seq)
            .where(~select(LogLeafRow.seq).where(LogLeafRow.seq == EventRow.seq).exists()).order_by(EventRow.seq)
        )
        for seq, report_id, listing_id, waiting in conn.execute(without_leaf):
            if waiting is None:
                findings.append(Finding("events", f"event {seq}", "has no leaf in the log: written behind the API, or its leaf was deleted"))
                continue
            in_flight += 1  # committed a moment ago: the sequencer gives it its leaf within a second
            # The report and listing it changed are judged once the sequencer has logged it.
            expected.in_flight.update(ref for ref in (report_id, listing_ref(listing_id)) if ref)
        reports = _check_reports(conn, expected, findings)
        listings = _check_listings(conn, expected, findings)
    return AuditReport(
        leaves=tree.size, pending=in_flight, checkpoints=len(checkpoints), newest_checkpoint=max(checkpoints, default=0), reports=reports,
        listings=listings, findings=tuple(findings), root_hash=tree.root(),
    )


@dataclass(frozen=True)
class _Signed:
    size: int
    root_hash: bytes


def _checkpoints(conn: Connection, log_key: Verifier, findings: list[Finding]) -> dict[int, _Signed]:
    """The stored checkpoints whose signature holds, by size; the others are findings."""
    signed: dict[int, _Signed] = {}
    for row in conn.execute(select(LogCheckpointRow.size, LogCheckpointRow.root_hash, LogCheckpointRow.note).order_by(LogCheckpointRow.size)):
        where = f"checkpoint {row.size}"
        try:
            opened = open_note(row.note, [log_key])
            if not any(v.key_hash == log_key.key_hash and v.name == log_key.name for v in opened.verified):
                raise NoteError(f"not signed by the log key {log_key.name}")
            checkpoint = Checkpoint.parse(opened.text)
        except ValueError as error:
            findings.append(Finding("checkpoints", where, f"its note does not verify with the log key: {error}"))
            continue
        if checkpoint.size != row.size or checkpoint.root_hash != bytes(row.root_hash):
            findings.append(Finding("checkpoints", where, f"the row's size or root differs from its signed note (size {checkpoint.size})"))
        signed[checkpoint.size] = _Signed(checkpoint.size, checkpoint.root_hash)
    return signed


def _check_root(checkpoint: _Signed, rebuilt: bytes, findings: list[Finding]) -> None:
    if checkpoint.root_hash != rebuilt:
        findings.append(Finding("checkpoints", f"checkpoint {checkpoint.size}",
                                f"the tree rebuilt from the events has root {rebuilt.hex()}, the registry signed "
                                f"{checkpoint.root_hash.hex()}: history up to this size was rewritten"))


def _leaves(conn: Connection) -> Iterator[tuple[int, int, bytes, Any]]:
    """(leaf index, seq, stored commitment, the event as the log commits to it or None), in leaf order."""
    columns = [EventRow.seq, EventRow.occurred_at, EventRow.actor, EventRow.kind, EventRow.report_id, EventRow.subject_id,
               EventRow.listing_id, EventRow.detail, EventRow.salt]
    query = (
        select(LogLeafRow.leaf_index, LogLeafRow.seq.label("leaf_seq"), LogLeafRow.commitment, *columns)
        .outerjoin(EventRow, EventRow.seq == LogLeafRow.seq)
        .order_by(LogLeafRow.leaf_index)
    )
    for row in conn.execution_options(yield_per=_STREAM).execute(query):
        event = None if row.seq is None else log_event(row.seq, row._asdict())
        yield row.leaf_index, row.leaf_seq, bytes(row.commitment), event


def _check_reports(conn: Connection, expected: _Expected, findings: list[Finding]) -> int:
    count = 0
    query = select(ReportRow.report_id, ReportRow.status, ReportRow.envelope, ReportRow.envelope_sha256).order_by(ReportRow.report_id)
    for row in conn.execution_options(yield_per=_STREAM).execute(query):
        count += 1
        if row.report_id in expected.in_flight:
            continue
        where = f"report {row.report_id}"
        digest = hashlib.sha256(bytes(row.envelope)).hexdigest()
        if row.report_id not in expected.submitted:
            findings.append(Finding("reports", where, "no report.submitted event in the log: written behind the API"))
            continue
        committed = expected.envelopes.get(row.report_id)
        if committed is not None and committed != digest:
            findings.append(Finding("reports", where, f"its stored envelope hashes to {digest}, its submission event committed to {committed}"))
        if digest != bytes(row.envelope_sha256).hex():
            findings.append(Finding("reports", where, "its envelope_sha256 column is not the SHA-256 of its envelope"))
        status = expected.report_status[row.report_id]
        if row.status != status:
            findings.append(Finding("reports", where, f"status {row.status} in the database, {status} in the log"))
    return count


def _check_listings(conn: Connection, expected: _Expected, findings: list[Finding]) -> int:
    count = 0
    for listing_id, status in conn.execution_options(yield_per=_STREAM).execute(select(ListingRow.id, ListingRow.status).order_by(ListingRow.id)):
        count += 1
        ref = listing_ref(listing_id)
        if ref in expected.in_flight:
            continue
        if ref not in expected.listing_status:
            findings.append(Finding("listings", f"listing {ref}", "no listing event in the log: written behind the API"))
            continue
        logged = expected.listing_status[ref]
        if logged is not None and logged != status:
            findings.append(Finding("listings", f"listing {ref}", f"status {status} in the database, {logged} in the log"))
    return count


def leaf_count(db: Database) -> int:
    """How many leaves the log holds: the auditor's progress total."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(LogLeafRow)).scalar_one())
