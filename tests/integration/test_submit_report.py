"""SubmitReport: every check, in order, with its own status; nothing stored on failure."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import func, select

from jpr_client import Credentials, RPCError, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from jpr_client.crypto import dsse
from registry.store.models import EventRow, ReportRow, SubjectRow
from tests.conftest import AdminClient, Registry
from tests.integration.reporting import now_stamp, payload, sign

RIC = ("cn_ric", "11010519491231002X")
PHONE = ("phone", "13800138000")


@pytest.fixture
def platform_a(member: Callable[[str], Credentials]) -> Credentials:
    return member("platform-a")


@pytest.fixture
def client(platform_a: Credentials) -> Iterator[RegistryClient]:
    with RegistryClient(platform_a) as client:
        yield client


def submit(client: RegistryClient, envelope: bytes) -> registry_pb2.ReportReceipt:
    stub = client._stub  # the raw call, so the test sees exactly what any gRPC client sees
    try:
        response: registry_pb2.ReportReceipt = stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=10)
        return response
    except grpc.RpcError as error:
        raise RPCError(error.code(), error.details() or "", "SubmitReport") from None


def refused(client: RegistryClient, envelope: bytes, status: grpc.StatusCode, words: str) -> None:
    with pytest.raises(RPCError) as caught:
        submit(client, envelope)
    assert caught.value.status is status, caught.value.message
    assert words in caught.value.message


def stored_rows(registry: Registry) -> tuple[int, int, int]:
    with registry.database.read() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(table)).scalar_one() for table in (ReportRow, SubjectRow, EventRow)
        )


def test_valid_report_is_stored_with_its_envelope_verbatim_and_re_verifies(
    registry: Registry, client: RegistryClient, platform_a: Credentials
) -> None:
    envelope = sign(platform_a, payload(client, [RIC, PHONE]))
    receipt = submit(client, envelope)
    report = client.get_report(receipt.report_id)
    assert report.envelope == envelope
    parsed = dsse.parse_envelope(report.envelope)
    public = dsse.public_key(platform_a.signing_seed)
    assert dsse.verify(public, parsed.payload_type, parsed.payload, parsed.signatures[0].sig)
    assert parsed.signatures[0].keyid == platform_a.key_id


def test_resubmitting_same_envelope_is_idempotent(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    envelope = sign(platform_a, payload(client, [RIC]))
    first, second = submit(client, envelope), submit(client, envelope)
    assert first == second
    assert stored_rows(registry)[0] == 1


def test_other_bytes_under_a_used_report_id_are_already_exists(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    original = payload(client, [RIC])
    submit(client, sign(platform_a, original))
    changed = payload(client, [RIC], report_id=original.report_id, summary="something else")
    refused(client, sign(platform_a, changed), grpc.StatusCode.ALREADY_EXISTS, original.report_id)


@pytest.mark.parametrize(
    ("envelope", "words"),
    [
        (b"not json", "not JSON"),
        (b"[]", "object"),
        (json.dumps({"payloadType": dsse.REPORT_PAYLOAD_TYPE, "signatures": []}).encode(), "payload"),
        (b"{" + b" " * dsse.MAX_ENVELOPE_BYTES + b"}", "bytes"),
    ],
)
def test_malformed_envelopes_are_invalid_argument(registry: Registry, client: RegistryClient, envelope: bytes, words: str) -> None:
    before = stored_rows(registry)  # the member's and the certificates' events
    refused(client, envelope, grpc.StatusCode.INVALID_ARGUMENT, words)
    assert stored_rows(registry) == before and before[:2] == (0, 0)


def test_wrong_payload_type_is_refused_before_the_signature(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    envelope = json.loads(sign(platform_a, payload(client, [RIC]), payload_type="application/json"))
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()  # also a bad signature
    refused(client, json.dumps(envelope).encode(), grpc.StatusCode.INVALID_ARGUMENT, "payloadType")


def test_another_members_key_is_permission_denied(
    registry: Registry, client: RegistryClient, member: Callable[[str], Credentials]
) -> None:
    other = member("platform-b")
    refused(client, sign(other, payload(client, [RIC])), grpc.StatusCode.PERMISSION_DENIED, other.key_id)


def test_bad_signature_is_unauthenticated_even_when_the_payload_is_garbage(
    registry: Registry, client: RegistryClient, platform_a: Credentials
) -> None:
    envelope = json.loads(sign(platform_a, b"\xff\xff garbage"))
    envelope["payload"] = base64.b64encode(b"\xff\xfe other garbage").decode()
    refused(client, json.dumps(envelope).encode(), grpc.StatusCode.UNAUTHENTICATED, "signature does not verify")
    assert stored_rows(registry)[0] == 0


def test_signed_garbage_payload_is_invalid_argument(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    refused(client, sign(platform_a, b"\xff\xff\xff"), grpc.StatusCode.INVALID_ARGUMENT, "jpr.v1.ReportPayload")


def test_reporter_other_than_the_caller_is_permission_denied(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    refused(client, sign(platform_a, payload(client, [RIC], reporter="platform-z")), grpc.StatusCode.PERMISSION_DENIED, "platform-z")


def test_payload_for_another_registry_is_refused(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    refused(client, sign(platform_a, payload(client, [RIC], registry="other-registry")), grpc.StatusCode.INVALID_ARGUMENT, "cross-registry")


def test_report_without_a_strong_identifier_is_refused(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    refused(client, sign(platform_a, payload(client, [PHONE])), grpc.StatusCode.INVALID_ARGUMENT, "strong identifier")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"category": 99}, "payload.category"),
        ({"severity": 0}, "payload.severity"),
        ({"role": 42}, "payload.role"),
        ({"summary": "x" * 2001}, "payload.summary"),
        ({"platform_action": "y" * 201}, "payload.platform_action"),
        ({"display_name": "z" * 65}, "payload.display_name"),
        ({"evidence_sha256": b"short"}, "evidence_sha256"),
        ({"report_id": "not-a-uuid"}, "payload.report_id"),
    ],
)
def test_unknown_enums_and_oversized_fields_are_invalid_argument(
    registry: Registry, client: RegistryClient, platform_a: Credentials, fields: dict[str, object], words: str
) -> None:
    refused(client, sign(platform_a, payload(client, [RIC], **fields)), grpc.StatusCode.INVALID_ARGUMENT, words)
    assert stored_rows(registry)[0] == 0


def test_bad_tokens_are_invalid_argument(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    message = payload(client, [RIC])
    message.identifiers.add(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=b"raw phone 13800138000")
    refused(client, sign(platform_a, message), grpc.StatusCode.INVALID_ARGUMENT, "identifiers[1].token")


def test_report_created_before_the_key_was_valid_is_unauthenticated(
    registry: Registry, client: RegistryClient, platform_a: Credentials
) -> None:
    old = now_stamp(datetime.now(UTC) - timedelta(days=1))
    refused(client, sign(platform_a, payload(client, [RIC], created_at=old)), grpc.StatusCode.UNAUTHENTICATED, "not valid at created_at")


def test_revoked_keys_new_envelopes_are_refused(
    registry: Registry, admin: AdminClient, client: RegistryClient, platform_a: Credentials
) -> None:
    admin.call("RevokeMemberKey", admin_pb2.RevokeMemberKeyRequest(member="platform-a", key_id=platform_a.key_id))
    refused(client, sign(platform_a, payload(client, [RIC])), grpc.StatusCode.UNAUTHENTICATED, "revoked")


def test_checks_run_in_the_documented_order(registry: Registry, client: RegistryClient, platform_a: Credentials, member: Callable[[str], Credentials]) -> None:
    """Each envelope below breaks two rules; the earlier check must be the one reported."""
    other = member("platform-b")
    bad_fields = {"category": 99, "summary": "x" * 3000}
    cases = [
        (sign(other, payload(client, [RIC], reporter="platform-z", **bad_fields)), grpc.StatusCode.PERMISSION_DENIED, other.key_id),
        (sign(platform_a, payload(client, [RIC], reporter="platform-z", **bad_fields)), grpc.StatusCode.PERMISSION_DENIED, "payload.reporter"),
        (sign(platform_a, payload(client, [RIC], registry="elsewhere", **bad_fields)), grpc.StatusCode.INVALID_ARGUMENT, "payload.registry"),
        (sign(platform_a, payload(client, [PHONE], **bad_fields)), grpc.StatusCode.INVALID_ARGUMENT, "strong identifier"),
        (sign(platform_a, payload(client, [RIC], **bad_fields)), grpc.StatusCode.INVALID_ARGUMENT, "payload.category"),
    ]
    for envelope, status, words in cases:
        refused(client, envelope, status, words)
    assert stored_rows(registry)[0] == 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"created_at": now_stamp().__class__(seconds=2**40)}, "payload.created_at"),
        ({"created_at": now_stamp().__class__(seconds=1, nanos=-5)}, "payload.created_at"),
        ({"occurred_at": now_stamp().__class__(seconds=2**62)}, "payload.occurred_at"),
        ({"occurred_at": now_stamp(datetime.now(UTC) + timedelta(days=30))}, "in the future"),
    ],
)
def test_impossible_timestamps_are_invalid_argument(
    registry: Registry, client: RegistryClient, platform_a: Credentials, fields: dict[str, object], words: str
) -> None:
    refused(client, sign(platform_a, payload(client, [RIC], **fields)), grpc.StatusCode.INVALID_ARGUMENT, words)


def test_a_token_keeps_the_type_it_was_first_reported_with(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    submit(client, sign(platform_a, payload(client, [RIC, PHONE])))
    relabelled = payload(client, [RIC, PHONE])
    relabelled.identifiers[1].type = types_pb2.IDENTIFIER_TYPE_PASSPORT
    refused(client, sign(platform_a, relabelled), grpc.StatusCode.INVALID_ARGUMENT, "already registered as phone")


def test_resending_a_stored_report_after_its_key_was_revoked_returns_its_receipt(
    registry: Registry, admin: AdminClient, client: RegistryClient, platform_a: Credentials
) -> None:
    envelope = sign(platform_a, payload(client, [RIC]))
    first = submit(client, envelope)
    admin.call("RevokeMemberKey", admin_pb2.RevokeMemberKeyRequest(member="platform-a", key_id=platform_a.key_id))
    assert submit(client, envelope) == first
