"""Undoing what should not have been: a wrongly attached identifier, a wrong merge, and data past retention.

Each correction runs in one transaction with its events: `subject.identifier_detached`,
`subject.split` or `subject.unlinked` (what was undone, by whom, why), and
`listing.corrected` for every listing in force it touched, so members following
the changes feed re-screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from jpr_client.model import IdentifierType, ListingStatus, ReportStatus
from jpr_client.quoting import quoted
from registry.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from registry.domain.model import Correction
from registry.store import events
from registry.store.database import Database
from registry.store.listings import IN_FORCE, effective_status, record_change
from registry.store.models import ListingRow, ReportRow, ReportTokenRow, RetractionRow, SubjectRow, SubjectTokenRow
from registry.store.refs import listing_ref, parse_ref, subject_ref

MIN_PREFIX = 16
_OPEN_REPORT = (ReportStatus.SUBMITTED.value, ReportStatus.ACCEPTED.value)


class CorrectionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def detach(self, subject: str, token_prefix: str, *, reason: str, actor: str, now: datetime) -> Correction:
        prefix = _hex_prefix(token_prefix)

        def work(session: Session) -> Correction:
            subject_id = _live_subject(session, subject)
            attached = [
                row for row in session.scalars(select(SubjectTokenRow).where(SubjectTokenRow.subject_id == subject_id))
                if row.token.hex().startswith(prefix)
            ]
            if not attached:
                raise NotFound(f"subject {subject} has no identifier whose token starts with {prefix}")
            if len(attached) > 1:
                raise InvalidArgument(f"{len(attached)} identifiers of {subject} start with {prefix}; give more digits")
            token = attached[0]
            reports = _report_ids(session, subject_id, token.token)
            session.delete(token)
            session.execute(delete(ReportTokenRow).where(ReportTokenRow.token == token.token, ReportTokenRow.report_id.in_(reports)))
            events.record(session, at=now, actor=actor, kind="subject.identifier_detached", subject_id=subject_id,
                          reason=reason, id_type=token.id_type, token=token.token.hex(), reports=reports)
            listings = _corrected(session, subject_id, reason, actor, now)
            return Correction(subject, "", tuple(reports), listings, reason, now)

        return self._db.write(work)

    def split(self, subject: str, report_ids: Iterable[str], *, reason: str, actor: str, now: datetime) -> Correction:
        moving = sorted(set(report_ids))
        if not moving:
            raise InvalidArgument("report_ids is empty; name the reports that are about someone else")

        def work(session: Session) -> Correction:
            subject_id = _live_subject(session, subject)
            reports = {r.report_id: r for r in session.scalars(select(ReportRow).where(ReportRow.subject_id == subject_id))}
            strangers = [r for r in moving if r not in reports]
            if strangers:
                raise InvalidArgument(f"report {quoted(strangers[0])} is not about {subject}; only its own reports can move")
            if len(moving) == len(reports):
                raise InvalidArgument(f"every report of {subject} is named; a split leaves at least one behind")
            staying = set(reports) - set(moving)
            # Only reports under review or accepted tie identifiers to a person (as in lookups), so only
            # they can hold an identifier on the old subject; the moved reports take all of theirs along.
            carried = _tokens_by_report(session, list(reports))
            is_open = {r.report_id: r.status in _OPEN_REPORT for r in reports.values()}
            moved_tokens = {t for r in moving for t in carried.get(r, set())}
            moved_open = {t for r in moving if is_open[r] for t in carried.get(r, set())}
            kept_tokens = {t for r in staying if is_open[r] for t in carried.get(r, set())}
            both = sorted(t.hex()[:MIN_PREFIX] for t in moved_open & kept_tokens if _is_strong(session, subject_id, t))
            if both:
                raise FailedPrecondition(
                    f"strong identifier {both[0]} is in reports on both sides of the split, so they would merge again; "
                    "detach it (DetachIdentifier) or move every report that carries it"
                )
            listings = session.scalars(select(ListingRow).where(ListingRow.subject_id == subject_id)).all()
            moved_listings: list[ListingRow] = []
            for listing in listings:
                sides = {r.report_id in staying for r in reports.values() if r.listing_id == listing.id}
                if sides == {True, False}:
                    raise FailedPrecondition(
                        f"listing {listing_ref(listing.id)} rests on reports on both sides of the split; "
                        "lift it (grounds: correction) and re-accept the reports that stay"
                    )
                if sides == {False}:
                    moved_listings.append(listing)
            new = SubjectRow(created_at=now)
            session.add(new)
            session.flush()
            session.execute(update(ReportRow).where(ReportRow.report_id.in_(moving)).values(subject_id=new.id))
            for listing in moved_listings:
                listing.subject_id = new.id
            only_moved = sorted(moved_tokens - kept_tokens)
            if only_moved:
                session.execute(
                    update(SubjectTokenRow)
                    .where(SubjectTokenRow.subject_id == subject_id, SubjectTokenRow.token.in_(only_moved))
                    .values(subject_id=new.id)
                )
            weak_shared = sorted(t for t in moved_tokens & kept_tokens if not _is_strong(session, subject_id, t))
            for token in weak_shared:  # weak identifiers may attach to both people
                row = session.scalar(select(SubjectTokenRow).where(SubjectTokenRow.subject_id == subject_id, SubjectTokenRow.token == token))
                if row is not None:
                    session.add(SubjectTokenRow(token=token, id_type=row.id_type, strong=False, subject_id=new.id, attached_at=now))
            session.flush()
            events.record(session, at=now, actor=actor, kind="subject.split", subject_id=subject_id, reason=reason,
                          new_subject=subject_ref(new.id), reports=moving, listings=[listing_ref(l.id) for l in moved_listings],
                          tokens_moved=len(only_moved))
            corrected = _corrected(session, subject_id, reason, actor, now) + _corrected(session, new.id, reason, actor, now)
            return Correction(subject, subject_ref(new.id), tuple(moving), corrected, reason, now)

        return self._db.write(work)

    def unlink_expired(self, retention_days: int, *, now: datetime) -> int:
        """Unlink the tokens of subjects whose every listing and report ended `retention_days` ago or more.

        Found in a read transaction (writers are not held up by the scan), then
        checked again and unlinked in one write transaction, 500 at a time.
        """
        cutoff = now - timedelta(days=retention_days)
        with self._db.read() as conn:
            candidates = conn.execute(_past_retention(cutoff).limit(500)).scalars().all()
        if not candidates:
            return 0

        def work(session: Session) -> int:
            subjects = session.scalars(_past_retention(cutoff).where(SubjectRow.id.in_(candidates))).all()
            for subject_id in subjects:
                reports = list(session.scalars(select(ReportRow.report_id).where(ReportRow.subject_id == subject_id)))
                tokens = session.execute(delete(SubjectTokenRow).where(SubjectTokenRow.subject_id == subject_id))
                if reports:
                    session.execute(delete(ReportTokenRow).where(ReportTokenRow.report_id.in_(reports)))
                events.record(session, at=now, actor="registry", kind="subject.unlinked", subject_id=subject_id,
                              reason=f"retention of {retention_days} days after the last listing or decision ended",
                              tokens=tokens.rowcount, reports=reports)  # type: ignore[attr-defined]
            return len(subjects)

        return self._db.write(work)


def _past_retention(cutoff: datetime) -> Select[int]:
    """Subjects still holding tokens whose listings and reports all ended before `cutoff`."""
    recent_listing = exists().where(
        ListingRow.subject_id == SubjectRow.id,
        or_(
            and_(ListingRow.status == ListingStatus.LIFTED.value, ListingRow.updated_at > cutoff),
            and_(ListingRow.status != ListingStatus.LIFTED.value, ListingRow.listed_until > cutoff),
        ),
    )
    recent_report = exists().where(
        ReportRow.subject_id == SubjectRow.id,
        or_(ReportRow.status == ReportStatus.SUBMITTED.value, ReportRow.decided_at > cutoff),
    )
    recent_retraction = exists().where(
        ReportRow.subject_id == SubjectRow.id,
        RetractionRow.report_id == ReportRow.report_id,
        RetractionRow.received_at > cutoff,
    )
    linked = exists().where(SubjectTokenRow.subject_id == SubjectRow.id)
    reported = exists().where(ReportRow.subject_id == SubjectRow.id)
    return (
        select(SubjectRow.id)
        .where(SubjectRow.merged_into.is_(None), linked, reported, ~recent_listing, ~recent_report, ~recent_retraction)
        .order_by(SubjectRow.id)
    )


def _hex_prefix(value: str) -> str:
    prefix = value.strip().lower()
    if len(prefix) < MIN_PREFIX or len(prefix) > 128 or any(c not in "0123456789abcdef" for c in prefix):
        raise InvalidArgument(f"token_prefix must be {MIN_PREFIX} to 128 hex digits, as `jpr admin subject show` prints them")
    return prefix


def _live_subject(session: Session, ref: str) -> int:
    subject_id = parse_ref("S", ref)
    row = session.get(SubjectRow, subject_id)
    if row is None:
        raise NotFound(f"no subject {ref}")
    if row.merged_into is not None:
        raise FailedPrecondition(f"subject {ref} was merged into {subject_ref(row.merged_into)}; correct that one")
    return subject_id


def _report_ids(session: Session, subject_id: int, token: bytes) -> list[str]:
    return sorted(
        session.scalars(
            select(ReportTokenRow.report_id)
            .join(ReportRow, ReportRow.report_id == ReportTokenRow.report_id)
            .where(ReportRow.subject_id == subject_id, ReportTokenRow.token == token)
        )
    )


def _tokens_by_report(session: Session, report_ids: list[str]) -> dict[str, set[bytes]]:
    carried: dict[str, set[bytes]] = {}
    for report_id, token in session.execute(
        select(ReportTokenRow.report_id, ReportTokenRow.token).where(ReportTokenRow.report_id.in_(report_ids))
    ):
        carried.setdefault(report_id, set()).add(bytes(token))
    return carried


def _is_strong(session: Session, subject_id: int, token: bytes) -> bool:
    id_type = session.scalar(
        select(SubjectTokenRow.id_type).where(SubjectTokenRow.subject_id == subject_id, SubjectTokenRow.token == token)
    )
    return id_type is not None and IdentifierType(id_type).strong


def _corrected(session: Session, subject_id: int, reason: str, actor: str, now: datetime) -> tuple[str, ...]:
    """A `listing.corrected` event for each of the subject's listings in force."""
    refs = []
    for listing in session.scalars(select(ListingRow).where(ListingRow.subject_id == subject_id).order_by(ListingRow.id)):
        status = effective_status(listing.status, listing.listed_from, listing.listed_until, now)
        if status in IN_FORCE:
            record_change(session, listing, "listing.corrected", at=now, actor=actor, reason=reason)
            refs.append(listing_ref(listing.id))
    return tuple(refs)
