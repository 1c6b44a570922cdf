"""The entry-audit hot path: prebuilt Core statements, no ORM session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, select

from registry.domain.model import AppealStatus, Category, IdentifierType, ListingStatus, ReportStatus, Role, Severity
from registry.domain.verdict import Allegation, Hit, SubjectState
from registry.store.database import Database, Prepared
from registry.store.models import AppealRow, ListingRow, ReportRow, ReportTokenRow
from registry.store.refs import subject_ref

T = TypeVar("T")

_CHUNK = 500  # bound parameters per statement, well under every backend's limit

_FIND_TOKENS = (
    select(ReportTokenRow.token, ReportTokenRow.id_type, ReportRow.subject_id, ReportRow.status, ReportRow.listing_id)
    .join(ReportRow, ReportRow.report_id == ReportTokenRow.report_id)
    .where(ReportTokenRow.token.in_(bindparam("tokens", expanding=True)))
)
_ACTIVE_LISTINGS = select(
    ListingRow.id, ListingRow.subject_id, ListingRow.listed_from, ListingRow.listed_until
).where(
    ListingRow.subject_id.in_(bindparam("subjects", expanding=True)),
    ListingRow.status.in_([ListingStatus.ACTIVE.value, ListingStatus.PENDING_NOTICE.value]),
    ListingRow.listed_until > bindparam("now"),
)
_PENDING_APPEALS = select(AppealRow.listing_id).where(
    AppealRow.listing_id.in_(bindparam("listings", expanding=True)), AppealRow.status == AppealStatus.PENDING.value
)
_OPEN_REPORTS = select(
    ReportRow.subject_id, ReportRow.listing_id, ReportRow.status, ReportRow.member_id,
    ReportRow.role, ReportRow.category, ReportRow.severity,
).where(
    ReportRow.subject_id.in_(bindparam("subjects", expanding=True)),
    ReportRow.status.in_([ReportStatus.ACCEPTED.value, ReportStatus.SUBMITTED.value]),
)


_OPEN = (ReportStatus.ACCEPTED.value, ReportStatus.SUBMITTED.value)


class LookupStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._find_sql: dict[int, Prepared] = {}

    def find(self, tokens: Sequence[bytes], now: datetime) -> tuple[dict[bytes, set[Hit]], dict[int, SubjectState]]:
        """Which subjects each token was reported against (and how), and the state of each subject hit.

        Nearly every applicant is unknown: that answer costs one indexed
        statement on a held connection. Only a hit opens a read transaction.
        """
        unique = sorted(set(tokens))
        if not any(self._db.hot.run(self._prepared(len(chunk)), chunk) for chunk in _chunks(unique)):
            return {}, {}
        # A hit: read its reports and its subjects' state again, all in one snapshot.
        hits: dict[bytes, set[Hit]] = {}
        with self._db.read() as conn:
            for token_chunk in _chunks(unique):
                for token, id_type, subject, status, listing in conn.execute(_FIND_TOKENS, {"tokens": token_chunk}):
                    if status not in _OPEN:
                        continue  # rejected and retracted reports tie nobody to anything
                    accepted = status == ReportStatus.ACCEPTED.value
                    hit = Hit(subject=subject, type=IdentifierType(id_type), listing=listing if accepted else None)
                    hits.setdefault(bytes(token), set()).add(hit)
            if not hits:
                return {}, {}
            subjects = sorted({hit.subject for found in hits.values() for hit in found})
            listings: dict[int, Any] = {}
            rows: list[Any] = []
            for chunk in _chunks(subjects):
                for row in conn.execute(_ACTIVE_LISTINGS, {"subjects": chunk, "now": now}):
                    listings[row.id] = row
                rows.extend(conn.execute(_OPEN_REPORTS, {"subjects": chunk}))
            appealed: set[int] = set()
            for listing_chunk in _chunks(sorted(listings)):
                appealed.update(conn.execute(_PENDING_APPEALS, {"listings": listing_chunk}).scalars())
        return hits, _states(subjects, listings, rows, appealed, now)

    def _prepared(self, size: int) -> Prepared:
        """The token statement for `size` tokens, rendered once per size (and prepared by PostgreSQL)."""
        prepared = self._find_sql.get(size)
        if prepared is None:
            prepared = self._find_sql[size] = self._db.hot.prepare(_FIND_TOKENS, tokens=[b""] * size)
        return prepared


def _chunks(items: Sequence[T]) -> Iterable[list[T]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _states(
    subjects: list[int], listings: dict[int, Any], reports: list[Any], appealed: set[int], now: datetime
) -> dict[int, SubjectState]:
    # Grouped once: a batch of mostly hits must not scan every row per subject.
    active_of: dict[int, list[Any]] = defaultdict(list)
    listed_of: dict[int, list[Any]] = defaultdict(list)
    pending_of: dict[int, list[Any]] = defaultdict(list)
    for listing in listings.values():
        active_of[listing.subject_id].append(listing)
    for r in reports:
        if r.status == ReportStatus.ACCEPTED.value and r.listing_id in listings:
            listed_of[r.subject_id].append(r)
        elif r.status == ReportStatus.SUBMITTED.value:
            pending_of[r.subject_id].append(r)
    states: dict[int, SubjectState] = {}
    for subject in subjects:
        active, listed, pending = active_of[subject], listed_of[subject], pending_of[subject]
        states[subject] = SubjectState(
            subject_id=subject_ref(subject),
            listed=_allegation(listed) if active and listed else None,
            active_listings=frozenset(l.id for l in active),
            appeal_pending=any(l.id in appealed for l in active),
            in_notice=bool(active) and all(l.listed_from > now for l in active),
            listed_from=min((l.listed_from for l in active), default=None),
            listed_until=max((l.listed_until for l in active), default=None),
            under_review=_allegation(pending) if pending else None,
        )
    return states


def _allegation(reports: list[Any]) -> Allegation:
    return Allegation(
        roles=frozenset(Role(r.role) for r in reports),
        categories=frozenset(Category(r.category) for r in reports),
        severity=max((Severity(r.severity) for r in reports), key=lambda s: s.rank),
        platforms=len({r.member_id for r in reports}),
    )
