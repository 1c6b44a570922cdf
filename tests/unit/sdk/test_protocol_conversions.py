"""jpr_client.protocol's conversions: enum members to proto numbers and datetimes to Timestamps,
each checked against the definition it shortcuts (the proto enum's own names, protobuf's FromDatetime)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from jpr_client.protocol import PROTOCOL_ENUMS, InvalidValue, datetime_to_timestamp


@pytest.mark.parametrize("kind", list(PROTOCOL_ENUMS._enums), ids=lambda kind: kind.__name__)
def test_every_member_converts_to_the_proto_number_of_its_prefixed_name_and_back(kind):
    prefix, proto = PROTOCOL_ENUMS._enums[kind]
    for member in kind:
        number = PROTOCOL_ENUMS.to_proto(member)
        assert number == proto.Value(prefix + member.name)
        assert PROTOCOL_ENUMS.from_proto(kind, number, "field") is member


def _from_datetime(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


_MOMENTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))


@given(_MOMENTS, st.sampled_from([None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]))
def test_a_datetime_becomes_the_timestamp_protobuf_gives_it(moment, zone):
    """Aware datetimes in any offset, and naive ones (taken as UTC, as FromDatetime takes them), to the microsecond."""
    value = moment if zone is None else moment.replace(tzinfo=zone)
    assert datetime_to_timestamp(value) == _from_datetime(value)


@pytest.mark.parametrize("value", [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # before the epoch: negative seconds, positive nanos
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
])
def test_the_edges_of_the_range_convert_exactly(value):
    assert datetime_to_timestamp(value) == _from_datetime(value)


def test_a_moment_outside_years_1_to_9999_in_utc_is_refused_by_name():
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # 0000-12-31T23:00Z
    with pytest.raises(InvalidValue, match="0001-01-01T00:00:00[+]01:00 is not a valid timestamp"):
        datetime_to_timestamp(early)


def test_none_stays_none():
    assert datetime_to_timestamp(None) is None
