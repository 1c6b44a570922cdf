"""The append-only event log. Every state change adds its row in its own transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from registry.domain.model import EventFilter, HistoryEntry, Page
from registry.store.database import Database
from registry.store.models import EventRow
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
) -> None:
    row = {"occurred_at": at, "actor": actor, "kind": kind, "report_id": report_id, "subject_id": subject_id,
           "listing_id": listing_id, "detail": detail}
    held: list[dict[str, Any]] | None = session.info.get(_HELD)
    if held is not None:
        held.append(row)
    else:  # a prebuilt statement at once: no ORM object to build and flush, and seq follows the order recorded
        session.connection().execute(_INSERT, row)


_HELD = "jpr.events.held"
_INSERT = insert(EventRow)


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
        session.execute(insert(EventRow), held)


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
