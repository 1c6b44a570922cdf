"""The lookup index: which subjects each token was reported against, and each such subject's state.

Tokens live in a `TokenTable` (flat arrays, about 90 bytes a token). Each
subject with open reports has one immutable `bytes` record in a list indexed
by subject id: the rows of its tokens, its open reports and its open listings,
packed with `struct` (a subject with one report and no listing takes 64 bytes).
Records are decoded only for the subjects a lookup hits.

One writer at a time (`apply`, `replace`); readers take no lock. The writer
makes the sequence number odd for the length of a change and even again after
it; a reader that saw it odd, or changed, during its read reads again, the
second time under the writer's lock. So a lookup sees a whole batch of changes
(a merge or a split changes two subjects at once) or none of it, and never
misses a token that one subject passes to another.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jpr_client.model import Category, Role, Severity
from registry.domain.verdict import Allegation, Hit, SubjectState
from registry.store.refs import listing_ref, subject_ref
from registry.store.token_table import TokenTable

ROLES, CATEGORIES, SEVERITIES = tuple(Role), tuple(Category), tuple(Severity)
ROLE_CODE = {r.value: code for code, r in enumerate(ROLES)}
CATEGORY_CODE = {c.value: code for code, c in enumerate(CATEGORIES)}
SEVERITY_CODE = {s.value: code for code, s in enumerate(SEVERITIES)}

_HEADER = struct.Struct("<HHH")  # rows, reports, listings
REPORT = struct.Struct("<iiBBBB")  # listing (0: under review), member, accepted, role, category, severity
LISTING = struct.Struct("<iqqiiBB")  # id, from and until (µs since the epoch), confirmations, disputes, appealed, quarantined
_ROWS: dict[int, struct.Struct] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Listing:
    id: int
    listed_from: datetime
    listed_until: datetime
    appealed: bool
    confirmations: int
    disputes: int
    quarantined: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    listing_id: int | None
    accepted: bool
    member_id: int
    role: Role
    category: Category
    severity: Severity


@dataclass(frozen=True)
class SubjectEntry:
    """One subject with open reports, as read from the database, on its way into the index."""

    subject: int
    hits: dict[bytes, frozenset[Hit]]
    listings: tuple[Listing, ...]
    reports: tuple[Report, ...]


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def pack_report(report: Report) -> bytes:
    return REPORT.pack(
        report.listing_id or 0, report.member_id, report.accepted,
        ROLE_CODE[report.role.value], CATEGORY_CODE[report.category.value], SEVERITY_CODE[report.severity.value],
    )


def pack_listing(listing: Listing) -> bytes:
    return LISTING.pack(
        listing.id, micros(listing.listed_from), micros(listing.listed_until),
        listing.confirmations, listing.disputes, listing.appealed, listing.quarantined,
    )


def encode(rows: Sequence[int], reports: Sequence[bytes], listings: Sequence[bytes]) -> bytes:
    """A subject's record from its token rows and its packed reports and listings."""
    return encode_packed(rows, b"".join(reports), b"".join(listings))


