"""Everything the registry holds about one subject, for the association answering an access request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, select

from jpr_client.model import IdentifierType, Opinion
from registry.domain.errors import NotFound
from registry.domain.model import OpinionNote, SubjectIdentifier, SubjectMatch, SubjectRecord
from registry.store.appeals import appeal_view
from registry.store.corrections import MIN_PREFIX
from registry.store.database import Database
from registry.store.events import event_view
from registry.store.listings import listing_view
from registry.store.models import (
    AppealRow,
    EventRow,
    ListingRow,
    MemberRow,
    OpinionRow,
    ReportRow,
    SubjectMatchRow,
    SubjectRow,
    SubjectTokenRow,
)
from registry.store.refs import listing_ref, parse_ref, subject_ref
from registry.store.reports import report_view


# The subjects merged into one (searched through ix_subjects_merged_into, not a scan of every subject).
_MERGED_INTO = select(SubjectRow.id).where(SubjectRow.merged_into == bindparam("subject_id")).order_by(SubjectRow.id)


class SubjectStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def show(self, ref: str, *, now: datetime) -> SubjectRecord:
        subject_id = parse_ref("S", ref)
        with self._db.session() as session:
            subject = session.get(SubjectRow, subject_id)
            if subject is None:
                raise NotFound(f"no subject {ref}")
            merged = session.scalars(_MERGED_INTO, {"subject_id": subject_id}).all()
            ids = [subject_id, *merged]
            tokens = session.scalars(
                select(SubjectTokenRow).where(SubjectTokenRow.subject_id == subject_id).order_by(SubjectTokenRow.attached_at, SubjectTokenRow.id)
            ).all()
            reports = session.scalars(select(ReportRow).where(ReportRow.subject_id == subject_id).order_by(ReportRow.received_at)).all()
            listings = session.scalars(select(ListingRow).where(ListingRow.subject_id == subject_id).order_by(ListingRow.id)).all()
            listing_ids = [l.id for l in listings]
            appeals = session.scalars(select(AppealRow).where(AppealRow.listing_id.in_(listing_ids)).order_by(AppealRow.id)).all()
            opinions = session.execute(
                select(MemberRow.name, OpinionRow.opinion, OpinionRow.reason, OpinionRow.recorded_at, OpinionRow.listing_id)
                .join(MemberRow, MemberRow.id == OpinionRow.member_id)
                .where(OpinionRow.listing_id.in_(listing_ids))
                .order_by(OpinionRow.recorded_at)
            ).all()
            matches = session.execute(
                select(MemberRow.name, SubjectMatchRow.first_at, SubjectMatchRow.last_at, SubjectMatchRow.lookups)
                .join(MemberRow, MemberRow.id == SubjectMatchRow.member_id)
                .where(SubjectMatchRow.subject_id.in_(ids))
                .order_by(MemberRow.name)
            ).all()
            report_ids = {r.report_id for r in reports}
            history = session.scalars(
                select(EventRow)
                .where(or_(EventRow.subject_id.in_(ids), EventRow.listing_id.in_(listing_ids), EventRow.report_id.in_(sorted(report_ids))))
                .order_by(EventRow.seq)
            ).all()
            return SubjectRecord(
                subject_id=subject_ref(subject_id),
                created_at=subject.created_at,
                merged_into=subject_ref(subject.merged_into) if subject.merged_into is not None else "",
                merged_subjects=tuple(subject_ref(m) for m in merged),
                identifiers=tuple(SubjectIdentifier(IdentifierType(t.id_type), t.token.hex()[:MIN_PREFIX], t.attached_at) for t in tokens),
                reports=tuple(report_view(session, r) for r in reports),
                listings=tuple(listing_view(session, l, now) for l in listings),
                appeals=tuple(appeal_view(a) for a in appeals),
                opinions=tuple(OpinionNote(n, Opinion(o), why, at, listing_ref(l)) for n, o, why, at, l in opinions),
                matches=tuple(SubjectMatch(name, first, last, count) for name, first, last, count in matches),
                history=tuple(
                    event_view(e) for e in history
                    # After a split, the events of reports and listings that moved away belong to the other subject.
                    if (e.report_id is None or e.report_id in report_ids) and (e.listing_id is None or e.listing_id in listing_ids)
                ),
            )
