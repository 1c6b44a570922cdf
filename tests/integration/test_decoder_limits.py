"""Decoder limits are refusals, not faults: deep nesting, long numbers, long fields, other scripts' digits.

Every case answers its documented status with a short message, stores nothing
and logs no traceback.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable

import grpc
import pytest

from jpr_client import Credentials, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from jpr_client.crypto import dsse
from tests.conftest import AdminClient, Registry
from tests.integration.reporting import now_stamp, payload
from tests.integration.test_submit_report import RIC, client, platform_a, stored_rows  # noqa: F401 (fixtures)

MAX_DETAILS = 500
LONG = 60_000
# The longest text a signed payload can carry: its base64 must fit the 65,536-byte envelope.
LONG_IN_PAYLOAD = 45_000
METHODS = ("SubmitReport", "RetractReport")
PAYLOAD_TYPES = {"SubmitReport": dsse.REPORT_PAYLOAD_TYPE, "RetractReport": dsse.RETRACTION_PAYLOAD_TYPE}
GROUP_START, GROUP_END = bytes([(15 << 3) | 3]), bytes([(15 << 3) | 4])  # an unknown field 15 as a group


def envelope_json(body: bytes = b"payload", payload_type: str = dsse.REPORT_PAYLOAD_TYPE, keyid: str = "ed25519:00") -> dict[str, object]:
    return {
        "payload": base64.b64encode(body).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(bytes(64)).decode()}],
    }


def with_raw(document: dict[str, object], name: str, raw: str) -> bytes:
    """The envelope's JSON with member `name` holding `raw` JSON text, which json.dumps could not write."""
    marker = "\x00replaced\x00"
    return json.dumps({**document, name: marker}).replace(json.dumps(marker), raw).encode()


DECODER_LIMITS = {
    "1,000 nested arrays": b"[" * 1000 + b"]" * 1000,
    "10,000 nested objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "a 5,000-digit integer": b"7" * 5000,
    "a 5,000-digit integer as payloadType": with_raw(envelope_json(), "payloadType", "7" * 5000),
    "a 5,000-digit integer in an unknown member": with_raw(envelope_json(), "extra", "-" + "7" * 5000),
    "1,000 nested arrays as signatures": with_raw(envelope_json(), "signatures", "[" * 1000 + "]" * 1000),
    "5,000 nested objects as a signature": with_raw(envelope_json(), "signatures", "[" + '{"keyid":' * 5000 + '""' + "}" * 5000 + "]"),
}
assert all(len(envelope) <= dsse.MAX_ENVELOPE_BYTES for envelope in DECODER_LIMITS.values())


