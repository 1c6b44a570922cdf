"""Building real signed report payloads for tests, including malformed ones."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from jpr_client import Credentials, RegistryClient, normalize
from jpr_client.api.jpr.v1 import types_pb2
from jpr_client.crypto import dsse

TYPES = {
    "cn_ric": types_pb2.IDENTIFIER_TYPE_CN_RIC,
    "cn_uscc": types_pb2.IDENTIFIER_TYPE_CN_USCC,
    "passport": types_pb2.IDENTIFIER_TYPE_PASSPORT,
    "phone": types_pb2.IDENTIFIER_TYPE_PHONE,
    "email": types_pb2.IDENTIFIER_TYPE_EMAIL,
    "platform_account": types_pb2.IDENTIFIER_TYPE_PLATFORM_ACCOUNT,
}


def now_stamp(at: datetime | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime((at or datetime.now(UTC)).replace(microsecond=0))
    return stamp


def payload(client: RegistryClient, identifiers: list[tuple[str, str]], **fields: Any) -> types_pb2.ReportPayload:
    """A valid payload from the client's member, tokens evaluated by the registry; `fields` override."""
    tokens = client.tokenize([normalize(kind, value) for kind, value in identifiers])
    values: dict[str, Any] = {
        "report_id": str(uuid.uuid4()),
        "reporter": client.credentials.name,
        "registry": client.credentials.registry,
        "created_at": now_stamp(),
        "role": types_pb2.ROLE_MERCHANT,
        "identifiers": [types_pb2.IdentifierToken(type=TYPES[t.type.value], token=t.value) for t in tokens],
        "category": types_pb2.CATEGORY_FRAUD,
        "severity": types_pb2.SEVERITY_SERIOUS,
        "platform_action": "account banned",
        "summary": "refund fraud across 40 orders",
        "evidence_sha256": hashlib.sha256(b"evidence").digest(),
    }
    values.update(fields)
    return types_pb2.ReportPayload(**values)


def sign(credentials: Credentials, message: types_pb2.ReportPayload | bytes, payload_type: str = dsse.REPORT_PAYLOAD_TYPE) -> bytes:
    body = message if isinstance(message, bytes) else message.SerializeToString(deterministic=True)
    return dsse.sign_envelope(credentials.signing_seed, payload_type, body)


def payload_message(credentials: Credentials, tokens: list[tuple[str, bytes]]) -> types_pb2.ReportPayload:
    """A valid payload from already computed tokens (no registry call)."""
    return types_pb2.ReportPayload(
        report_id=str(uuid.uuid4()),
        reporter=credentials.name,
        registry=credentials.registry,
        created_at=now_stamp(),
        role=types_pb2.ROLE_MERCHANT,
        identifiers=[types_pb2.IdentifierToken(type=TYPES[kind], token=token) for kind, token in tokens],
        category=types_pb2.CATEGORY_FRAUD,
        severity=types_pb2.SEVERITY_SERIOUS,
        platform_action="account banned",
        summary="refund fraud",
        evidence_sha256=hashlib.sha256(b"evidence").digest(),
    )
