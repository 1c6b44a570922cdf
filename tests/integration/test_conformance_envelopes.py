"""docs/vectors/envelopes.json over a real registry: each envelope gets the status the kit says.

The kit's envelopes are signed by one fixed key for the member `example-platform`
of a registry named `jpr-test` (the test registry's name); the member gets that
key as an extra signing key, valid from the kit's `key_valid_from`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from jpr_client import Credentials, RegistryClient, RPCError
from jpr_client.api.jpr.v1 import admin_pb2
from jpr_client.crypto import dsse
from tests.conftest import REGISTRY_NAME, AdminClient, Registry
from tests.integration.test_submit_report import stored_rows, submit

VECTORS = Path(__file__).parents[2] / "docs" / "vectors"
ENVELOPES: dict[str, Any] = json.loads((VECTORS / "envelopes.json").read_text(encoding="utf-8"))
PAYLOADS = {p["name"]: p for p in json.loads((VECTORS / "payloads.json").read_text(encoding="utf-8"))["payloads"]}
CONTEXT = ENVELOPES["context"]
SIGNED = {entry["name"]: entry for entry in ENVELOPES["signed"]}


@pytest.fixture
def kit_member(admin: AdminClient) -> Credentials:
    """The kit's member, holding the kit's signing key from its stated date."""
    assert CONTEXT["registry"] == REGISTRY_NAME
    credentials = admin.add_member(CONTEXT["member"])
    valid_from = Timestamp()
    valid_from.FromJsonString(CONTEXT["key_valid_from"])
    admin.call("AddMemberKey", admin_pb2.AddMemberKeyRequest(
        member=CONTEXT["member"], public_key=bytes.fromhex(ENVELOPES["key"]["public_key"]), valid_from=valid_from))
    return credentials


@pytest.fixture
def kit_client(kit_member: Credentials) -> Iterator[RegistryClient]:
    with RegistryClient(kit_member) as client:
        yield client


def _outcome(client: RegistryClient, envelope: bytes) -> tuple[str, str]:
    try:
        submit(client, envelope)
    except RPCError as error:
        return error.status.name, error.message
    return "OK", ""


def test_every_refused_envelope_of_the_kit_gets_its_status_and_message_and_stores_nothing(
    registry: Registry, kit_client: RegistryClient
) -> None:
    before = stored_rows(registry)
    wrong = []
    for vector in ENVELOPES["refused"]:
        status, message = _outcome(kit_client, bytes.fromhex(vector["envelope_hex"]))
        if status != vector["status"] or vector["message"] not in message:
            wrong.append((vector["name"], status, message))
    assert not wrong
    assert stored_rows(registry) == before


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_each_signed_envelope_of_the_kit_gets_its_submit_status(registry: Registry, kit_client: RegistryClient, name: str) -> None:
    vector = SIGNED[name]
    status, message = _outcome(kit_client, vector["envelope"].encode())
    assert status == vector["submit"]["status"], message
    assert vector["submit"].get("message", "") in message


def test_an_accepted_kit_report_is_stored_verbatim(registry: Registry, kit_client: RegistryClient) -> None:
    envelope = SIGNED["all_fields"]["envelope"].encode()
    receipt = submit(kit_client, envelope)
    assert receipt.report_id == PAYLOADS["all_fields"]["fields"]["report_id"]
    assert kit_client.get_report(receipt.report_id).envelope == envelope


def test_a_payload_with_explicit_default_fields_is_kept_as_signed_and_its_canonical_form_is_another_report(
    registry: Registry, kit_client: RegistryClient
) -> None:
    vector = PAYLOADS["explicit_defaults"]
    envelope = SIGNED["explicit_defaults"]["envelope"].encode()
    receipt = submit(kit_client, envelope)
    report = kit_client.get_report(receipt.report_id)
    assert dsse.parse_envelope(report.envelope).payload.hex() == vector["bytes"]
    # The same fields serialized without the defaults are other signed bytes under the same report id.
    canonical = dsse.sign_envelope(bytes.fromhex(ENVELOPES["key"]["private_key"]), dsse.REPORT_PAYLOAD_TYPE, bytes.fromhex(vector["canonical_bytes"]))
    status, message = _outcome(kit_client, canonical)
    assert (status, receipt.report_id in message) == (grpc.StatusCode.ALREADY_EXISTS.name, True)
    assert submit(kit_client, envelope) == receipt  # the bytes as first signed are still idempotent
