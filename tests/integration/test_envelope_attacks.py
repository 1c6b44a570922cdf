"""Envelope attacks: each refused with its own status, and nothing stored."""

from __future__ import annotations

import base64
import json
import random

import grpc
import pytest

from jpr_client import Credentials, RPCError, RegistryClient
from jpr_client.api.jpr.v1 import registry_pb2, types_pb2
from jpr_client.crypto import dsse
from tests.conftest import Registry
from tests.integration.reporting import now_stamp, payload, sign
from tests.integration.test_submit_report import RIC, client, platform_a, refused, stored_rows, submit  # noqa: F401 (fixtures)


def test_a_signed_retraction_sent_as_a_report_is_payload_type_confusion(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    retraction = types_pb2.RetractionPayload(report_id="00000000-0000-4000-8000-000000000000", reporter="platform-a",
                                             registry=platform_a.registry, created_at=now_stamp(), reason="x")
    refused(client, sign(platform_a, retraction, dsse.RETRACTION_PAYLOAD_TYPE), grpc.StatusCode.INVALID_ARGUMENT, "payloadType")
    report_envelope = sign(platform_a, payload(client, [RIC]))
    with pytest.raises(grpc.RpcError) as caught:
        client._stub.RetractReport(registry_pb2.RetractReportRequest(envelope=report_envelope), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "payloadType" in (caught.value.details() or "")
    assert stored_rows(registry)[0] == 0


def test_a_payload_for_another_registry_is_refused(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    refused(client, sign(platform_a, payload(client, [RIC], registry="jpr-elsewhere")), grpc.StatusCode.INVALID_ARGUMENT, "no cross-registry replay")


def test_a_duplicated_signature_is_refused(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    envelope = json.loads(sign(platform_a, payload(client, [RIC])))
    envelope["signatures"] = envelope["signatures"] * 2
    refused(client, json.dumps(envelope).encode(), grpc.StatusCode.INVALID_ARGUMENT, "exactly one signature")
    assert stored_rows(registry)[0] == 0


def test_a_signature_over_the_base64_text_instead_of_the_bytes_is_refused(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    body = payload(client, [RIC]).SerializeToString(deterministic=True)
    text = base64.b64encode(body)
    wrong = dsse.sign(platform_a.signing_seed, dsse.REPORT_PAYLOAD_TYPE, text)  # PAE over the base64 text
    envelope = {"payloadType": dsse.REPORT_PAYLOAD_TYPE, "payload": text.decode(),
                "signatures": [{"keyid": platform_a.key_id, "sig": base64.b64encode(wrong).decode()}]}
    refused(client, json.dumps(envelope).encode(), grpc.StatusCode.UNAUTHENTICATED, "signature does not verify")


def test_oversized_fields_are_refused(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    refused(client, sign(platform_a, payload(client, [RIC], summary="x" * 5000)), grpc.StatusCode.INVALID_ARGUMENT, "summary")


def test_truncated_and_bit_flipped_envelopes_are_refused_and_store_nothing(registry: Registry, client: RegistryClient, platform_a: Credentials) -> None:
    good = sign(platform_a, payload(client, [RIC]))
    before = stored_rows(registry)
    rng = random.Random(7)
    damaged = [good[:cut] for cut in (0, 1, len(good) // 2, len(good) - 1)]
    for _ in range(60):
        flipped = bytearray(good)
        position = rng.randrange(len(flipped))
        flipped[position] ^= 1 << rng.randrange(8)
        damaged.append(bytes(flipped))
    allowed = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
    for envelope in damaged:
        if envelope == good:
            continue
        try:
            submit(client, envelope)
        except RPCError as error:
            assert error.status in allowed, (envelope, error)
        else:
            # A flip inside base64 padding bits or JSON whitespace can leave the signed bytes intact.
            assert dsse.parse_envelope(envelope).payload == dsse.parse_envelope(good).payload
    assert stored_rows(registry)[0] <= before[0] + 1
