"""The transparency log's tree: integrating leaves, signed checkpoints, proofs.

Each event's transaction leaves its commitment pending (log_pending, registry/store/events.py).
The sequencer here numbers the pending events in the order it finds them committed (leaf
indexes 0..n-1, one linear order for every replica, since one sequencer works at a time
under the tree's row lock) and puts them in the RFC 9162 tree: it stores the hash of every complete
subtree `Appender` finishes (log_nodes) and the new size and root ("integrated" in
log_state), and commits; only then is a checkpoint signed for that size, so that no
signed checkpoint ever covers a leaf that a crash could lose. Every proof is the fold
of O(log n) stored nodes, fetched in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from jpr_client.quoting import quoted
from jpr_client.transparency.entry import LogEvent
from jpr_client.transparency.merkle import EMPTY_ROOT, Appender, build_proof, consistency_ranges, inclusion_ranges, leaf_hash, range_nodes
from registry.domain.errors import FailedPrecondition, NotFound
from registry.store.changes import KINDS as CHANGE_KINDS
from registry.store.database import Database
from registry.store.events import log_event
from registry.store.models import EventRow, LogCheckpointRow, LogLeafRow, LogNodeRow, LogPendingRow, LogStateRow, MemberRow, ReportRow

INTEGRATE_BATCH = 5000  # leaves per transaction of the sequencer: bounds how long it holds the tree's lock

Node = tuple[int, int]


@dataclass(frozen=True)
class TreeHead:
    size: int
    root_hash: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str  # the registry's signed note, without cosignatures
    signed_at: datetime


@dataclass(frozen=True)
class StoredEntry:
    leaf_index: int
    commitment: bytes
    event: LogEvent
    reporter: str  # the member whose report a report.* event is about ("" for other events)


class LogStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def integrate(self) -> TreeHead:
        """Put every leaf assigned so far into the tree, a batch per transaction; the tree committed.

        The tree's row is locked (FOR UPDATE on PostgreSQL, the write lock on SQLite), so one
        replica integrates at a time and the others find the work done.
        """
        while True:
            head, added = self._db.write_locked(_integrate_batch)
            if added < INTEGRATE_BATCH:
                return head

    def tree(self) -> TreeHead:
        """The integrated tree: what the next checkpoint will cover."""
        with self._db.read() as conn:
            return _tree(conn)

    def sign_pending(self, sign: Callable[[TreeHead], str], now: datetime) -> StoredCheckpoint | None:
        """Sign and store a checkpoint of the integrated tree, unless one of its size is stored already.

        Only committed (durable) tree heads are signed. Two replicas signing the same size sign the
        same note (Ed25519 is deterministic; the note has no time): the first stored stays.
        """
        with self._db.read() as conn:
            head = _tree(conn)
            newest = conn.execute(select(func.max(LogCheckpointRow.size))).scalar()
        if newest is not None and newest >= head.size:
            return None
        stored = StoredCheckpoint(head.size, head.root_hash, sign(head), now)
        insert_ = sqlite_insert if self._db.is_sqlite else postgresql_insert
        statement = insert_(LogCheckpointRow).values(
            size=stored.size, root_hash=stored.root_hash, note=stored.note, signed_at=stored.signed_at
        ).on_conflict_do_nothing()
        self._db.write_locked(lambda conn: conn.execute(statement))
        return stored

    def checkpoint(self, size: int = 0) -> StoredCheckpoint:
        """The newest checkpoint (size 0), or the one of exactly `size`."""
        query = select(LogCheckpointRow)
        query = query.where(LogCheckpointRow.size == size) if size else query.order_by(LogCheckpointRow.size.desc()).limit(1)
        with self._db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            if size:
                raise NotFound(f"the registry signed no checkpoint of tree size {size}; GetCheckpoint without a size gives the newest")
            raise NotFound("the registry has signed no checkpoint yet; retry in a few seconds")
        return StoredCheckpoint(row.size, row.root_hash, row.note, row.signed_at)

    def checkpoints_from(self, sizes: Sequence[int]) -> list[StoredCheckpoint]:
        """The checkpoints of these sizes, newest first."""
        with self._db.read() as conn:
            rows = conn.execute(select(LogCheckpointRow).where(LogCheckpointRow.size.in_(sizes)).order_by(LogCheckpointRow.size.desc()))
            return [StoredCheckpoint(r.size, r.root_hash, r.note, r.signed_at) for r in rows]

    def entry_by_seq(self, seq: int) -> StoredEntry:
        with self._db.read() as conn:
            row = conn.execute(_ENTRY.where(EventRow.seq == seq)).first()
            pending = row is None and conn.execute(select(LogPendingRow.seq).where(LogPendingRow.seq == seq)).first() is not None
        if pending:
            raise FailedPrecondition(f"event seq {seq} is not in the log yet; the registry adds new events and signs a checkpoint "
                                     "every few seconds: retry shortly")
        if row is None:
            raise NotFound(f"the registry has no event seq {seq}; event seqs come from receipts (event_seq) and change cursors")
        return _entry(row)

    def entry_by_leaf(self, leaf_index: int) -> StoredEntry:
        with self._db.read() as conn:
            row = conn.execute(_ENTRY.where(LogLeafRow.leaf_index == leaf_index)).first()
        if row is None:
            raise NotFound(f"the log has no leaf {leaf_index} yet")
        return _entry(row)

    def entry_by_listing(self, listing_id: int, ref: str) -> StoredEntry:
        """The newest event that changed the listing (a changes-feed kind): what a match's state rests on.
        Opinions and objections name the listing but record none of its state, so they are skipped."""
        with self._db.read() as conn:
            seq = conn.execute(_NEWEST_CHANGE, {"listing_id": listing_id}).scalar()
            row = None if seq is None else conn.execute(_ENTRY.where(EventRow.seq == seq)).first()
            pending = row is None and seq is not None
        if pending:
            raise FailedPrecondition(f"listing {quoted(ref)} changed a moment ago and its event is not in the log yet: retry shortly")
        if row is None:
            raise NotFound(f"no listing {quoted(ref)}")
        return _entry(row)

    def inclusion_proof(self, leaf_index: int, size: int) -> list[bytes]:
        """RFC 9162 2.1.3 for leaf `leaf_index` in the tree of `size` (at most the integrated size)."""
        return self._proof(inclusion_ranges(leaf_index, size))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 2.1.4 from the tree of `first` to the tree of `second` (at most the integrated size)."""
        return self._proof(consistency_ranges(first, second))

    def _proof(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        with self._db.read() as conn:
            nodes = _nodes(conn, [node for begin, end in ranges for node in range_nodes(begin, end)])
        return build_proof(ranges, lambda level, index: nodes[level, index])


def _integrate_batch(conn: Connection) -> tuple[TreeHead, int]:
    """One transaction of the sequencer: the next leaves into the tree; the new head and how many leaves it took."""
    size = conn.execute(select(LogStateRow.size).where(LogStateRow.name == "integrated").with_for_update()).scalar_one()
    _number_pending(conn)
    leaves = conn.execute(
        select(LogLeafRow.leaf_index, LogLeafRow.commitment).where(LogLeafRow.leaf_index >= size)
        .order_by(LogLeafRow.leaf_index).limit(INTEGRATE_BATCH)
    ).all()
    frontier = _nodes(conn, range_nodes(0, size) if size else [])
    appender = Appender(size, [frontier[node] for node in (range_nodes(0, size) if size else [])])
    completed: list[dict[str, object]] = []
    for leaf in leaves:
        if leaf.leaf_index != appender.size:  # cannot happen (indexes are assigned without gaps); never skip one
            break
        completed.extend({"level": level, "idx": index, "hash": hashed} for level, index, hashed in appender.append(leaf_hash(leaf.commitment)))
    head = TreeHead(appender.size, appender.root())
    if appender.size > size:
        conn.execute(insert(LogNodeRow), completed)
        conn.execute(update(LogStateRow).where(LogStateRow.name == "integrated").values(size=head.size, root_hash=head.root_hash))
    return head, appender.size - size


def _number_pending(conn: Connection) -> None:
    """Give the next leaf indexes to events committed since, in seq order: the log's one linear order.

    A transaction that took a seq early and committed late gets a later index than events
    numbered before it committed: leaf order is the order the sequencer saw commits in.
    """
    pending = conn.execute(select(LogPendingRow.seq, LogPendingRow.commitment).order_by(LogPendingRow.seq).limit(INTEGRATE_BATCH)).all()
    if not pending:
        return
    assigned = conn.execute(select(LogStateRow.size).where(LogStateRow.name == "assigned")).scalar_one()
    conn.execute(insert(LogLeafRow), [
        {"leaf_index": assigned + i, "seq": row.seq, "commitment": row.commitment} for i, row in enumerate(pending)
    ])
    conn.execute(delete(LogPendingRow).where(LogPendingRow.seq.in_([row.seq for row in pending])))
    conn.execute(update(LogStateRow).where(LogStateRow.name == "assigned").values(size=assigned + len(pending)))


def _tree(conn: Connection) -> TreeHead:
    row = conn.execute(select(LogStateRow.size, LogStateRow.root_hash).where(LogStateRow.name == "integrated")).one()
    return TreeHead(row.size, row.root_hash or EMPTY_ROOT)


def _nodes(conn: Connection, wanted: Sequence[Node]) -> dict[Node, bytes]:
    """The stored hashes of these nodes, in one query."""
    if not wanted:
        return {}
    rows = conn.execute(select(LogNodeRow.level, LogNodeRow.idx, LogNodeRow.hash).where(tuple_(LogNodeRow.level, LogNodeRow.idx).in_(wanted)))
    return {(row.level, row.idx): row.hash for row in rows}


# The newest event that changed a listing: searched by the listing (events.kind has no index to stray to).
_NEWEST_CHANGE = select(func.max(EventRow.seq)).where(
    EventRow.listing_id == bindparam("listing_id"), EventRow.kind.in_(list(CHANGE_KINDS))
)
_EVENT_COLUMNS = ("kind", "occurred_at", "actor", "report_id", "subject_id", "listing_id", "detail", "salt")
_ENTRY = (
    select(LogLeafRow.leaf_index, LogLeafRow.commitment, EventRow.seq, *(getattr(EventRow, name) for name in _EVENT_COLUMNS),
           MemberRow.name.label("reporter"))
    .join(EventRow, EventRow.seq == LogLeafRow.seq)
    .outerjoin(ReportRow, (ReportRow.report_id == EventRow.report_id) & EventRow.kind.startswith("report."))
    .outerjoin(MemberRow, MemberRow.id == ReportRow.member_id)
)


def _entry(row: Row[Any]) -> StoredEntry:
    event = log_event(row.seq, {name: getattr(row, name) for name in _EVENT_COLUMNS})
    return StoredEntry(row.leaf_index, row.commitment, event, row.reporter or "")
