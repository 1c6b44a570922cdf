"""Imported reports: filed and accepted with their own dates, a batch in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from jpr_client.model import ReportStatus
from registry.domain.errors import RegistryError
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
        return self._db.write(lambda session: [_import(session, a, actor, now) for a in acceptances])


def _import(session: Session, acceptance: Acceptance, actor: str, now: datetime) -> Stored:
    report_id = acceptance.submission.payload.report_id
    existing = session.get(ReportRow, report_id)
    # The report id is derived from the row's content: the same id from the same member is the same row again.
    if existing is not None and existing.member_id == acceptance.submission.member_id and existing.status != ReportStatus.SUBMITTED.value:
        return Stored(report_id, imported=False, subject_id=subject_ref(existing.subject_id), listing_id=listing_ref(existing.listing_id))
    try:
        with session.begin_nested():
            if existing is None:
                file_report(session, acceptance.submission, now)
            listing = accept_with_dates(
                session, report_id, listed_from=acceptance.listed_from, listed_until=acceptance.listed_until,
                reason=acceptance.reason, actor=actor, now=now,
            )
    except RegistryError as error:
        return Stored(report_id, imported=False, refusal=error)
    return Stored(report_id, imported=True, subject_id=subject_ref(listing.subject_id), listing_id=listing_ref(listing.id))
