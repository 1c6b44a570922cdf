"""Imported reports: filed and accepted with their own dates, a batch in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jpr_client.model import ReportStatus
from registry.domain.errors import RegistryError
from registry.store import events
from registry.store.database import Database
from registry.store.listings import accept_with_dates
from registry.store.models import ReportRow
from registry.store.refs import listing_ref, subject_ref
from registry.store.reports import Submission, file_report


@dataclass(frozen=True)
class Acceptance:
    """A checked report and the punishment it records."""

    submission: Submission
    reason: str
    listed_from: datetime
    listed_until: datetime


@dataclass(frozen=True)
class Stored:
    report_id: str
    imported: bool  # False: the member had filed this report id before, nothing changed
    subject_id: str = ""
    listing_id: str = ""
    refusal: RegistryError | None = None


class ImportStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def import_batch(self, acceptances: Sequence[Acceptance], *, actor: str, now: datetime) -> list[Stored]:
        """File and accept each report, all in one transaction; one item's refusal undoes that item only."""
        if not acceptances:
            return []

        def work(session: Session, alone: bool) -> list[Stored]:
            ids = [a.submission.payload.report_id for a in acceptances]
            filed = {row.report_id: row for row in session.execute(_FILED, {"ids": ids})}
            firsts: dict[str, Stored] = {}
            stored: list[Stored] = []
            for acceptance, report_id in zip(acceptances, ids, strict=True):
                first = firsts.get(report_id)
                if first is None:
                    stored.append(firsts.setdefault(report_id, _import(session, acceptance, filed.get(report_id), actor, now, alone=alone)))
                else:  # the same row twice in one batch: as the second run of it would be
                    stored.append(first if first.refusal else Stored(report_id, False, first.subject_id, first.listing_id))
            return stored

        def at_once(session: Session) -> list[Stored]:
            with events.held_until_the_end(session):  # no savepoint to undo part of them
                return work(session, alone=False)

        try:  # nearly always: every item goes in, without a savepoint each
            return self._db.write(at_once)
        except RegistryError:  # some item is refused: again, each in its own savepoint, so that it is refused alone
            return self._db.write(lambda session: work(session, alone=True))


_FILED = select(ReportRow.report_id, ReportRow.member_id, ReportRow.status, ReportRow.subject_id, ReportRow.listing_id).where(
    ReportRow.report_id.in_(bindparam("ids", expanding=True))
)


def _import(session: Session, acceptance: Acceptance, existing: Any, actor: str, now: datetime, *, alone: bool) -> Stored:
    report_id = acceptance.submission.payload.report_id
    # The report id is derived from the row's content: the same id from the same member is the same row again.
    ours = existing is not None and existing.member_id == acceptance.submission.member_id
    if ours and existing.status != ReportStatus.SUBMITTED.value:
        return Stored(report_id, imported=False, subject_id=subject_ref(existing.subject_id), listing_id=listing_ref(existing.listing_id))
    # Another member's report under this id: filing refuses it (ALREADY_EXISTS), as SubmitReport would.
    # The batch's one read found no report under this id: filing need not look again.
    unused = existing is None
    if not alone:
        return _file_and_accept(session, acceptance, not ours, actor, now, unused=unused)
    try:
        with session.begin_nested():
            return _file_and_accept(session, acceptance, not ours, actor, now, unused=unused)
    except RegistryError as error:
        return Stored(report_id, imported=False, refusal=error)


def _file_and_accept(session: Session, acceptance: Acceptance, file: bool, actor: str, now: datetime, *, unused: bool = False) -> Stored:
    report_id = acceptance.submission.payload.report_id
    # No autoflush: what an item leaves unflushed (its last events, its report's acceptance) is nothing the next
    # item's statements read, and every row they do read (tokens, subjects, listings) was flushed for its id.
    with session.no_autoflush:
        if file:
            file_report(session, acceptance.submission, now, unused_id=unused)
        listing = accept_with_dates(
            session, report_id, listed_from=acceptance.listed_from, listed_until=acceptance.listed_until,
            reason=acceptance.reason, actor=actor, now=now,
        )
    return Stored(report_id, imported=True, subject_id=subject_ref(listing.subject_id), listing_id=listing_ref(listing.id))
