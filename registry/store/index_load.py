"""The lookup index read whole at start: one streaming scan per table, little Python per row.

Ten million tokens must be ready within a minute, about 6 µs a token all in,
so rows are read through the driver's own cursor (a server-side cursor on
PostgreSQL, `fetchmany` on SQLite) rather than as SQLAlchemy rows, inside the
caller's snapshot transaction, and the two big tables are joined here rather
than by the database: the open reports first (a dictionary from report id to
its subject and listing, and each subject's packed reports), then every report
token in the table's own order, kept when its report is open. A join in SQL
probed the token table's index once per report and read both tables in index
order, three times the cost of the two plain scans at a million tokens.
Tokens are chained per subject in two temporary arrays until the records are
made, subject by subject.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Unpack

from sqlalchemy import Connection, Select, func, select

from jpr_client.model import ListingStatus, Opinion, ReportStatus
from registry.domain.model import AppealStatus
from registry.store.lookup_index import (
    CATEGORY_CODE, LISTING, REPORT, ROLE_CODE, SEVERITY_CODE, encode_packed,
)
from registry.store.models import AppealRow, ListingRow, OpinionRow, ReportRow, ReportTokenRow, SubjectRow
from registry.store.token_table import CODE, LISTING_BITS, TokenTable

_ACCEPTED = ReportStatus.ACCEPTED.value
_OPEN = (_ACCEPTED, ReportStatus.SUBMITTED.value)
_LISTED = (ListingStatus.ACTIVE.value, ListingStatus.PENDING_NOTICE.value)
_TYPE_CODE = {t.value: code for t, code in CODE.items()}
_FETCH = 20_000
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)

_REPORTS = select(
    ReportRow.report_id, ReportRow.subject_id, ReportRow.listing_id, ReportRow.status, ReportRow.member_id,
    ReportRow.role, ReportRow.category, ReportRow.severity,
).where(ReportRow.status.in_(_OPEN))
_TOKENS = select(ReportTokenRow.report_id, ReportTokenRow.token, ReportTokenRow.id_type)
_LISTINGS = select(ListingRow.id, ListingRow.subject_id, ListingRow.listed_from, ListingRow.listed_until, ListingRow.quarantined_at).where(
    ListingRow.status.in_(_LISTED)
)
_APPEALED = select(AppealRow.listing_id).where(AppealRow.status == AppealStatus.PENDING.value)
_OPINIONS = (
    select(OpinionRow.listing_id, OpinionRow.opinion, func.count())
    .join(ListingRow, ListingRow.id == OpinionRow.listing_id)
    .where(ListingRow.status.in_(_LISTED))
    .group_by(OpinionRow.listing_id, OpinionRow.opinion)
)


def read_index(conn: Connection) -> tuple[TokenTable, list[bytes | None], int]:
    """The token table, the records by subject id, and how many subjects have one."""
    top = conn.execute(select(func.max(SubjectRow.id))).scalar() or 0
    places, reports = _open_reports(conn, top)
    table = TokenTable(conn.execute(select(func.count()).select_from(ReportTokenRow)).scalar() or 0)
    rows, subjects_of = table.add_reported(_stream(conn, _TOKENS, "jpr_index_tokens"), places, _TYPE_CODE)
    del places
    first = array("i", [-1]) * (top + 1)  # per subject: its latest token
    following = array("i", [-1]) * len(rows)  # per token added: the same subject's previous one
    for added, subject in enumerate(subjects_of):
        following[added], first[subject] = first[subject], added
    del subjects_of
    listings = _listings(conn)
    records: list[bytes | None] = [None] * (top + 1)
    subjects = 0
    for subject, packed in enumerate(reports):
        if packed is None:
            continue
        held, added = set(), first[subject]
        while added >= 0:
            held.add(rows[added])
            added = following[added]
        records[subject] = encode_packed(sorted(held), packed, listings.get(subject, b""))
        subjects += 1
    return table, records, subjects


def _open_reports(conn: Connection, top: int) -> tuple[dict[str, int], list[bytes | None]]:
    """Where each open report's tokens go (`subject << LISTING_BITS | listing`), and each subject's packed reports."""
    places: dict[str, int] = {}
    packed: list[bytes | None] = [None] * (top + 1)
    pack, roles, categories, severities = REPORT.pack, ROLE_CODE, CATEGORY_CODE, SEVERITY_CODE
    for report_id, subject, listing, status, member, role, category, severity in _stream(conn, _REPORTS, "jpr_index_reports"):
        accepted = status == _ACCEPTED
        listed = (listing or 0) if accepted else 0
        places[report_id] = subject << LISTING_BITS | listed
        report = pack(listed, member, accepted, roles[role], categories[category], severities[severity])
        before = packed[subject]
        packed[subject] = report if before is None else before + report
    return places, packed


def _listings(conn: Connection) -> dict[int, bytes]:
    """Open listings by subject, packed end to end."""
    appealed = set(conn.execute(_APPEALED).scalars())
    opinions = {(listing, opinion): n for listing, opinion, n in conn.execute(_OPINIONS)}
    confirmed, disputed = Opinion.CONFIRMED.value, Opinion.DISPUTED.value
    found: dict[int, bytes] = defaultdict(bytes)
    for listing, subject, listed_from, listed_until, quarantined_at in _stream(conn, _LISTINGS, "jpr_index_listings"):
        found[subject] += LISTING.pack(
            listing, _micros(listed_from), _micros(listed_until),
            opinions.get((listing, confirmed), 0), opinions.get((listing, disputed), 0),
            listing in appealed, quarantined_at is not None,
        )
    return found


def _micros(stored: Any) -> int:
    """Microseconds since the epoch of a timestamp as the driver returns it: the store keeps naive UTC
    (`UTCDateTime`), which PostgreSQL's driver gives as a datetime and SQLite's as ISO 8601 text."""
    moment = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
    return (moment - _NAIVE_EPOCH) // _MICROSECOND


def _stream(conn: Connection, statement: Select[Unpack[tuple[Any, ...]]], name: str) -> Iterator[tuple[Any, ...]]:
    """Raw rows through the driver's cursor, in the transaction `conn` holds."""
    sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor(name=name) if conn.dialect.name == "postgresql" else dbapi.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(_FETCH):
            yield from batch
    finally:
        cursor.close()
