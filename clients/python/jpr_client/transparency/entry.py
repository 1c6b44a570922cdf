"""A log entry: one registry event, and the leaf that commits to it without revealing it.

The leaf data of event `e` is `SHA-256(e.salt || canonical_event(e))`: 32 bytes that
prove nothing about the event to whoever lacks its salt, and bind it completely for
whoever holds both (a member reading its own events, an auditor with the database).
`canonical_event` is RFC 8785 JSON, so that a client in any language computes the
same bytes (docs/protocol.md, "Transparency log").

Example:

    >>> from datetime import datetime, UTC
    >>> e = LogEvent(seq=1, kind="report.submitted", occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ...              actor="member:acme", report_id="r1", subject_id="S1", listing_id="", detail={},
    ...              salt=bytes(32))
    >>> canonical_event(e)[:40]
    b'{"actor":"member:acme","detail":{},"kind'
    >>> len(commitment(e))
    32
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785

__all__ = ["SALT_SIZE", "LogEvent", "canonical_event", "commitment", "event_time"]

SALT_SIZE = 32


@dataclass(frozen=True)
class LogEvent:
    """One event as the log commits to it: public refs ("S42", "L7", "" when none), the detail as stored."""

    seq: int
    kind: str
    occurred_at: datetime
    actor: str
    report_id: str
    subject_id: str
    listing_id: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    salt: bytes = b""


def event_time(at: datetime) -> str:
    """RFC 3339 in UTC with exactly 6 fractional digits and "Z": one spelling per instant."""
    if at.tzinfo is None:
        raise ValueError("an event's time must carry its zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_event(event: LogEvent) -> bytes:
    """The RFC 8785 JSON bytes of the event, salt excluded."""
    return rfc8785.dumps({
        "seq": event.seq,
        "kind": event.kind,
        "occurred_at": event_time(event.occurred_at),
        "actor": event.actor,
        "report_id": event.report_id,
        "subject_id": event.subject_id,
        "listing_id": event.listing_id,
        "detail": dict(event.detail),
    })


def commitment(event: LogEvent) -> bytes:
    """The leaf data: SHA-256(salt || canonical_event). Refuses a salt that is not 32 bytes."""
    if len(event.salt) != SALT_SIZE:
        raise ValueError(f"an event's salt is {SALT_SIZE} bytes, not {len(event.salt)}")
    return hashlib.sha256(event.salt + canonical_event(event)).digest()
