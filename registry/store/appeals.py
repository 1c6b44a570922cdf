"""Appeals: one per listing at a time, filed and decided by the association."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jpr_client.model import ListingStatus
from registry.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from registry.domain.model import Appeal, AppealStatus, Page
from registry.store import events
from registry.store.database import Database
from registry.store.listings import effective_status, record_change
from registry.store.models import AppealRow, ListingRow
from registry.store.pages import decode_id_page_token, id_page
from registry.store.refs import appeal_ref, listing_ref, parse_ref


class AppealStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def file(self, listing_id: str, *, reason: str, actor: str, now: datetime) -> Appeal:
        def work(session: Session) -> Appeal:
            listing = _listing(session, listing_id)
            status = effective_status(listing.status, listing.listed_from, listing.listed_until, now)
            if status is not ListingStatus.ACTIVE:
                raise FailedPrecondition(f"listing {listing_id} is {status.value}; only an ACTIVE listing can be appealed")
            if _pending(session, listing.id) is not None:
                raise AlreadyExists(f"listing {listing_id} already has a pending appeal; decide it first")
            appeal = AppealRow(listing_id=listing.id, status=AppealStatus.PENDING.value, reason=reason, filed_at=now, filed_by=actor)
            session.add(appeal)
            session.flush()
            events.record(session, at=now, actor=actor, kind="appeal.filed", subject_id=listing.subject_id,
                          listing_id=listing.id, appeal=appeal_ref(appeal.id), reason=reason)
            return appeal_view(appeal)

        return self._db.write(work)

    def decide(self, appeal_id: str, decision: AppealStatus, *, reason: str, actor: str, now: datetime) -> Appeal:
        """UPHELD lifts the listing in the same transaction; DENIED leaves it as it is."""

        def work(session: Session) -> Appeal:
            appeal = session.get(AppealRow, parse_ref("A", appeal_id))
            if appeal is None:
                raise NotFound(f"no appeal {appeal_id}")
            if appeal.status != AppealStatus.PENDING.value:
                raise FailedPrecondition(f"appeal {appeal_id} was already decided: {appeal.status}")
            appeal.status, appeal.decided_at, appeal.decided_by, appeal.decision_reason = decision.value, now, actor, reason
            listing = session.get(ListingRow, appeal.listing_id)
            assert listing is not None
            events.record(session, at=now, actor=actor, kind=f"appeal.{decision.value.lower()}", subject_id=listing.subject_id,
                          listing_id=listing.id, appeal=appeal_id, reason=reason)
            if decision is AppealStatus.UPHELD and listing.status == ListingStatus.ACTIVE.value:
                listing.status, listing.updated_at = ListingStatus.LIFTED.value, now
                record_change(session, listing, "listing.lifted", at=now, actor=actor, reason=reason, grounds="APPEAL_UPHELD")
            return appeal_view(appeal)

        return self._db.write(work)

    def list(self, status: AppealStatus | None, page_size: int, page_token: str) -> Page[Appeal]:
        """Appeals in the order they were filed (ids grow with filing), oldest first."""
        after_id = decode_id_page_token(page_token, "ListAppeals", "A")
        query = select(AppealRow).order_by(AppealRow.id)
        if status is not None:
            query = query.where(AppealRow.status == status.value)
        if after_id is not None:
            query = query.where(AppealRow.id > after_id)
        with self._db.session() as session:
            return id_page(session, query, page_size, appeal_view, lambda a: (a.filed_at, a.appeal_id))


def _listing(session: Session, listing_id: str) -> ListingRow:
    listing = session.get(ListingRow, parse_ref("L", listing_id))
    if listing is None:
        raise NotFound(f"no listing {listing_id}")
    return listing


def _pending(session: Session, listing_id: int) -> AppealRow | None:
    return session.scalar(
        select(AppealRow).where(AppealRow.listing_id == listing_id, AppealRow.status == AppealStatus.PENDING.value)
    )


def appeal_view(row: AppealRow) -> Appeal:
    return Appeal(
        appeal_id=appeal_ref(row.id),
        listing_id=listing_ref(row.listing_id),
        status=AppealStatus(row.status),
        reason=row.reason,
        filed_at=row.filed_at,
        filed_by=row.filed_by,
        decided_at=row.decided_at,
        decided_by=row.decided_by or "",
        decision_reason=row.decision_reason or "",
    )