def encode_packed(rows: Sequence[int], reports: bytes, listings: bytes) -> bytes:
    """`encode` of reports and listings already packed end to end (REPORT and LISTING records)."""
    header = _HEADER.pack(len(rows), len(reports) // REPORT.size, len(listings) // LISTING.size)
    return b"".join((header, _rows_struct(len(rows)).pack(*rows), reports, listings))


def _rows_struct(count: int) -> struct.Struct:
    """The record's row numbers, `count` little-endian int32 (compiled once per count)."""
    if (compiled := _ROWS.get(count)) is None:
        compiled = _ROWS[count] = struct.Struct(f"<{count}i")
    return compiled


def rows_of(record: bytes) -> tuple[int, ...]:
    count: int = _HEADER.unpack_from(record)[0]
    return _rows_struct(count).unpack_from(record, _HEADER.size)


def subject_state(subject: int, record: bytes, now: datetime) -> SubjectState:
    """The subject's state at `now`, from its record: read from the packed tuples, no object per report or listing."""
    rows, report_count, listing_count = _HEADER.unpack_from(record)
    offset = _HEADER.size + 4 * rows
    end = offset + REPORT.size * report_count
    at = micros(now)
    # LISTING: id, from, until, confirmations, disputes, appealed, quarantined
    active = [listing for listing in LISTING.iter_unpack(record[end : end + LISTING.size * listing_count]) if listing[2] > at]
    active_ids = frozenset(listing[0] for listing in active)
    # REPORT: listing (0: under review), member, accepted, role, category, severity
    reports = list(REPORT.iter_unpack(record[offset:end]))
    listed = [r for r in reports if r[2] and r[0] in active_ids]
    pending = [r for r in reports if not r[2]]
    return SubjectState(
        subject_id=subject_ref(subject),
        listed=_allegation(listed) if active and listed else None,
        active_listings=active_ids,
        appeal_pending=any(listing[5] for listing in active),
        quarantined=frozenset(listing[0] for listing in active if listing[6]),
        in_notice=bool(active) and all(listing[1] > at for listing in active),
        listed_from=_moment(min(listing[1] for listing in active)) if active else None,
        listed_until=_moment(max(listing[2] for listing in active)) if active else None,
        under_review=_allegation(pending) if pending else None,
        listing_ref=listing_ref(max(active, key=lambda l: (l[2], l[0]))[0]) if active else "",
        confirmations=sum(listing[3] for listing in active),
        disputes=sum(listing[4] for listing in active),
    )


def _moment(microseconds: int) -> datetime:
    return _EPOCH + microseconds * _MICROSECOND


_SEVERITY_RANK = tuple(severity.rank for severity in SEVERITIES)


def _allegation(reports: list[tuple[int, ...]]) -> Allegation:
    """What packed REPORT tuples allege together."""
    return Allegation(
        roles=frozenset(ROLES[r[3]] for r in reports),
        categories=frozenset(CATEGORIES[r[4]] for r in reports),
        severity=SEVERITIES[max((r[5] for r in reports), key=_SEVERITY_RANK.__getitem__)],
        platforms=len({r[1] for r in reports}),
    )


Found = tuple[dict[bytes, frozenset[Hit]], dict[int, SubjectState]]


class LookupIndex:
    def __init__(self) -> None:
        self._table = TokenTable()
        self._records: list[bytes | None] = []
        self._subjects = 0
        self._seq = 0  # odd while the writer changes the index
        self._applying = threading.Lock()

    @property
    def subjects(self) -> int:
        return self._subjects

    @property
    def tokens(self) -> int:
        return len(self._table)

    def find(self, tokens: Iterable[bytes], now: datetime) -> Found:
        """Which subjects each token was reported against (and how), and the state of each subject hit."""
        tokens = tokens if isinstance(tokens, (list, tuple)) else list(tokens)
        seq = self._seq
        if not seq & 1:
            try:
                found = self._find(tokens, now)
            except (IndexError, KeyError, struct.error):  # a half-done change read mid-way: read again below
                if self._seq == seq:
                    raise
            else:
                if self._seq == seq:
                    return found
        with self._applying:
            return self._find(tokens, now)

    def _find(self, tokens: Sequence[bytes], now: datetime) -> Found:
        records = self._records
        hits = self._table.found(tokens)
        if not hits:
            return {}, {}
        states: dict[int, SubjectState] = {}
        for subject in {hit.subject for found in hits.values() for hit in found}:
            record = records[subject] if subject < len(records) else None
            if record is not None:
                states[subject] = subject_state(subject, record, now)
        if all(hit.subject in states for found in hits.values() for hit in found):
            return hits, states  # nearly always: a subject a token is held for has a record
        return {t: kept for t, found in hits.items() if (kept := frozenset(h for h in found if h.subject in states))}, states

    def other_holders(self, entry: SubjectEntry) -> set[int]:
        """Other subjects holding one of this entry's strong tokens: a report that moved (a merge) left them stale."""
        others: set[int] = set()
        for token, found in entry.hits.items():
            if any(hit.type.strong for hit in found) and (row := self._table.row(token)) >= 0:
                others.update(self._table.subjects(row))
        others.discard(entry.subject)
        return others

    def apply(self, entries: Mapping[int, SubjectEntry | None]) -> None:
        """Replace these subjects' records (None: the subject answers nothing), as one change."""
        with self._applying:
            self._seq += 1
            try:
                self._apply(entries)
            finally:
                self._seq += 1

    def _apply(self, entries: Mapping[int, SubjectEntry | None]) -> None:
        table, records = self._table, self._records
        top = max(entries, default=-1)
        if top >= len(records):
            records.extend([None] * (top + 1 - len(records)))
        for subject in entries:
            if (record := records[subject]) is not None:
                for row in rows_of(record):
                    table.remove_subject(row, subject)
                records[subject] = None
                self._subjects -= 1
        for subject, entry in entries.items():
            if entry is not None:
                rows = sorted({table.add(token, hit) for token, found in entry.hits.items() for hit in found})
                reports = [pack_report(r) for r in entry.reports]
                records[subject] = encode(rows, reports, [pack_listing(listing) for listing in entry.listings])
                self._subjects += 1

    def export(self) -> tuple[dict[str, bytes], list[bytes | None], int]:
        """Copies of the index for a snapshot file: the table's sections, the records, the subject count.
        The caller keeps every writer out meanwhile (ReadView's lock)."""
        return self._table.sections(), list(self._records), self._subjects

    def replace(self, table: TokenTable, records: list[bytes | None], subjects: int) -> None:
        """Swap in an index read whole (the load at start)."""
        with self._applying:
            self._seq += 1
            self._table, self._records, self._subjects = table, records, subjects
            self._seq += 1
