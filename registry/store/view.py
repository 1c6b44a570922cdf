"""What every call reads, held in memory and kept current from the event log.

An entry audit must not wait for the database: nine applicants in ten are
unknown people, and asking the database about each of them, and about the
caller's membership, cost more than the rest of the call. `ReadView` holds

- each member's status (checked on every member call), and
- the lookup index: the tokens of every open report (SUBMITTED or ACCEPTED;
  only those tie a token to a subject), with each such subject's open
  listings, pending appeals and open reports.

Every state change writes an event row in its own transaction (events.py).
The view follows that table: the process that made a change catches up before
its write returns, so it sees its own changes at once; changes made by another
replica are picked up by a poll every `interval` seconds. Catching up reloads
from the database every subject an event touches, so seeing an event twice, or
late, gives the same result. If the view cannot reach its database for
`max_lag` seconds, lookups fail with UNAVAILABLE rather than answer from a
state that may have changed.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pathlib import Path

from sqlalchemy import Connection, bindparam, func, select, text

from jpr_client import __version__

from jpr_client.model import Category, IdentifierType, ListingStatus, Opinion, ReportStatus, Role, Severity
from registry.crypto.pki import CLIENT_DAYS
from registry.domain.errors import Unavailable
from registry.domain.model import AppealStatus, MemberStatus
from registry.domain.verdict import Hit
from registry.store.database import Database, log_background_failure
from registry.store.models import (
    AppealRow,
    CertificatePolicyRow,
    CertificateRow,
    EventRow,
    ListingRow,
    MemberRow,
    OpinionRow,
    ReportRow,
    ReportTokenRow,
    RevokedCertificateRow,
)
from registry.store import index_snapshot
from registry.store.index_load import read_index
from registry.store.index_snapshot import Snapshot
from registry.store.lookup_index import Found, Listing, LookupIndex, Report, SubjectEntry
from registry.store.prepared import Prepared
from registry.store.refs import parse_ref

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHUNK = 500  # bound parameters per statement, well under every backend's limit
_OPEN = (ReportStatus.ACCEPTED.value, ReportStatus.SUBMITTED.value)
_LISTED = (ListingStatus.ACTIVE.value, ListingStatus.PENDING_NOTICE.value)
_UNKNOWN_MEMBER_RECHECK = 0.1  # seconds between catch-ups for a member name the view does not know
_SNAPSHOT_CATCH_UP = 100_000  # events after a snapshot, at most, for catching up to beat reading the database whole
_RECENT_EVENTS = 1000  # at start, how far back an uncommitted event may hide (PostgreSQL)
# What the server signed before certificates were registered lasted CLIENT_DAYS: a "legacy"
# certificate valid for longer was not one of those (a backdated forgery with the CA key).
_LEGACY_VALIDITY = timedelta(days=CLIENT_DAYS, hours=1)

_subjects: Any = bindparam("subjects", expanding=True)
_REPORTS = Prepared(select(
    ReportRow.subject_id, ReportRow.listing_id, ReportRow.status,
    ReportRow.member_id, ReportRow.role, ReportRow.category, ReportRow.severity,
).where(ReportRow.subject_id.in_(_subjects)))
_TOKENS = Prepared(
    select(ReportRow.subject_id, ReportRow.status, ReportRow.listing_id, ReportTokenRow.token, ReportTokenRow.id_type)
    .join(ReportTokenRow, ReportTokenRow.report_id == ReportRow.report_id)
    .where(ReportRow.subject_id.in_(_subjects))
)
_LISTINGS = Prepared(select(ListingRow.id, ListingRow.subject_id, ListingRow.listed_from, ListingRow.listed_until, ListingRow.quarantined_at).where(
    ListingRow.subject_id.in_(_subjects), ListingRow.status.in_(_LISTED)
))
_APPEALED = Prepared(
    select(AppealRow.listing_id)
    .join(ListingRow, ListingRow.id == AppealRow.listing_id)
    .where(ListingRow.subject_id.in_(_subjects), AppealRow.status == AppealStatus.PENDING.value)
)
_OPINIONS = Prepared(
    select(OpinionRow.listing_id, OpinionRow.opinion, func.count())
    .join(ListingRow, ListingRow.id == OpinionRow.listing_id)
    .where(ListingRow.subject_id.in_(_subjects), ListingRow.status.in_(_LISTED))
    .group_by(OpinionRow.listing_id, OpinionRow.opinion)
)
_EVENTS_AFTER = Prepared(
    select(EventRow.seq, EventRow.kind, EventRow.subject_id, EventRow.listing_id, EventRow.report_id, EventRow.detail)
    .where(EventRow.seq > bindparam("after"))
    .order_by(EventRow.seq)
)
_SUBJECT_OF_LISTINGS = Prepared(select(ListingRow.subject_id).where(ListingRow.id.in_(bindparam("ids", expanding=True))))
_SUBJECT_OF_REPORTS = Prepared(select(ReportRow.subject_id).where(ReportRow.report_id.in_(bindparam("ids", expanding=True))))
_MEMBERS = select(MemberRow.name, MemberRow.status)
_EVENTS_UP_TO = select(func.count()).select_from(EventRow).where(EventRow.seq <= bindparam("floor"))
_REVISION = text("SELECT version_num FROM alembic_version")  # the schema's migration revision, as Alembic records it


class EventCursor:
    """Which events have been applied, robust to commits out of sequence order.

    PostgreSQL hands out a sequence value at insert and shows the row at
    commit, so a transaction that began earlier can commit later with a lower
    `seq`. The cursor therefore re-reads from its oldest gap until the gap
    fills, or until it is older than `patience` seconds: the value of a
    rolled-back transaction never appears.
    """

    def __init__(self, floor: int, *, patience: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.floor = floor  # every seq up to here is applied (or was given up)
        self._seen: set[int] = set()
        self._gaps: dict[int, float] = {}
        self._patience = patience
        self._clock = clock

    def take(self, seqs: Iterable[int]) -> list[int]:
        """Mark `seqs` as read; return those not seen before."""
        new = [s for s in seqs if s > self.floor and s not in self._seen]
        self._seen.update(new)
        now = self._clock()
        top = max(self._seen, default=self.floor)
        for seq in range(self.floor + 1, top):
            if seq not in self._seen:
                self._gaps.setdefault(seq, now)
        while True:
            following = self.floor + 1
            if following in self._seen:
                self._seen.discard(following)
            elif following in self._gaps and now - self._gaps[following] >= self._patience:
                log.debug("event %d never committed; moving past it", following)
            else:
                break
            self._gaps.pop(following, None)
            self.floor = following
        return new

    @property
    def settled(self) -> bool:
        """No event above the floor was applied: the floor alone says what was."""
        return not self._seen


class ReadView:
    def __init__(
        self,
        db: Database,
        *,
        patience: float = 30.0,
        max_lag: float = 30.0,
        lookups: bool = True,
        snapshot: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`lookups=False`: member statuses only (a view of the primary when lookups read a replica).
        `snapshot`: the file the lookup index is kept in between starts (index_snapshot.py)."""
        self._db = db
        self._snapshot_file = snapshot if lookups else None
        self._snapshot_floor = -1  # the floor of the snapshot file as this process last read or wrote it
        self._lookups = lookups
        self._patience = patience
        self._max_lag = max_lag
        self._clock = clock
        self._lock = threading.Lock()  # one catch-up at a time; readers never take it
        self._index = LookupIndex()
        self._members: dict[str, MemberStatus] = {}
        self._revoked: frozenset[str] = frozenset()  # SHA-256 of revoked client certificates
        self._registered: frozenset[str] = frozenset()  # SHA-256 of registered client certificates
        self._unregistered_before: datetime | None = None  # CertificatePolicyRow.unregistered_issued_before
        self._cursor = EventCursor(0, patience=patience, clock=clock)
        self._fresh_at = clock()
        self._rechecked_at: dict[str, float] = {}  # per unknown member name: when its last catch-up began
        self._recheck_lock = threading.Lock()
        self._unreachable: set[str] = set()  # keys whose last catch-up failed
        self._moved = threading.Condition()

    # -- readers (any thread, no lock, no statement) --

    def member_status(self, name: str) -> MemberStatus | None:
        """The member's status; UNAVAILABLE when the view is too old to say (a suspension may be missing)."""
        self._check_fresh()
        status = self._members.get(name)
        if status is None:
            self._recheck(f"member {name}")
            status = self._members.get(name)
        return status

    def certificate_admitted(self, sha256: str, issued_at: datetime, expires_at: datetime) -> bool:
        """A client certificate registered here, or one the server signed before it registered
        certificates (signed before the cut-off, and valid no longer than it signed them for).

        Like revocations, answered from memory even when the view is stale (health must still say
        NOT_SERVING); only a certificate the view does not know costs a catch-up, UNAVAILABLE if it fails.
        """
        if not self._admits(sha256, issued_at, expires_at):
            self._recheck(f"certificate {sha256}")
        return self._admits(sha256, issued_at, expires_at)

    def _admits(self, sha256: str, issued_at: datetime, expires_at: datetime) -> bool:
        before = self._unregistered_before
        return sha256 in self._registered or (
            before is not None and issued_at < before and expires_at <= before + _LEGACY_VALIDITY
        )

    def _recheck(self, key: str) -> None:
        """A member or certificate just registered on another replica may call before the next poll: catch up once.

        Calls that arrive together (a new platform opening its connections) wait for that one
        catch-up instead of being refused while it runs; after it, one name gets at most one
        catch-up per interval however many calls its certificate makes.
        """
        with self._recheck_lock:
            began = self._clock()
            if began - self._rechecked_at.get(key, float("-inf")) > _UNKNOWN_MEMBER_RECHECK:
                try:
                    self.catch_up()
                except Exception as error:  # the caller hears UNAVAILABLE (retry), the log one line
                    log.warning("could not catch up to check %s: %s", key, error.__class__.__name__)
                    self._unreachable.add(key)
                else:
                    self._unreachable.discard(key)
                finally:  # a failing database is tried once per interval too, not by every waiting call
                    self._rechecked_at[key] = began
            if key in self._unreachable:  # the last catch-up for it failed, now or within the interval
                raise Unavailable(f"this replica could not reach its database to check {key}; retry, or call another replica")

    @property
    def fresh(self) -> bool:
        """Recent enough to answer: lookups and member checks answer UNAVAILABLE otherwise (health says NOT_SERVING)."""
        return self._clock() - self._fresh_at <= self._max_lag

    @property
    def lag(self) -> float:
        """Seconds since the view last caught up with the event log (metrics; health goes by `fresh`)."""
        return self._clock() - self._fresh_at

    def _check_fresh(self) -> None:
        if not self.fresh:
            lag = self.lag
            raise Unavailable(
                f"this replica has not reached its database for {lag:.0f} s, so its answers may be out of date; "
                "retry, or call another replica"
            )

    def certificate_revoked(self, sha256: str) -> bool:
        return sha256 in self._revoked

    def find(self, tokens: Sequence[bytes], now: datetime) -> Found:
        """Which subjects each token was reported against (and how), and the state of each subject hit."""
        self._check_fresh()
        return self._index.find(tokens, now)

    @property
    def floor(self) -> int:
        """Every event up to this seq is applied, and no event at or below it can still appear."""
        return self._cursor.floor

    def wait_for_change(self, timeout: float) -> None:
        with self._moved:
            self._moved.wait(timeout)

    def wake_waiters(self) -> None:
        """Wake every `wait_for_change` now (a watch whose call ended leaves at once, freeing its thread)."""
        with self._moved:
            self._moved.notify_all()

    @property
    def subjects_indexed(self) -> int:
        return self._index.subjects

    @property
    def tokens_indexed(self) -> int:
        return self._index.tokens

    # -- writers (one at a time) --

    def load(self) -> None:
        """Read everything the view holds, in one snapshot; the lookup index from its snapshot file
        when that file still belongs to this database's history, then the events after it."""
        started = time.monotonic()
        kept = self._read_snapshot_file()
        with self._lock, self._snapshot() as conn:
            self._read_identities(conn)
            if kept is not None and (refused := _refusal(conn, kept.stamp)):
                log.warning("lookup index snapshot %s not used: %s; reading the database instead", self._snapshot_file, refused)
                kept = None
            if kept is not None:
                self._index.replace(kept.table, kept.records, kept.subjects)
                self._cursor = EventCursor(kept.stamp.floor, patience=self._patience, clock=self._clock)
                self._snapshot_floor = kept.stamp.floor
            else:
                top = conn.execute(select(func.max(EventRow.seq))).scalar() or 0
                recent = conn.execute(select(EventRow.seq).where(EventRow.seq > top - _RECENT_EVENTS)).scalars().all()
                self._cursor = EventCursor(max(top - _RECENT_EVENTS, 0), patience=self._patience, clock=self._clock)
                self._cursor.take(recent)
                if self._lookups:
                    self._index.replace(*read_index(conn))
            self._fresh_at = self._clock()
        if kept is not None:
            self.catch_up()  # every subject an event after the snapshot's floor touched, read again
            log.info("lookup index restored from %s (event %d) and caught up to event %d: %d subjects, %d tokens in %.1f s",
                     self._snapshot_file, kept.stamp.floor, self._cursor.floor, self._index.subjects, self._index.tokens,
                     time.monotonic() - started)
        elif self._lookups:
            log.info("lookup index loaded: %d subjects, %d tokens in %.1f s", self._index.subjects, self._index.tokens,
                     time.monotonic() - started)

    def _read_snapshot_file(self) -> Snapshot | None:
        if self._snapshot_file is None or not self._snapshot_file.exists():
            return None
        try:
            return index_snapshot.read(self._snapshot_file)
        except index_snapshot.SnapshotError as error:
            log.warning("lookup index snapshot not used: %s; reading the database instead", error)
        except Exception as error:  # a file this code did not write: a shortcut is never worth a failed start
            log.warning("lookup index snapshot %s not used: it does not hold a lookup index (%s); reading the database instead",
                        self._snapshot_file, error.__class__.__name__)
        return None

    def write_snapshot_or_log(self) -> None:
        """`write_snapshot` from a background pass or at stop: a failure (a full disk, a read-only data
        directory, the database away) is one log line; the next start reads the database."""
        try:
            self.write_snapshot()
        except OSError as error:
            log.warning("could not write the lookup index snapshot %s: %s", self._snapshot_file, error.strerror or error)
        except Exception:
            log_background_failure(log, "could not write the lookup index snapshot")

    def write_snapshot(self) -> None:
        """Keep the lookup index in its snapshot file, if the event log moved since the file was written.

        The index is copied while catch-ups wait (a memory copy: about a second at ten
        million tokens); the file is written after, while lookups and catch-ups go on.
        """
        if self._snapshot_file is None:
            return
        with self._lock:
            floor = self._cursor.floor
            if floor <= 0 or floor == self._snapshot_floor:
                return
            if not self._cursor.settled:  # a later event was applied past a gap (PostgreSQL): the next pass will do
                log.info("lookup index snapshot put off: events after %d are still being committed", floor)
                return
            table, records, subjects = self._index.export()
        started = time.monotonic()
        with self._db.read() as conn:
            salt, events, revision = _history_at(conn, floor)
        if salt is None or revision is None:  # a floor past an event that was rolled back: the next one will do
            return
        stamp = index_snapshot.Stamp(floor=floor, salt=salt, events=events, revision=revision)
        size = index_snapshot.write(self._snapshot_file, stamp, table, records, subjects)
        self._snapshot_floor = floor
        log.info("lookup index snapshot written to %s (event %d): %d tokens, %.0f MiB in %.1f s",
                 self._snapshot_file, floor, self._index.tokens, size / 2**20, time.monotonic() - started)

    def catch_up(self) -> None:
        """Apply every event committed since the last catch-up.

        The cursor moves only once everything the events touch is applied: if a
        statement fails half-way, the next catch-up reads the same events again.
        """
        started = self._clock()
        with self._lock, self._snapshot() as conn:
            rows = _EVENTS_AFTER.rows(conn, {"after": self._cursor.floor})
            cursor = copy.deepcopy(self._cursor)
            fresh = set(cursor.take(row.seq for row in rows))
            events = [row for row in rows if row.seq in fresh]
            if any(row.kind.startswith(("member.", "certificate.")) for row in events):
                self._read_identities(conn)
            if self._lookups:
                self._reload(conn, _subjects_touched(conn, events))
            self._cursor = cursor
            self._fresh_at = started
        if events:
            with self._moved:
                self._moved.notify_all()

    def catch_up_after_write(self) -> None:
        """After a write this process committed. A failure here must not fail the committed write:
        the follower's next poll applies the change."""
        try:
            self.catch_up()
        except Exception:
            log_background_failure(log, "catching up after a write failed; the next poll retries")

    def _reload(self, conn: Connection, subjects: Iterable[int]) -> None:
        pending, seen = set(subjects), set()
        while pending:  # a report that moved (a merge) leaves its old subject to reload too
            batch, pending = sorted(pending), set()
            seen.update(batch)
            for chunk in _chunks(batch):
                entries = _read_entries(conn, chunk)
                for entry in entries.values():
                    if entry is not None:
                        pending.update(self._index.other_holders(entry) - seen)
                self._index.apply(entries)

    def _snapshot(self) -> Any:
        return self._db.read(repeatable=True)

    def _read_identities(self, conn: Connection) -> None:
        """Who may call: member statuses, revoked and registered certificates."""
        self._members = {name: MemberStatus(status) for name, status in conn.execute(_MEMBERS)}
        self._revoked = frozenset(conn.execute(select(RevokedCertificateRow.sha256)).scalars())
        self._registered = frozenset(conn.execute(select(CertificateRow.sha256)).scalars())
        self._unregistered_before = conn.execute(select(CertificatePolicyRow.unregistered_issued_before)).scalar()