def call(client: RegistryClient, method: str, envelope: bytes) -> tuple[grpc.StatusCode, str]:
    request = registry_pb2.SubmitReportRequest if method == "SubmitReport" else registry_pb2.RetractReportRequest
    try:
        getattr(client._stub, method)(request(envelope=envelope), timeout=10)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def assert_refused(
    registry: Registry, client: RegistryClient, method: str, envelope: bytes, status: grpc.StatusCode, words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = stored_rows(registry)
    code, details = call(client, method, envelope)
    assert (code, words in details) == (status, True), details[:300]
    assert len(details) < MAX_DETAILS, f"{len(details)} characters of details"
    assert stored_rows(registry) == before
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(DECODER_LIMITS))
def test_an_envelope_past_the_json_decoders_limits_is_invalid_argument(
    registry: Registry, client: RegistryClient, method: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert_refused(registry, client, method, DECODER_LIMITS[case], grpc.StatusCode.INVALID_ARGUMENT, "envelope: ", caplog)


@pytest.mark.parametrize("method", METHODS)
def test_a_60000_character_keyid_is_permission_denied_with_a_short_message(
    registry: Registry, client: RegistryClient, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    envelope = json.dumps(envelope_json(payload_type=PAYLOAD_TYPES[method], keyid="k" * LONG)).encode()
    assert_refused(registry, client, method, envelope, grpc.StatusCode.PERMISSION_DENIED, "(60,000 characters) is not one of", caplog)


@pytest.mark.parametrize("method", METHODS)
def test_a_60000_character_payload_type_is_invalid_argument_with_a_short_message(
    registry: Registry, client: RegistryClient, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    envelope = json.dumps(envelope_json(payload_type="t" * LONG)).encode()
    assert_refused(registry, client, method, envelope, grpc.StatusCode.INVALID_ARGUMENT, "payloadType 'tttt", caplog)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("json_member", ["unknown", "repeated"])
def test_a_60000_character_member_name_is_invalid_argument_with_a_short_message(
    registry: Registry, client: RegistryClient, method: str, json_member: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = "m" * (LONG // 2)
    text = f'{{"{name}": 1, "{name}": 2}}' if json_member == "repeated" else json.dumps({**envelope_json(), "m" * LONG: 1})
    assert_refused(registry, client, method, text.encode(), grpc.StatusCode.INVALID_ARGUMENT, "characters)", caplog)


def long_payload(client: RegistryClient, credentials: Credentials, method: str, field: str) -> bytes:
    """A correctly signed payload of `method` whose `field` holds LONG_IN_PAYLOAD characters."""
    if method == "SubmitReport":
        message: types_pb2.ReportPayload | types_pb2.RetractionPayload = payload(client, [RIC], **{field: "r" * LONG_IN_PAYLOAD})
    else:
        fields = {"report_id": str(uuid.uuid4()), "reporter": credentials.name, "registry": credentials.registry, "reason": "mistaken"}
        message = types_pb2.RetractionPayload(created_at=now_stamp(), **(fields | {field: "r" * LONG_IN_PAYLOAD}))
    return dsse.sign_envelope(credentials.signing_seed, PAYLOAD_TYPES[method], message.SerializeToString(deterministic=True))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("field", "status", "words"),
    [
        ("report_id", None, "(45,000 characters)"),
        ("reporter", grpc.StatusCode.PERMISSION_DENIED, "payload.reporter is 'rrrr"),
        ("registry", grpc.StatusCode.INVALID_ARGUMENT, "payload.registry is 'rrrr"),
    ],
)
def test_a_long_field_of_the_signed_payload_gets_its_status_with_a_short_message(
    registry: Registry, client: RegistryClient, platform_a: Credentials, method: str, field: str,
    status: grpc.StatusCode | None, words: str, caplog: pytest.LogCaptureFixture,
) -> None:
    envelope = long_payload(client, platform_a, method, field)
    assert len(envelope) <= dsse.MAX_ENVELOPE_BYTES
    # A report id is checked as a UUID; a retraction's names a report, and the caller has none by that id.
    expected = status or (grpc.StatusCode.INVALID_ARGUMENT if method == "SubmitReport" else grpc.StatusCode.PERMISSION_DENIED)
    assert_refused(registry, client, method, envelope, expected, words, caplog)


@pytest.mark.parametrize("method", METHODS)
def test_a_signed_payload_of_20000_nested_unknown_groups_is_invalid_argument(
    registry: Registry, client: RegistryClient, platform_a: Credentials, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = GROUP_START * 20_000 + GROUP_END * 20_000
    envelope = dsse.sign_envelope(platform_a.signing_seed, PAYLOAD_TYPES[method], body)
    assert_refused(registry, client, method, envelope, grpc.StatusCode.INVALID_ARGUMENT, "payload is not a serialized", caplog)


OTHER_DIGITS = {"superscript two": "²", "arabic-indic one": "١", "full-width one": "１"}


@pytest.mark.parametrize(
    "cursor",
    [*OTHER_DIGITS.values(), "12³", "12" + "٣" * 10, "7" * LONG, "²" * LONG],
    ids=[*OTHER_DIGITS, "12 superscript three", "12 then arabic-indic threes", "60,000 digits", "60,000 superscripts"],
)
def test_a_cursor_of_anything_but_ascii_digits_is_invalid_argument(
    registry: Registry, client: RegistryClient, cursor: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        next(iter(client._stub.WatchChanges(registry_pb2.WatchChangesRequest(cursor=cursor), timeout=5)))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    assert "is not one this registry gave" in details and len(details) < MAX_DETAILS
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


@pytest.mark.parametrize(
    "digits", [*OTHER_DIGITS.values(), "9" * 19, "9" * 5000], ids=[*OTHER_DIGITS, "19 digits", "5,000 digits"]
)
def test_an_id_of_anything_but_up_to_18_ascii_digits_is_invalid_argument(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], digits: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = [
        ("GetSubject", admin_pb2.GetSubjectRequest(subject_id="S" + digits), "is not a subject id"),
        ("LiftListing", admin_pb2.LiftListingRequest(listing_id="L" + digits, grounds=admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION,
                                                      reason="a test"), "is not a listing id"),
        ("DecideAppeal", admin_pb2.DecideAppealRequest(appeal_id="A" + digits, decision=admin_pb2.APPEAL_STATUS_DENIED,
                                                        reason="a test"), "is not an appeal id"),
    ]
    for method, request, words in calls:
        with pytest.raises(grpc.RpcError) as refused:
            getattr(admin.stub, method)(request, timeout=10)
        assert (refused.value.code(), words in (refused.value.details() or "")) == (grpc.StatusCode.INVALID_ARGUMENT, True), method
    with RegistryClient(member("platform-b")) as client:
        with pytest.raises(grpc.RpcError) as refused:
            client._stub.RecordOpinion(registry_pb2.RecordOpinionRequest(listing_id="L" + digits, opinion=types_pb2.OPINION_CONFIRMED))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


@pytest.mark.parametrize("method", ["ListReports", "ListListings", "ListAppeals"])
def test_a_page_token_of_deeply_nested_json_is_invalid_argument(
    registry: Registry, admin: AdminClient, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    request = getattr(admin_pb2, f"{method}Request")(page_token=token)
    with pytest.raises(grpc.RpcError) as refused:
        getattr(admin.stub, method)(request, timeout=10)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token is not one this registry issued" in (refused.value.details() or "")
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
