"""The changes feed: listing events, read from the event log in commit-safe order."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from jpr_client.model import Category, ChangeKind, IdentifierType, Listing, ListingChange, ListingStatus, ReportStatus, Role, Severity, Token
from jpr_client.quoting import quoted
from registry.domain.errors import InvalidArgument
from registry.store.database import Database
from registry.store.listings import listing_view
from registry.store.models import EventRow, ListingRow, ReportRow, ReportTokenRow
from registry.store.refs import decimal_id, listing_ref, subject_ref

KINDS: dict[str, ChangeKind] = {
    "listing.created": ChangeKind.CREATED,
    "listing.extended": ChangeKind.EXTENDED,
    "listing.activated": ChangeKind.ACTIVATED,
    "listing.lifted": ChangeKind.LIFTED,
    "listing.expired": ChangeKind.EXPIRED,
    "listing.corrected": ChangeKind.CORRECTED,
    "listing.shortened": ChangeKind.SHORTENED,
    "listing.quarantined": ChangeKind.QUARANTINED,
    "listing.released": ChangeKind.RELEASED,
}
# A page of the feed: seqs in order from the cursor, read until the page is full (not every change event after it).
_CHANGES = (
    select(EventRow)
    .where(EventRow.seq > bindparam("after"), EventRow.seq <= bindparam("through"), EventRow.kind.in_(list(KINDS)))
    .order_by(EventRow.seq)
    .limit(bindparam("limit", type_=Integer))
)
# Events recorded before they carried the listing's snapshot: whatever the listing's status is
# now, the change says what it was right after the event.
_STATUS_AFTER = {
    ChangeKind.ACTIVATED: ListingStatus.ACTIVE,
    ChangeKind.LIFTED: ListingStatus.LIFTED,
    ChangeKind.EXPIRED: ListingStatus.EXPIRED,
}
# Platform accounts are one platform's own; they would tell another platform nothing but who reported.
_SHARED_TYPES = [t.value for t in IdentifierType if t is not IdentifierType.PLATFORM_ACCOUNT]


def parse_cursor(cursor: str) -> int:
    """The event sequence number a cursor names: "" is 0, else the ASCII digits of a ListingChange.cursor."""
    if cursor == "":
        return 0
    seq = decimal_id(cursor)
    if seq is None:
        raise InvalidArgument(f"cursor {quoted(cursor)} is not one this registry gave; pass \"\" or a ListingChange.cursor")
    return seq


class ChangeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def read(self, after: int, through: int, limit: int) -> tuple[list[ListingChange], int]:
        """Listing changes with `after` < seq <= `through`, oldest first, and the last seq read."""
        with self._db.session() as session:
            rows = session.execute(_CHANGES, {"after": after, "through": through, "limit": limit}).scalars().all()
            changes = [_change(session, row) for row in rows if row.listing_id is not None]
            last = rows[-1].seq if len(rows) == limit else through
        return changes, last


def _change(session: Session, event: EventRow) -> ListingChange:
    """The change as the event recorded it: the listing right after it, with that moment's reports' tokens."""
    row = session.get(ListingRow, event.listing_id)
    assert row is not None, f"event {event.seq} names listing {event.listing_id}, which does not exist"
    detail: dict[str, Any] = event.detail or {}
    kind = KINDS[event.kind]
    if "severity" in detail:
        listing = Listing(
            listing_id=listing_ref(row.id),
            subject_id=subject_ref(event.subject_id if event.subject_id is not None else row.subject_id),
            status=ListingStatus(detail["status"]),
            roles=tuple(Role(r) for r in detail["roles"]),
            categories=tuple(Category(c) for c in detail["categories"]),
            severity=Severity(detail["severity"]),
            listed_from=datetime.fromisoformat(detail["listed_from"]),
            listed_until=datetime.fromisoformat(detail["listed_until"]),
            reporting_platforms=detail["reporting_platforms"],
            report_ids=(),
        )
        supporting = ReportTokenRow.report_id.in_(detail["report_ids"])
    else:
        now = listing_view(session, row, event.occurred_at)
        listing = replace(
            now,
            status=_STATUS_AFTER.get(kind) or ListingStatus(detail.get("status", now.status.value)),
            listed_from=_when(detail.get("listed_from"), row.listed_from),
            listed_until=_when(detail.get("listed_until"), row.listed_until),
            report_ids=(),
        )
        supporting = ReportTokenRow.report_id.in_(
            select(ReportRow.report_id).where(ReportRow.listing_id == row.id, ReportRow.status == ReportStatus.ACCEPTED.value)
        )
    # Tokens a correction detached, or retention unlinked, since are gone from the replay too.
    tokens = session.execute(
        select(ReportTokenRow.id_type, ReportTokenRow.token)
        .where(supporting, ReportTokenRow.id_type.in_(_SHARED_TYPES))
        .distinct()
        .order_by(ReportTokenRow.id_type, ReportTokenRow.token)
    ).all()
    return ListingChange(
        cursor=str(event.seq),
        kind=kind,
        occurred_at=event.occurred_at,
        listing=listing,
        tokens=tuple(Token(type=IdentifierType(t), value=bytes(v)) for t, v in tokens),
    )


def _when(recorded: str | None, current: datetime) -> datetime:
    return datetime.fromisoformat(recorded) if recorded else current
