"""The lookup index read whole at start: one streaming statement per table, little Python per row.

Ten million tokens must be ready within a minute, about 6 µs a token all in,
so the token and report rows are read through the driver's own cursor (a
server-side cursor on PostgreSQL, `fetchmany` on SQLite) rather than as
SQLAlchemy rows, inside the caller's snapshot transaction. Tokens arrive in no
particular order; the pairs (subject, row) are chained per subject in two
temporary arrays until the reports, read in subject order, make each
subject's record.
"""

from __future__ import annotations

import itertools
from array import array
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Unpack

from sqlalchemy import Connection, Select, func, select

from jpr_client.model import ListingStatus, Opinion, ReportStatus
from registry.domain.model import AppealStatus
from registry.store.lookup_index import (
    CATEGORY_CODE, LISTING, REPORT, ROLE_CODE, SEVERITY_CODE, encode, micros,
)
from registry.store.models import AppealRow, ListingRow, OpinionRow, ReportRow, ReportTokenRow, SubjectRow
from registry.store.token_table import CODE, TokenTable

_ACCEPTED = ReportStatus.ACCEPTED.value
_OPEN = (_ACCEPTED, ReportStatus.SUBMITTED.value)
_LISTED = (ListingStatus.ACTIVE.value, ListingStatus.PENDING_NOTICE.value)
_TYPE_CODE = {t.value: code for t, code in CODE.items()}
_FETCH = 20_000

_TOKENS = (
    select(ReportRow.subject_id, ReportRow.listing_id, ReportRow.status, ReportTokenRow.token, ReportTokenRow.id_type)
    .join(ReportTokenRow, ReportTokenRow.report_id == ReportRow.report_id)
    .where(ReportRow.status.in_(_OPEN))
)
_REPORTS = (
    select(ReportRow.subject_id, ReportRow.listing_id, ReportRow.status, ReportRow.member_id, ReportRow.role,
           ReportRow.category, ReportRow.severity)
    .where(ReportRow.status.in_(_OPEN))
    .order_by(ReportRow.subject_id)
)
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
    table = TokenTable(conn.execute(select(func.count()).select_from(ReportTokenRow)).scalar() or 0)
    first = array("i", [-1]) * (top + 1)  # per subject: its latest (subject, row) pair
    following, pair_rows = array("i"), array("i")  # per pair: the subject's previous pair, the row
    add, codes = table.add_coded, _TYPE_CODE
    for subject, listing, status, token, id_type in _stream(conn, _TOKENS, "jpr_index_tokens"):
        pair_rows.append(add(bytes(token), subject, codes[id_type], listing if status == _ACCEPTED else 0))
        following.append(first[subject])
        first[subject] = len(following) - 1
    listings = _listings(conn)
    records: list[bytes | None] = [None] * (top + 1)
    subjects = 0
    for subject, reports in itertools.groupby(_stream(conn, _REPORTS, "jpr_index_reports"), key=lambda row: row[0]):
        rows, pair = set(), first[subject]
        while pair >= 0:
            rows.add(pair_rows[pair])
            pair = following[pair]
        records[subject] = encode(sorted(rows), [_report(row) for row in reports], listings.get(subject, ()))
        subjects += 1
    return table, records, subjects


def _report(row: tuple[Any, ...]) -> bytes:
    _, listing, status, member, role, category, severity = row
    accepted = status == _ACCEPTED
    return REPORT.pack(
        listing if accepted and listing else 0, member, accepted, ROLE_CODE[role], CATEGORY_CODE[category], SEVERITY_CODE[severity]
    )


def _listings(conn: Connection) -> dict[int, list[bytes]]:
    """Open listings by subject, packed (a tenth of the subjects or so: SQLAlchemy rows are fine)."""
    appealed = set(conn.execute(_APPEALED).scalars())
    opinions = {(listing, opinion): n for listing, opinion, n in conn.execute(_OPINIONS)}
    found: dict[int, list[bytes]] = defaultdict(list)
    for row in conn.execute(_LISTINGS):
        found[row.subject_id].append(
            LISTING.pack(
                row.id, micros(row.listed_from), micros(row.listed_until),
                opinions.get((row.id, Opinion.CONFIRMED.value), 0), opinions.get((row.id, Opinion.DISPUTED.value), 0),
                row.id in appealed, row.quarantined_at is not None,
            )
        )
    return found


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
