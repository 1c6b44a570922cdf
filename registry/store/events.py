"""The append-only event log. Every state change adds its row in its own transaction, and each
row becomes a leaf of the transparency log as that transaction commits (registry/store/log.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.orm import Session

from jpr_client.transparency.entry import SALT_SIZE, LogEvent, commitment

from registry.domain.model import EventFilter, HistoryEntry, Page
from registry.store.database import Database
from registry.store.models import EventRow, LogPendingRow
from registry.store.prepared import Prepared
from registry.store.pages import decode_id_page_token, id_page
from registry.store.refs import listing_ref, subject_ref


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    kind: str,
    report_id: str | None = None,
    subject_id: int | None = None,
    listing_id: int | None = None,
    **detail: Any,
) -> int | None:
    """Add the event to the session's transaction; its seq (None inside `held_until_the_end`).

    The event gets a random salt and, when its transaction commits, a leaf of the
    transparency log (`_assign_leaves`).
    """
    # The detail as the JSON column will give it back: what the leaf commits to is what an auditor reads.
    row = {"occurred_at": at, "actor": actor, "kind": kind, "report_id": report_id, "subject_id": subject_id,
           "listing_id": listing_id, "detail": json.loads(json.dumps(detail)), "salt": os.urandom(SALT_SIZE)}
    held: list[dict[str, Any]] | None = session.info.get(_HELD)
    if held is not None:
        held.append(row)
        return None
    # A prebuilt statement at once: no ORM object to build and flush, and seq follows the order recorded
    seq: int = _INSERT.scalar(session.connection(), row)
    _awaiting_leaves(session).append((seq, row, session.in_nested_transaction()))
    return seq


_HELD = "jpr.events.held"
_AWAITING = "jpr.events.awaiting_leaves"
_INSERT = Prepared(insert(EventRow).returning(EventRow.seq))
_INSERT_MANY = insert(EventRow).returning(EventRow.seq, sort_by_parameter_order=True)
_STILL_THERE = select(EventRow.seq).where(EventRow.seq.in_(bindparam("seqs", expanding=True)))
_INSERT_PENDING = Prepared(insert(LogPendingRow))


@contextmanager
def held_until_the_end(session: Session) -> Iterator[None]:
    """Events recorded inside are inserted together when the block ends, in the order recorded.

    For a batch of thousands of changes in one transaction (ImportReports): one statement
    instead of an ORM insert each. Nothing inside may read the events it records, and a block
    whose work can be undone in part (a savepoint rolled back) must not use it.
    """
    held: list[dict[str, Any]] = []
    session.info[_HELD] = held
    try:
        yield
    finally:
        del session.info[_HELD]
    if held:
        seqs = session.connection().execute(_INSERT_MANY, held).scalars().all()
        _awaiting_leaves(session).extend((seq, row, False) for seq, row in zip(seqs, held, strict=True))


# (seq, row, recorded in a savepoint): only a savepoint's events can be undone while the transaction commits.
_Awaiting = list[tuple[int, dict[str, Any], bool]]


def _awaiting_leaves(session: Session) -> _Awaiting:
    awaiting: _Awaiting | None = session.info.get(_AWAITING)
    if awaiting is None:
        awaiting = session.info[_AWAITING] = []
    return awaiting


@event.listens_for(Session, "before_commit")  # every session's: one without events returns at once
def _assign_leaves(session: Session) -> None:
    """As the transaction commits: each of its events' commitments, pending a leaf index.

    Only inserts, of rows no other transaction writes: concurrent writers, on several
    PostgreSQL replicas too, never wait for or conflict with one another here. The
    sequencer (registry/store/log.py) numbers pending events in the order it finds them
    committed, so the leaves are always 0..n-1. Events of a savepoint rolled back are gone
    by now and get no leaf.
    """
    if session.in_nested_transaction():
        return  # a savepoint's commit; the transaction's own comes later
    awaiting = session.info.pop(_AWAITING, None)
    if not awaiting:
        return
    conn = session.connection()
    # SQLite gives a rolled-back savepoint's seq to the next event: the one recorded last under a seq is its row.
    latest = {seq: (row, nested) for seq, row, nested in awaiting}
    undoable = [seq for seq, (_, nested) in latest.items() if nested]
    gone = set(undoable) - set(conn.execute(_STILL_THERE, {"seqs": undoable}).scalars()) if undoable else set()
    kept = sorted(((seq, row) for seq, (row, _) in latest.items() if seq not in gone), key=lambda item: item[0])
    if not kept:
        return
    _INSERT_PENDING.execute(conn, [{"seq": seq, "commitment": commitment(log_event(seq, row))} for seq, row in kept])


def log_event(seq: int, row: Mapping[str, Any]) -> LogEvent:
    """The event as the log commits to it, from its row (an EventRow's columns by name)."""
    subject_id = row["subject_id"]
    return LogEvent(
        seq=seq, kind=row["kind"], occurred_at=row["occurred_at"], actor=row["actor"], report_id=row["report_id"] or "",
        subject_id="" if subject_id is None else subject_ref(subject_id), listing_id=listing_ref(row["listing_id"]),
        detail=row["detail"] or {}, salt=row["salt"],
    )


class EventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def list(self, which: EventFilter, page_size: int, page_token: str) -> Page[HistoryEntry]:
        """Events in the order they were written (by seq), oldest first."""
        after_seq = decode_id_page_token(page_token, "ListEvents", "E")
        query = select(EventRow).order_by(EventRow.seq)
        if which.actor:
            query = query.where(EventRow.actor == which.actor)
        if which.kind_prefix:
            query = query.where(EventRow.kind.startswith(which.kind_prefix, autoescape=True))
        if which.since is not None:
            query = query.where(EventRow.occurred_at >= which.since)
        if which.until is not None:
            query = query.where(EventRow.occurred_at < which.until)
        if after_seq is not None:
            query = query.where(EventRow.seq > after_seq)
        with self._db.session() as session:
            return id_page(session, query, page_size, event_view, lambda e: (e.occurred_at, f"E{e.seq}"))


def event_view(row: EventRow) -> HistoryEntry:
    return HistoryEntry(
        seq=row.seq,
        kind=row.kind,
        actor=row.actor,
        occurred_at=row.occurred_at,
        report_id=row.report_id or "",
        listing_id=listing_ref(row.listing_id),
        detail=dict(row.detail or {}),
        subject_id=subject_ref(row.subject_id) if row.subject_id is not None else "",
    )