def _history_at(conn: Connection, floor: int) -> tuple[str | None, int, str | None]:
    """What ties a snapshot to this database at event `floor`: the event's salt (hex; None when the
    database has no such event), how many events it holds up to there, and the schema's revision."""
    salt = conn.execute(select(EventRow.salt).where(EventRow.seq == floor)).scalar()
    events = conn.execute(_EVENTS_UP_TO, {"floor": floor}).scalar_one()
    revision = conn.execute(_REVISION).scalar()
    return (None if salt is None else bytes(salt).hex()), int(events), (None if revision is None else str(revision))


def _refusal(conn: Connection, stamp: index_snapshot.Stamp) -> str:
    """Why a snapshot does not belong to this database's history or this code ("" when it does)."""
    if stamp.version != __version__:
        return f"it was written by registry {stamp.version}, this is {__version__}"
    salt, held, revision = _history_at(conn, stamp.floor)
    if stamp.revision != revision:
        return f"it was written at schema revision {stamp.revision}, the database is at {revision}"
    if salt is None:
        return f"the database has no event {stamp.floor}, the last the snapshot applied (restored from an older backup?)"
    if salt != stamp.salt:
        return (f"event {stamp.floor} in the database is not the one the snapshot applied "
                "(another registry's database, or one restored from a backup and written to since)")
    if held != stamp.events:
        return (f"the database holds {held} events up to event {stamp.floor}, the snapshot was taken with {stamp.events} "
                "(a backup taken while earlier events were still committing, or events committed late)")
    since = conn.execute(select(func.count()).select_from(EventRow).where(EventRow.seq > stamp.floor)).scalar_one()
    if since > _SNAPSHOT_CATCH_UP:
        return f"{since} events came after it, more than reading the database again costs"
    return ""


