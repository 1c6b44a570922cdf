"""The SDK's protocol mapping with the registry's admin-only enums, refusing bad values as INVALID_ARGUMENT.

The mapping itself is `jpr_client.protocol`, shared with every member; this
module adds the enums only admins see and turns `InvalidValue` into the
registry's `InvalidArgument`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from jpr_client import protocol
from jpr_client.api.jpr.v1 import admin_pb2
from registry.domain.audit import AccessFlag
from registry.domain.errors import InvalidArgument
from registry.domain.model import AppealStatus, ImportOutcome, LiftGrounds, MemberStatus

E = TypeVar("E", bound=enum.Enum)

ENUMS = protocol.PROTOCOL_ENUMS.including(
    {
        MemberStatus: ("MEMBER_STATUS_", admin_pb2.MemberStatus),
        AppealStatus: ("APPEAL_STATUS_", admin_pb2.AppealStatus),
        LiftGrounds: ("LIFT_GROUNDS_", admin_pb2.LiftGrounds),
        AccessFlag: ("ACCESS_FLAG_", admin_pb2.AccessFlag),
        ImportOutcome: ("IMPORT_OUTCOME_", admin_pb2.ImportOutcome),
    }
)


def enum_members(kind: type[E]) -> Mapping[int, E]:
    """Proto number -> domain member (unspecified left out), for loops that check many values."""
    return ENUMS.members(kind)


def enum_from_proto(kind: type[E], number: int, field: str) -> E:
    """The domain value of a proto enum number; unknown or unspecified is INVALID_ARGUMENT."""
    try:
        return ENUMS.from_proto(kind, number, field)
    except protocol.InvalidValue as error:
        raise InvalidArgument(str(error)) from None


def enum_to_proto(value: enum.Enum) -> Any:
    """The proto enum number (typed Any: each proto enum has its own ValueType)."""
    return ENUMS.to_proto(value)


def timestamp_to_datetime(stamp: Timestamp, field: str = "timestamp") -> datetime:
    """UTC datetime of a Timestamp; out of range (RFC 3339 years 1-9999) is INVALID_ARGUMENT."""
    try:
        return protocol.timestamp_to_datetime(stamp, field)
    except protocol.InvalidValue as error:
        raise InvalidArgument(str(error)) from None
