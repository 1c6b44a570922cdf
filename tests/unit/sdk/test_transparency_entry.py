"""A leaf commits to an event: RFC 8785 canonical JSON, one spelling of its time, a 32-byte salt."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jpr_client.transparency.entry import LogEvent, canonical_event, commitment, event_time

EVENT = LogEvent(
    seq=42, kind="report.accepted", occurred_at=datetime(2026, 3, 1, 12, 0, 5, 7, tzinfo=UTC), actor="admin:alice",
    report_id="r-1", subject_id="S3", listing_id="L9", detail={"status": "ACCEPTED", "reason": "vérifié", "term_days": 1095},
    salt=bytes(range(32)),
)


def test_the_canonical_event_is_rfc8785_json_with_sorted_keys_and_utf8() -> None:
    assert canonical_event(EVENT) == (
        '{"actor":"admin:alice","detail":{"reason":"vérifié","status":"ACCEPTED","term_days":1095},"kind":"report.accepted",'
        '"listing_id":"L9","occurred_at":"2026-03-01T12:00:05.000007Z","report_id":"r-1","seq":42,"subject_id":"S3"}'
    ).encode()


def test_the_commitment_is_the_sha256_of_the_salt_then_the_canonical_event() -> None:
    assert commitment(EVENT) == hashlib.sha256(bytes(range(32)) + canonical_event(EVENT)).digest()


def test_an_instant_has_one_spelling_whatever_its_zone() -> None:
    there = EVENT.occurred_at.astimezone(timezone(timedelta(hours=8)))
    assert event_time(there) == "2026-03-01T12:00:05.000007Z"
    assert event_time(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00.000000Z"
    with pytest.raises(ValueError, match="zone"):
        event_time(datetime(2026, 3, 1))


def test_a_salt_that_is_not_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes, not 31"):
        commitment(LogEvent(**{**EVENT.__dict__, "salt": bytes(31)}))
