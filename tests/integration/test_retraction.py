"""A reporter withdraws its own report with a signed retraction; nobody else can."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from sqlalchemy import select

from jpr_client import RPCError, RegistryClient, ReportStatus, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from jpr_client.crypto import dsse
from registry.store.models import EventRow, ListingRow, RetractionRow
from tests.conftest import AdminClient, Registry
from tests.integration.reporting import now_stamp
from tests.integration.test_lookup import RIC, applicant, platforms, report  # noqa: F401 (platforms: a fixture)


def accepted(admin: AdminClient, client: RegistryClient) -> str:
    report_id = client.submit_report(report(("cn_ric", RIC))).report_id
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=report_id))
    return report_id


def test_retracting_the_only_support_lifts_the_listing(registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, _, c = platforms
    report_id = accepted(admin, a)
    assert c.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY
    retracted = a.retract_report(report_id, "identity mix-up: a namesake")
    assert retracted.status is ReportStatus.RETRACTED
    assert c.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    assert a.retract_report(report_id, "identity mix-up: a namesake").status is ReportStatus.RETRACTED  # idempotent
    with registry.database.read() as conn:
        assert conn.execute(select(ListingRow.status)).scalar_one() == "LIFTED"
        kinds = [k for (k,) in conn.execute(select(EventRow.kind).order_by(EventRow.seq))]
        (stored,) = conn.execute(select(RetractionRow.envelope, RetractionRow.reason)).all()
    assert kinds[-2:] == ["report.retracted", "listing.lifted"]
    parsed = dsse.parse_envelope(stored.envelope)
    assert parsed.payload_type == dsse.RETRACTION_PAYLOAD_TYPE and stored.reason == "identity mix-up: a namesake"


def test_a_listing_another_platform_supports_stays(registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, c = platforms
    first = accepted(admin, a)
    accepted(admin, b)
    a.retract_report(first, "evidence withdrawn by our legal team")
    result = c.lookup(applicant(("cn_ric", RIC)))
    assert result.verdict is Verdict.DENY and result.matches[0].reporting_platforms == 1


def test_another_members_retraction_is_permission_denied(registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, c = platforms
    report_id = accepted(admin, a)
    with pytest.raises(RPCError) as caught:
        b.retract_report(report_id, "we think it is wrong")
    with pytest.raises(RPCError) as missing:
        b.retract_report("00000000-0000-4000-8000-000000000000", "we think it is wrong")
    assert caught.value.status is grpc.StatusCode.PERMISSION_DENIED
    # The same answer as for a report that does not exist: nobody learns which report ids are taken.
    assert caught.value.message == missing.value.message.replace("00000000-0000-4000-8000-000000000000", report_id)
    assert c.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ("type", grpc.StatusCode.INVALID_ARGUMENT, "payloadType"),
        ("signature", grpc.StatusCode.UNAUTHENTICATED, "signature does not verify"),
        ("reason", grpc.StatusCode.INVALID_ARGUMENT, "payload.reason"),
        ("registry", grpc.StatusCode.INVALID_ARGUMENT, "payload.registry"),
        ("missing", grpc.StatusCode.PERMISSION_DENIED, "you have no report"),
    ],
)
def test_bad_retractions_are_refused_and_change_nothing(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], change: str, status: grpc.StatusCode, words: str
) -> None:
    a, _, c = platforms
    report_id = accepted(admin, a)
    payload = types_pb2.RetractionPayload(
        report_id="00000000-0000-4000-8000-000000000000" if change == "missing" else report_id,
        reporter=a.credentials.name,
        registry="elsewhere" if change == "registry" else a.credentials.registry,
        created_at=now_stamp(),
        reason=" " if change == "reason" else "withdrawn",
    )
    payload_type = dsse.REPORT_PAYLOAD_TYPE if change == "type" else dsse.RETRACTION_PAYLOAD_TYPE
    envelope = json.loads(dsse.sign_envelope(a.credentials.signing_seed, payload_type, payload.SerializeToString()))
    if change == "signature":
        other = dsse.parse_envelope(dsse.sign_envelope(a.credentials.signing_seed, payload_type, b"other bytes"))
        envelope["signatures"][0]["sig"] = base64.b64encode(other.signatures[0].sig).decode()
    with pytest.raises(grpc.RpcError) as caught:
        a._stub.RetractReport(registry_pb2.RetractReportRequest(envelope=json.dumps(envelope).encode()), timeout=10)
    assert caught.value.code() is status
    assert words in (caught.value.details() or "")
    assert c.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY
