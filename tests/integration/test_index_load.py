"""The lookup index read whole at start answers exactly as the index built subject by subject.

`read_index` (the load at start: two plain scans joined in Python, timestamps converted from
what the driver returns) and `_read_entries` (what catching up with the event log reads for
each touched subject, through SQLAlchemy) are two readings of the same rows. Random histories
with every kind of row the index reads are compared token by token, at several moments, on
SQLite and PostgreSQL: reports in each status, accepted reports in listings of each status,
tokens shared between subjects and repeated within one, listings in notice, active, expired
and lifted, quarantined ones, pending and decided appeals, opinions, timestamps with and
without microseconds, subjects without reports and subject ids with gaps.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, insert, select

from jpr_client.model import Category, IdentifierType, ListingStatus, Opinion, ReportStatus, Role, Severity
from registry.domain.model import AppealStatus
from registry.store.database import Database
from registry.store.index_load import read_index
from registry.store.lookup_index import LookupIndex
from registry.store.models import (
    AppealRow, ListingRow, MemberKeyRow, MemberRow, OpinionRow, ReportRow, ReportTokenRow, SubjectRow,
)
from registry.store.view import _read_entries

BASE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MEMBERS = 4
TYPES = (IdentifierType.CN_RIC, IdentifierType.PHONE, IdentifierType.EMAIL)


def moment(rng: random.Random) -> datetime:
    """Some timestamps fall on a whole second: SQLite's text then still carries `.000000`."""
    whole = BASE + timedelta(days=rng.randrange(-400, 400), seconds=rng.randrange(86_400))
    return whole if rng.random() < 0.3 else whole + timedelta(microseconds=rng.randrange(1, 1_000_000))


def populate(conn: Connection, rng: random.Random) -> list[bytes]:
    """A random history; the tokens it holds."""
    for member in range(1, MEMBERS + 1):
        conn.execute(insert(MemberRow), {"id": member, "name": f"platform-{member}", "status": "ACTIVE", "created_at": BASE})
        conn.execute(insert(MemberKeyRow), {"key_id": f"key-{member}", "member_id": member, "public_key": bytes(32), "valid_from": BASE})
    subjects = sorted(rng.sample(range(1, 120), 50))  # ids with gaps
    conn.execute(insert(SubjectRow), [{"id": s, "created_at": BASE} for s in subjects])
    pool = [rng.randbytes(64) for _ in range(45)]
    listings: dict[int, list[int]] = {}
    listing_id = 0
    for subject in subjects:
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            listing_id += 1
            since = moment(rng)
            conn.execute(insert(ListingRow), {
                "id": listing_id, "subject_id": subject, "status": rng.choice(list(ListingStatus)).value,
                "listed_from": since, "listed_until": since + timedelta(days=rng.choice((30, 365, 1825))) + timedelta(microseconds=rng.randrange(2)),
                "created_at": since, "updated_at": since, "quarantined_at": since if rng.random() < 0.2 else None,
            })
            listings.setdefault(subject, []).append(listing_id)
            if rng.random() < 0.4:
                conn.execute(insert(AppealRow), {
                    "listing_id": listing_id, "status": rng.choice(list(AppealStatus)).value, "reason": "r", "filed_at": since, "filed_by": "admin",
                })
            for member in rng.sample(range(1, MEMBERS + 1), rng.randrange(MEMBERS + 1)):
                conn.execute(insert(OpinionRow), {
                    "listing_id": listing_id, "member_id": member, "opinion": rng.choice(list(Opinion)).value, "reason": "r", "recorded_at": since,
                })
    for subject in subjects[:-3]:  # the last three subjects have no report at all
        for _ in range(rng.randrange(1, 4)):
            status = rng.choice(list(ReportStatus))
            listing = rng.choice(listings[subject]) if status is ReportStatus.ACCEPTED and subject in listings else None
            if status is ReportStatus.ACCEPTED and listing is None:
                status = ReportStatus.SUBMITTED
            report_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            member = rng.randrange(1, MEMBERS + 1)
            conn.execute(insert(ReportRow), {
                "report_id": report_id, "member_id": member, "subject_id": subject, "status": status.value,
                "role": rng.choice(list(Role)).value, "category": rng.choice(list(Category)).value,
                "severity": rng.choice(list(Severity)).value, "created_at": BASE, "received_at": BASE, "key_id": f"key-{member}",
                "envelope": b"{}", "envelope_sha256": rng.randbytes(32), "payload_sha256": rng.randbytes(32), "listing_id": listing,
            })
            for token in rng.sample(pool, rng.randrange(0, 4)):  # some reports assert no token
                kind = rng.choice(TYPES)
                conn.execute(insert(ReportTokenRow), {"report_id": report_id, "token": token, "id_type": kind.value, "strong": kind.strong})
    return pool


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_index_read_whole_answers_as_the_index_followed_subject_by_subject(database_url: str, seed: int) -> None:
    database = Database(database_url)
    try:
        with database.engine.begin() as conn:
            pool = populate(conn, random.Random(seed))
        with database.read(repeatable=True) as conn:
            loaded, followed = LookupIndex(), LookupIndex()
            loaded.replace(*read_index(conn))
            followed.apply(_read_entries(conn, list(conn.execute(select(SubjectRow.id)).scalars())))
    finally:
        database.dispose()
    assert (loaded.subjects, loaded.tokens) == (followed.subjects, followed.tokens)
    assert loaded.tokens > 20 and loaded.subjects > 20  # the history is not trivially empty
    unknown = [bytes(64), b"\xff" * 64]
    for now in (BASE - timedelta(days=500), BASE, BASE + timedelta(days=200), BASE + timedelta(days=3000)):
        for token in pool + unknown:
            assert loaded.find([token], now) == followed.find([token], now), (token.hex(), now)
        assert loaded.find(pool, now) == followed.find(pool, now)
