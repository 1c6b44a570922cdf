"""Between protobuf messages and the SDK's values: one mapping for each direction.

Proto enum values are the Python enum's name behind a prefix
(ROLE_MERCHANT <-> Role.MERCHANT); timestamps are UTC. The registry extends
`PROTOCOL_ENUMS` with its admin-only enums, so both sides map enums one way.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from jpr_client.api.jpr.v1 import registry_pb2, types_pb2
from jpr_client.model import (
    Category,
    ChangeKind,
    IdentifierType,
    ListingStatus,
    MatchReason,
    Opinion,
    ReportStatus,
    Role,
    Severity,
    Verdict,
)

__all__ = [
    "PROTOCOL_ENUMS",
    "InvalidValue",
    "ProtoEnums",
    "datetime_to_timestamp",
    "timestamp_to_datetime",
]

E = TypeVar("E", bound=enum.Enum)


class InvalidValue(ValueError):
    """A message field holds no value of its type: an unknown enum number or a timestamp out of range."""


class ProtoEnums:
    """Python enums and the proto enums they mirror, each named by its value prefix.

    Example:
        >>> PROTOCOL_ENUMS.to_proto(Role.ANCHOR) == types_pb2.ROLE_ANCHOR
        True
    """

    def __init__(self, enums: Mapping[type[enum.Enum], tuple[str, Any]]) -> None:
        self._enums = dict(enums)
        self._prefixes = {kind: prefix for kind, (prefix, _) in enums.items()}
        self._numbers = {kind: dict(proto.items()) for kind, (_, proto) in enums.items()}
        # member -> number, the reverse: every match of a lookup answer converts a dozen members.
        self._to_number: dict[enum.Enum, Any] = {
            member: self._numbers[kind][self._prefixes[kind] + member.name] for kind in enums for member in kind
        }
        # number -> member, built once: batches convert thousands of tokens per call.
        self._members: dict[type[enum.Enum], dict[int, Any]] = {
            kind: {n: kind.__members__[name.removeprefix(prefix)] for name, n in self._numbers[kind].items() if n != 0}
            for kind, prefix in self._prefixes.items()
        }

    def including(self, enums: Mapping[type[enum.Enum], tuple[str, Any]]) -> ProtoEnums:
        """These enums and `enums` besides (the registry adds its admin-only ones)."""
        return ProtoEnums({**self._enums, **enums})

    def members(self, kind: type[E]) -> Mapping[int, E]:
        """Proto number -> member (unspecified left out), for loops that check many values."""
        return self._members[kind]

    def from_proto(self, kind: type[E], number: int, field: str) -> E:
        """The member of a proto enum number; unknown or unspecified raises `InvalidValue` naming `field`."""
        member: E | None = self._members[kind].get(number)
        if member is None:
            allowed = ", ".join(self._prefixes[kind] + m for m in kind.__members__)
            raise InvalidValue(f"{field}: {number} is not a known value; use one of {allowed}")
        return member

    def to_proto(self, value: enum.Enum) -> Any:
        """The proto enum number (typed Any: each proto enum has its own ValueType)."""
        return self._to_number[value]


PROTOCOL_ENUMS = ProtoEnums(
    {
        Role: ("ROLE_", types_pb2.Role),
        Category: ("CATEGORY_", types_pb2.Category),
        Severity: ("SEVERITY_", types_pb2.Severity),
        IdentifierType: ("IDENTIFIER_TYPE_", types_pb2.IdentifierType),
        ReportStatus: ("REPORT_STATUS_", types_pb2.ReportStatus),
        ListingStatus: ("LISTING_STATUS_", types_pb2.ListingStatus),
        Verdict: ("VERDICT_", registry_pb2.Verdict),
        MatchReason: ("MATCH_REASON_", registry_pb2.MatchReason),
        ChangeKind: ("CHANGE_KIND_", registry_pb2.ChangeKind),
        Opinion: ("OPINION_", types_pb2.Opinion),
    }
)

_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_to_datetime(stamp: Timestamp, field: str = "timestamp") -> datetime:
    """UTC datetime of a Timestamp; out of range (RFC 3339 years 1-9999) raises `InvalidValue`."""
    if not _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS or not 0 <= stamp.nanos <= 999_999_999:
        raise InvalidValue(f"{field}: seconds={stamp.seconds} nanos={stamp.nanos} is not a valid timestamp (years 1-9999)")
    return _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


def datetime_to_timestamp(value: datetime | None) -> Timestamp | None:
    """The Timestamp of a datetime, None for None."""
    if value is None:
        return None
    # Timestamp.FromDatetime's arithmetic (a naive datetime is UTC), without its struct_time: a lookup answer holds two per match.
    delta = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise InvalidValue(f"{value.isoformat()} is not a valid timestamp (years 1-9999 in UTC)")
    return Timestamp(seconds=seconds, nanos=delta.microseconds * 1000)
