"""Between protobuf messages and domain values: one mapping for each direction.

Proto enum values are the domain enum's name behind a prefix
(ROLE_MERCHANT <-> Role.MERCHANT); timestamps are UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from registry.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from registry.domain.audit import AccessFlag
from registry.domain.errors import InvalidArgument
from registry.domain.model import (
    AppealStatus,
    Category,
    ChangeKind,
    IdentifierType,
    LiftGrounds,
    ListingStatus,
    MatchReason,
    MemberStatus,
    Opinion,
    ReportStatus,
    Role,
    Severity,
    Verdict,
)

E = TypeVar("E", bound=enum.Enum)

PREFIXES: dict[type[enum.Enum], str] = {
    Role: "ROLE_",
    Category: "CATEGORY_",
    Severity: "SEVERITY_",
    IdentifierType: "IDENTIFIER_TYPE_",
    ReportStatus: "REPORT_STATUS_",
    ListingStatus: "LISTING_STATUS_",
    Verdict: "VERDICT_",
    MatchReason: "MATCH_REASON_",
    MemberStatus: "MEMBER_STATUS_",
    AppealStatus: "APPEAL_STATUS_",
    LiftGrounds: "LIFT_GROUNDS_",
    ChangeKind: "CHANGE_KIND_",
    Opinion: "OPINION_",
    AccessFlag: "ACCESS_FLAG_",
}


_PROTO_ENUMS: dict[type[enum.Enum], Any] = {
    Role: types_pb2.Role,
    Category: types_pb2.Category,
    Severity: types_pb2.Severity,
    IdentifierType: types_pb2.IdentifierType,
    ReportStatus: types_pb2.ReportStatus,
    ListingStatus: types_pb2.ListingStatus,
    Verdict: registry_pb2.Verdict,
    MatchReason: registry_pb2.MatchReason,
    MemberStatus: admin_pb2.MemberStatus,
    AppealStatus: admin_pb2.AppealStatus,
    LiftGrounds: admin_pb2.LiftGrounds,
    ChangeKind: registry_pb2.ChangeKind,
    Opinion: types_pb2.Opinion,
    AccessFlag: admin_pb2.AccessFlag,
}
_NAMES = {kind: {v: k for k, v in proto.items()} for kind, proto in _PROTO_ENUMS.items()}
_NUMBERS = {kind: dict(proto.items()) for kind, proto in _PROTO_ENUMS.items()}
# number -> domain member, built once: batches convert thousands of tokens per call.
_MEMBERS: dict[type[enum.Enum], dict[int, Any]] = {
    kind: {n: kind.__members__[name.removeprefix(PREFIXES[kind])] for n, name in names.items() if n != 0}
    for kind, names in _NAMES.items()
}


def enum_members(kind: type[E]) -> Mapping[int, E]:
    """Proto number -> domain member (unspecified left out), for loops that check many values."""
    return _MEMBERS[kind]


def enum_from_proto(kind: type[E], number: int, field: str) -> E:
    """The domain value of a proto enum number; unknown or unspecified is INVALID_ARGUMENT."""
    member: E | None = _MEMBERS[kind].get(number)
    if member is None:
        allowed = ", ".join(PREFIXES[kind] + m for m in kind.__members__)
        raise InvalidArgument(f"{field}: {number} is not a known value; use one of {allowed}")
    return member


def enum_to_proto(value: enum.Enum) -> Any:
    """The proto enum number (typed Any: each proto enum has its own ValueType)."""
    return _NUMBERS[type(value)][PREFIXES[type(value)] + value.name]


_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z


def timestamp_to_datetime(stamp: Timestamp, field: str = "timestamp") -> datetime:
    """UTC datetime of a Timestamp; out of range (RFC 3339 years 1-9999) is INVALID_ARGUMENT."""
    if not _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS or not 0 <= stamp.nanos <= 999_999_999:
        raise InvalidArgument(f"{field}: seconds={stamp.seconds} nanos={stamp.nanos} is not a valid timestamp (years 1-9999)")
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


def datetime_to_timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
