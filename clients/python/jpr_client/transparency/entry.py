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
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785

__all__ = ["SALT_SIZE", "LogEvent", "canonical_event", "canonical_json", "commitment", "event_time"]

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


# The largest integer RFC 8785 writes exactly (an IEEE 754 double's): beyond it, JCS rounds.
_EXACT = 2**53 - 1


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON value.

    The registry's events hold strings, integers, booleans, null, lists and objects; for
    those, Python's own compact, key-sorted, non-ASCII JSON is byte for byte what JCS
    writes (the same escapes, lower-case `\\u00xx` for control characters) when every key is
    in the Basic Multilingual Plane (UTF-16 order is then code-point order) and every
    integer is exact as a double. That takes a tenth of the time of `rfc8785`, which
    writes everything else (floats, astral-plane keys, large integers) itself.
    """
    if _plain(value):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii() or not any(0xD800 <= ord(c) <= 0xDFFF for c in value)  # a lone surrogate: rfc8785 refuses it
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -_EXACT <= value <= _EXACT
    if isinstance(value, dict):
        return all(isinstance(k, str) and (k.isascii() or max(map(ord, k)) < 0x10000) and _plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


def canonical_event(event: LogEvent) -> bytes:
    """The RFC 8785 JSON bytes of the event, salt excluded."""
    return canonical_json({
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