def _subjects_touched(conn: Connection, events: Sequence[Any]) -> set[int]:
    subjects = {row.subject_id for row in events if row.subject_id is not None}
    for row in events:
        for key in ("merged_subject", "new_subject"):  # a merge or a split names the other subject
            other = (row.detail or {}).get(key)
            if other:
                subjects.add(parse_ref("S", other))
    listing_ids = sorted({row.listing_id for row in events if row.listing_id is not None})
    report_ids = sorted({row.report_id for row in events if row.report_id is not None})
    for chunk in _chunks(listing_ids):
        subjects.update(s for s, in _SUBJECT_OF_LISTINGS.rows(conn, {"ids": chunk}))
    for chunk in _chunks(report_ids):
        subjects.update(s for s, in _SUBJECT_OF_REPORTS.rows(conn, {"ids": chunk}) if s is not None)
    return subjects


def _read_entries(conn: Connection, subjects: list[int]) -> dict[int, SubjectEntry | None]:
    """Each subject's entry, None for a subject without open reports (it answers nothing)."""
    params = {"subjects": subjects}
    reports: dict[int, list[Report]] = defaultdict(list)
    for row in _REPORTS.rows(conn, params):
        if row.status in _OPEN:
            reports[row.subject_id].append(
                Report(
                    listing_id=row.listing_id,
                    accepted=row.status == ReportStatus.ACCEPTED.value,
                    member_id=row.member_id,
                    role=Role(row.role),
                    category=Category(row.category),
                    severity=Severity(row.severity),
                )
            )
    hits: dict[int, dict[bytes, set[Hit]]] = defaultdict(dict)
    for subject, status, listing, token, id_type in _TOKENS.rows(conn, params):
        if status in _OPEN:  # rejected and retracted reports tie nobody to anything
            accepted = status == ReportStatus.ACCEPTED.value
            hit = Hit(subject=subject, type=IdentifierType(id_type), listing=listing if accepted else None)
            hits[subject].setdefault(bytes(token), set()).add(hit)
    listed = _LISTINGS.rows(conn, params)
    # Appeals and opinions only qualify listings: subjects without any (a new report's) need neither read.
    appealed = {listing for listing, in _APPEALED.rows(conn, params)} if listed else set()
    opinions: dict[tuple[int, str], int] = {
        (listing, opinion): n for listing, opinion, n in _OPINIONS.rows(conn, params)
    } if listed else {}
    listings: dict[int, list[Listing]] = defaultdict(list)
    for found in listed:
        listings[found.subject_id].append(
            Listing(
                found.id, found.listed_from, found.listed_until, found.id in appealed,
                confirmations=opinions.get((found.id, Opinion.CONFIRMED.value), 0),
                disputes=opinions.get((found.id, Opinion.DISPUTED.value), 0),
                quarantined=found.quarantined_at is not None,
            )
        )
    return {
        subject: SubjectEntry(
            subject=subject,
            hits={token: frozenset(found) for token, found in hits[subject].items()},
            listings=tuple(listings[subject]),
            reports=tuple(reports[subject]),
        )
        if reports.get(subject)
        else None
        for subject in subjects
    }


def _chunks(items: Sequence[T]) -> Iterable[list[T]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


class Follower:
    """Polls the event log every `interval` seconds on a daemon thread (changes by other replicas)."""

    def __init__(
        self, view: ReadView, interval: float, *, failed: Callable[[], None] = lambda: None, snapshot_every: float = 0.0,
    ) -> None:
        """`snapshot_every`: seconds between snapshot files of the lookup index (0: none)."""
        self._view = view
        self._interval = interval
        self._failed = failed  # told of each poll that failed (metrics)
        self._snapshot_every = snapshot_every
        self._next_snapshot = time.monotonic() + snapshot_every
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="jpr-follow", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._view.catch_up()
            except Exception:  # the database is away; lookups refuse once the view is too old
                self._failed()
                if not self._failing:
                    log_background_failure(log, "cannot follow the event log; retrying every %.1f s", self._interval)
                self._failing = True
            else:
                if self._failing:
                    log.info("following the event log again")
                self._failing = False
                if self._snapshot_every and time.monotonic() >= self._next_snapshot:
                    self._next_snapshot = time.monotonic() + self._snapshot_every
                    self._view.write_snapshot_or_log()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
