"""Importing the lists the association already keeps: signed reports, accepted with their own dates.

Each envelope goes through the checks `SubmitReport` makes (`ReportService.check`),
signed by the association's own member; a batch is then stored and accepted in
one transaction. A refused item is refused alone, with the status and message
`SubmitReport` would give it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from jpr_client.quoting import quoted
from registry.crypto import pki
from registry.domain.admin import MAX_REASON
from registry.domain.terms import MAX_TERM_DAYS
from registry.domain.errors import FailedPrecondition, InvalidArgument, NotFound, RegistryError
from registry.domain.model import Caller, ImportOutcome, MemberStatus
from registry.domain.reports import ReportService
from registry.store.imports import Acceptance, ImportStore, Stored
from registry.store.members import MemberStore

MAX_IMPORT_ITEMS = 500


@dataclass(frozen=True)
class ImportItem:
    envelope: bytes
    reason: str
    listed_from: datetime | None
    listed_until: datetime | None


@dataclass(frozen=True)
class ImportResult:
    outcome: ImportOutcome
    report_id: str = ""
    status: str = ""  # REFUSED: the gRPC status name
    message: str = ""
    subject_id: str = ""
    listing_id: str = ""


class ImportService:
    def __init__(
        self, reports: ReportService, store: ImportStore, members: MemberStore, *, max_clock_skew: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._reports = reports
        self._store = store
        self._members = members
        self._skew = max_clock_skew
        self._clock = clock

    def import_reports(self, admin: Caller, member: str, items: Sequence[ImportItem]) -> list[ImportResult]:
        """One result per item, in order: each checked as SubmitReport checks it, then all stored at once."""
        if not 0 < len(items) <= MAX_IMPORT_ITEMS:
            raise InvalidArgument(f"items: {len(items)} items; send 1 to {MAX_IMPORT_ITEMS} per call")
        reporter = self._reporter(member)
        now = self._clock()
        dates = [self._dates(item, f"items[{index}]", now) for index, item in enumerate(items)]
        dated = [index for index, d in enumerate(dates) if not isinstance(d, RegistryError)]
        submissions = dict(zip(dated, self._reports.check_batch(reporter, [items[i].envelope for i in dated]), strict=True))
        outcomes: list[Acceptance | RegistryError] = []
        for index, item in enumerate(items):
            when = dates[index]
            if isinstance(when, RegistryError):
                outcomes.append(when)
                continue
            submission = submissions[index]
            outcomes.append(submission if isinstance(submission, RegistryError) else Acceptance(submission, item.reason, *when))
        stored = iter(self._store.import_batch([o for o in outcomes if isinstance(o, Acceptance)], actor=f"admin:{admin.name}", now=now))
        return [_refused(o) if isinstance(o, RegistryError) else _result(next(stored)) for o in outcomes]

    def _reporter(self, member: str) -> Caller:
        """The member whose key signed the batch: it must exist and be active."""
        found = next((m for m in self._members.list() if m.name == member), None)
        if found is None:
            raise NotFound(f"member: no member named {quoted(member)}; name the association's own member whose key signed the reports")
        if found.status is not MemberStatus.ACTIVE:
            raise FailedPrecondition(f"member {quoted(member)} is {found.status.value}; a suspended member's reports are not imported")
        return Caller(role=pki.ROLE_MEMBER, name=member)

    def _dates(self, item: ImportItem, where: str, now: datetime) -> tuple[datetime, datetime] | RegistryError:
        """The item's (listed_from, listed_until), or why they cannot be listed."""
        start, end = item.listed_from, item.listed_until
        if len(item.reason) > MAX_REASON:
            return InvalidArgument(f"{where}.reason: {len(item.reason)} characters, at most {MAX_REASON} are allowed")
        if start is None or end is None:
            return InvalidArgument(f"{where}: listed_from and listed_until are required (the punishment's own dates)")
        if start > now + self._skew:
            return InvalidArgument(f"{where}.listed_from {start.isoformat()} is in the future; import punishments already in force")
        if end <= now:
            return FailedPrecondition(f"{where}.listed_until {end.isoformat()} has passed; an ended punishment is not listed")
        if end <= start:
            return InvalidArgument(f"{where}.listed_until {end.isoformat()} is not after listed_from")
        if end - start > timedelta(days=MAX_TERM_DAYS):
            return InvalidArgument(f"{where}: a listing lasts at most {MAX_TERM_DAYS} days from listed_from")
        return start, end


def _refused(error: RegistryError) -> ImportResult:
    return ImportResult(ImportOutcome.REFUSED, status=error.status, message=str(error))


def _result(stored: Stored) -> ImportResult:
    outcome = ImportOutcome.IMPORTED if stored.imported else ImportOutcome.ALREADY_PRESENT
    if stored.refusal is not None:
        return _refused(stored.refusal)
    return ImportResult(outcome, stored.report_id, subject_id=stored.subject_id, listing_id=stored.listing_id)
