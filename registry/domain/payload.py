"""Decoding and validating a verified report payload."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import NoReturn, TypeVar

from google.protobuf.message import DecodeError

from jpr_client.api.jpr.v1 import types_pb2
from jpr_client.crypto import dsse
from jpr_client.model import Category, IdentifierType, Role, Severity, Token
from jpr_client.quoting import quoted
from registry.convert import enum_from_proto, enum_members, enum_to_proto, timestamp_to_datetime
from registry.domain.errors import InvalidArgument
from registry.domain.model import ListingReport, ReportPayload

TOKEN_SIZE = 64
MAX_IDENTIFIERS = 32
TEXT_LIMITS = {"platform_action": 200, "summary": 2000, "display_name": 64}



M = TypeVar("M", types_pb2.ReportPayload, types_pb2.RetractionPayload)


def parse_payload(data: bytes) -> types_pb2.ReportPayload:
    """The signed bytes as a message; nothing in it is trusted or checked yet."""
    return _parse(types_pb2.ReportPayload(), data)


def parse_retraction(data: bytes) -> types_pb2.RetractionPayload:
    return _parse(types_pb2.RetractionPayload(), data)


def _parse(message: M, data: bytes) -> M:
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise InvalidArgument(f"payload is not a serialized {message.DESCRIPTOR.full_name}: {error}") from error
    return message


def listing_report(report_id: str, reporter: str, envelope: bytes) -> ListingReport:
    """What a stored report's signed payload says about its subject; its tokens and evidence digest stay inside."""
    message = parse_payload(dsse.parse_envelope(envelope).payload)
    return ListingReport(report_id, reporter, message.display_name, message.summary, message.platform_action)


def created_at(message: types_pb2.ReportPayload | types_pb2.RetractionPayload) -> datetime:
    if not message.HasField("created_at"):
        raise InvalidArgument("payload.created_at is required")
    return timestamp_to_datetime(message.created_at, "payload.created_at")


def declares_strong(message: types_pb2.ReportPayload) -> bool:
    strong = {enum_to_proto(t) for t in IdentifierType if t.strong}
    return any(item.type in strong for item in message.identifiers)


def validate_payload(message: types_pb2.ReportPayload) -> ReportPayload:
    """Every field checked; each problem is INVALID_ARGUMENT naming the field."""
    return ReportPayload(
        report_id=_report_id(message.report_id),
        reporter=message.reporter,
        registry=message.registry,
        created_at=created_at(message),
        role=enum_from_proto(Role, message.role, "payload.role"),
        tokens=decode_tokens(message.identifiers, "payload.identifiers"),
        category=enum_from_proto(Category, message.category, "payload.category"),
        severity=enum_from_proto(Severity, message.severity, "payload.severity"),
        occurred_at=timestamp_to_datetime(message.occurred_at, "payload.occurred_at") if message.HasField("occurred_at") else None,
        platform_action=_text(message, "platform_action"),
        summary=_text(message, "summary"),
        display_name=_text(message, "display_name"),
        evidence_sha256=_digest(message.evidence_sha256),
    )


def decode_tokens(identifiers: Iterable[types_pb2.IdentifierToken], field: str) -> tuple[Token, ...]:
    """Validated tokens of a report: known types, 64 bytes, no repeats."""
    items = list(identifiers)
    types = enum_members(IdentifierType)
    (values,) = token_values([items], lambda _: field)
    return tuple(Token(type=types[item.type], value=value) for item, value in zip(items, values, strict=True))


def token_values(lists: Iterable[Sequence[types_pb2.IdentifierToken]], field: Callable[[int], str]) -> list[list[bytes]]:
    """The values of each list's validated tokens (known types, 64 bytes, no repeats), in order;
    `field(i)` names list i in a refusal.

    What applicants' tokens become: a lookup matches on values alone (the types that count are
    the ones the signed reports declared), so no `Token` is built for each of the thousands of
    tokens of a batch. One loop for the whole batch, its checks inlined, messages built only for a refusal.
    """
    types = enum_members(IdentifierType)
    decoded: list[list[bytes]] = []
    for index, items in enumerate(lists):
        if len(items) > MAX_IDENTIFIERS:
            raise InvalidArgument(f"{field(index)}: {len(items)} identifiers, at most {MAX_IDENTIFIERS} are allowed")
        values: list[bytes] = []
        for item in items:
            value = item.token
            if item.type not in types or len(value) != TOKEN_SIZE or value in values:  # at most 32: a list beats a set
                _refuse_token(item, f"{field(index)}[{len(values)}]")
            values.append(value)
        decoded.append(values)
    return decoded


def _refuse_token(item: types_pb2.IdentifierToken, where: str) -> NoReturn:
    enum_from_proto(IdentifierType, item.type, f"{where}.type")  # raises for an unknown type
    if len(item.token) != TOKEN_SIZE:
        raise InvalidArgument(f"{where}.token: {len(item.token)} bytes, a token is {TOKEN_SIZE} bytes (the OPRF output)")
    raise InvalidArgument(f"{where}.token: the same token appears twice")


def _report_id(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError as error:
        raise InvalidArgument(f"payload.report_id: {quoted(value)} is not a UUID") from error
    if str(parsed) != value:
        raise InvalidArgument(f"payload.report_id: write the UUID in canonical lower-case form, {parsed}")
    return value


def _text(message: types_pb2.ReportPayload, field: str) -> str:
    value: str = getattr(message, field)
    limit = TEXT_LIMITS[field]
    if len(value) > limit:
        raise InvalidArgument(f"payload.{field}: {len(value)} characters, at most {limit} are allowed")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidArgument(f"payload.{field}: control characters are not allowed")
    return value


def _digest(value: bytes) -> bytes:
    if len(value) != 32:
        raise InvalidArgument(f"payload.evidence_sha256: {len(value)} bytes, a SHA-256 digest is 32 bytes")
    return bytes(value)

