"""Member feedback on listings, and the record of which member's lookups matched which subject."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from jpr_client.model import ListingStatus, Opinion, OpinionReceipt
from registry.domain.errors import FailedPrecondition, NotFound
from registry.domain.model import AppealStatus, OpinionNote, Quarantine, ReviewItem
from registry.store import events
from registry.store.database import Database
from registry.store.listings import effective_status, listing_view
from registry.store.models import AppealRow, ListingRow, MemberRow, OpinionRow, SubjectMatchRow, SubjectRow
from registry.store.refs import appeal_ref, parse_ref

_OPEN = (ListingStatus.ACTIVE.value, ListingStatus.PENDING_NOTICE.value)


class OpinionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record_matches(self, matches: Iterable[tuple[str, int, datetime, datetime, int]]) -> None:
        """Add lookups that matched: (member, subject, first, last, how many), merged into what is stored."""
        rows = list(matches)
        if not rows:
            return

        def work(session: Session) -> None:
            ids = {name: id_ for name, id_ in session.execute(select(MemberRow.name, MemberRow.id).where(MemberRow.name.in_({r[0] for r in rows})))}
            insert = sqlite_insert if self._db.is_sqlite else postgresql_insert
            statement = insert(SubjectMatchRow)
            table = SubjectMatchRow.__table__
            upsert = statement.on_conflict_do_update(
                index_elements=["subject_id", "member_id"],
                set_={
                    "last_at": case((statement.excluded.last_at > table.c.last_at, statement.excluded.last_at), else_=table.c.last_at),
                    "lookups": table.c.lookups + statement.excluded.lookups,
                },
            )
            session.execute(upsert, [
                {"subject_id": subject, "member_id": ids[member], "first_at": first, "last_at": last, "lookups": count}
                for member, subject, first, last, count in rows
            ])

        self._db.write(work)

    def record(self, member: str, listing_id: str, opinion: Opinion, reason: str, *, now: datetime) -> OpinionReceipt:
        def work(session: Session) -> OpinionReceipt:
            listing = session.get(ListingRow, parse_ref("L", listing_id))
            member_id = session.scalar(select(MemberRow.id).where(MemberRow.name == member))
            assert member_id is not None, "the interceptor admits registered members only"
            # A listing this member never matched looks like one that does not exist: no probing.
            if listing is None or not _matched(session, member_id, listing.subject_id):
                raise NotFound(
                    f"no listing {listing_id} among those your entry audits matched; an opinion follows your own lookup "
                    "(a lookup on another replica can take a second to be recorded)"
                )
            status = effective_status(listing.status, listing.listed_from, listing.listed_until, now)
            if status.value not in _OPEN:
                raise FailedPrecondition(f"listing {listing_id} is {status.value}; opinions are for listings in force")
            row = session.get(OpinionRow, (listing.id, member_id))
            if row is None:
                session.add(OpinionRow(listing_id=listing.id, member_id=member_id, opinion=opinion.value, reason=reason, recorded_at=now))
            else:
                row.opinion, row.reason, row.recorded_at = opinion.value, reason, now
            session.flush()
            events.record(session, at=now, actor=f"member:{member}", kind="listing.opinion", subject_id=listing.subject_id,
                          listing_id=listing.id, opinion=opinion.value, reason=reason)
            confirmations, disputes = _counts(session, listing.id)
            return OpinionReceipt(listing_id, opinion, now, confirmations, disputes)

        return self._db.write(work)

    def review_queue(self, limit: int, *, now: datetime) -> list[ReviewItem]:
        """Listings in force that are quarantined, disputed or under appeal: quarantined first, then
        those disputed by two or more members."""
        with self._db.session() as session:
            disputes = func.count(OpinionRow.member_id).filter(OpinionRow.opinion == Opinion.DISPUTED.value)
            # One pending appeal per listing at most (AppealStore.file): its id, or NULL.
            appeal = (
                select(func.max(AppealRow.id))
                .where(AppealRow.listing_id == ListingRow.id, AppealRow.status == AppealStatus.PENDING.value)
                .scalar_subquery()
            )
            rows = session.execute(
                select(ListingRow, disputes.label("disputes"), appeal.label("appeal"))
                .outerjoin(OpinionRow, OpinionRow.listing_id == ListingRow.id)
                .where(ListingRow.status.in_(_OPEN))
                .group_by(ListingRow.id)
                .having(or_(disputes > 0, appeal.is_not(None), ListingRow.quarantined_at.is_not(None)))
                .order_by(ListingRow.quarantined_at.is_not(None).desc(), (disputes >= 2).desc(), disputes.desc(), ListingRow.id)
                .limit(limit)
            ).all()
            return [self._item(session, listing, appeal_id, now) for listing, _, appeal_id in rows]

    @staticmethod
    def _item(session: Session, listing: ListingRow, appeal_id: int | None, now: datetime) -> ReviewItem:
        notes = session.execute(
            select(MemberRow.name, OpinionRow.opinion, OpinionRow.reason, OpinionRow.recorded_at)
            .join(MemberRow, MemberRow.id == OpinionRow.member_id)
            .where(OpinionRow.listing_id == listing.id)
            .order_by(OpinionRow.recorded_at)
        ).all()
        confirmations, disputes = _counts(session, listing.id)
        return ReviewItem(
            listing=listing_view(session, listing, now),
            confirmations=confirmations,
            disputes=disputes,
            appeal_id=appeal_ref(appeal_id),
            opinions=tuple(OpinionNote(name, Opinion(opinion), reason, at) for name, opinion, reason, at in notes),
            quarantine=_quarantine(listing),
        )


def _quarantine(listing: ListingRow) -> Quarantine | None:
    if listing.quarantined_at is None or not listing.quarantine:
        return None
    figures = listing.quarantine
    return Quarantine(
        quarantined_at=listing.quarantined_at, matches=figures["matches"], platforms=figures["platforms"],
        window_minutes=figures["window_minutes"], own_hourly=figures["own_hourly"], median_hourly=figures["median_hourly"],
        explanation=figures["explanation"],
    )


def _matched(session: Session, member_id: int, subject_id: int) -> bool:
    """Did this member's lookups match the subject, or a subject since merged into it?"""
    return session.scalar(_MATCHED, {"member_id": member_id, "subject_id": subject_id}) is not None


_MATCHED = (
    select(SubjectMatchRow.subject_id)
    .where(SubjectMatchRow.member_id == bindparam("member_id"), or_(
        SubjectMatchRow.subject_id == bindparam("subject_id"),
        SubjectMatchRow.subject_id.in_(select(SubjectRow.id).where(SubjectRow.merged_into == bindparam("subject_id"))),
    ))
    .limit(1)
)


def _counts(session: Session, listing_id: int) -> tuple[int, int]:
    counts = dict(
        session.execute(
            select(OpinionRow.opinion, func.count()).where(OpinionRow.listing_id == listing_id).group_by(OpinionRow.opinion)
        ).all()
    )
    return counts.get(Opinion.CONFIRMED.value, 0), counts.get(Opinion.DISPUTED.value, 0)
