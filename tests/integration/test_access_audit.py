"""The access log and `jpr admin audit access`: one line per call with who, which certificate and how much,
never an identifier; each member's volumes, with lookups out of line and enumeration-like misses flagged."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable

import grpc
import pytest

from jpr_client import Credentials, RPCError, RegistryClient, normalize
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from registry.crypto import pki
from tests.conftest import AdminClient, Registry
from tests.integration.test_cli import Jpr, jpr
from tests.integration.test_lookup import PHONE, RIC, accept, applicant, report
from tests.integration.test_privacy import everything_logged
from tests.integration.test_replicas import valid_ric
from tests.integration.test_shutdown import wait_for_access_line

LOOKUP_BATCH = "/jpr.v1.Registry/LookupBatch"


def test_each_call_is_one_line_with_member_certificate_status_and_counts_never_an_identifier(
    registry: Registry, member: Callable[[str], Credentials], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level: nothing may carry an identifier
    platform = member("platform-a")
    fingerprint = pki.fingerprint(platform.certificate.encode())
    with RegistryClient(platform) as client:
        listed = client.submit_report(report(("cn_ric", RIC)))
        results = client.lookup_batch([applicant(("cn_ric", RIC), ("phone", PHONE)), applicant(("cn_ric", valid_ric(1)))])
        tokens = client.tokenize([normalize("cn_ric", RIC), normalize("phone", PHONE)])
    assert listed.report_id and [bool(r.matches) for r in results] == [True, False]
    registry.running.access_log.flush()
    line = wait_for_access_line(caplog, LOOKUP_BATCH)
    assert f"member:platform-a cert={fingerprint} OK" in line and " items=2 matched=1 request_id=" in line
    tokenize = wait_for_access_line(caplog, "/jpr.v1.Registry/Tokenize", "items=2")
    assert f"cert={fingerprint}" in tokenize
    logged = everything_logged(caplog.records)
    for secret in (RIC, RIC.lower(), PHONE, normalize("phone", PHONE).value, *(t.value.hex() for t in tokens),
                   *(base64.b64encode(t.value).decode() for t in tokens)):
        assert secret not in logged


def test_refused_calls_are_logged_and_counted_as_refused_without_their_elements(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jpr.access")
    platform = member("platform-a")
    with RegistryClient(platform) as client:
        (token,) = client.tokenize([normalize("phone", PHONE)])
        one = registry_pb2.Applicant(identifiers=[types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=token.value)])
        with pytest.raises(grpc.RpcError) as too_many:
            client._stub.LookupBatch(registry_pb2.LookupBatchRequest(applicants=[one] * 1001), timeout=10)
        assert too_many.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    # The line says what was asked; the counts hold no applicant that was not answered.
    wait_for_access_line(caplog, LOOKUP_BATCH, "member:platform-a", "INVALID_ARGUMENT", "items=1001 matched=0")
    admin.call("SuspendMember", admin_pb2.MemberStatusRequest(member="platform-a", reason="unpaid dues"))
    with RegistryClient(platform) as client, pytest.raises(RPCError) as refused:
        client.lookup(applicant(("cn_ric", RIC)))
    assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED
    # The SDK tokenizes first: that call is the one refused.
    wait_for_access_line(caplog, "/jpr.v1.Registry/Tokenize", "member:platform-a", "PERMISSION_DENIED", "items=0")
    audit: admin_pb2.AuditAccessResponse = admin.call("AuditAccess", admin_pb2.AuditAccessRequest())  # type: ignore[assignment]
    [row] = [m for m in audit.members if m.member == "platform-a"]
    assert (row.calls, row.refused, row.lookup_calls, row.applicants, row.tokenized) == (3, 2, 1, 0, 1)


def test_audit_flags_lookups_out_of_line_and_enumeration_like_misses(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], jpr: Jpr  # noqa: F811
) -> None:
    honest, harvester, newcomer = member("platform-a"), member("platform-b"), member("platform-c")
    for name, per_day in (("platform-a", 100), ("platform-b", 10)):
        jpr.admin("admin", "members", "volume", name, str(per_day), "--reason", "2026 onboarding figures")
    with RegistryClient(honest) as a, RegistryClient(harvester) as b, RegistryClient(newcomer) as c:
        for n in range(5):
            accept(admin, a.submit_report(report(("cn_ric", valid_ric(n)))).report_id)
        # platform-a: 40 real sign-ups, 10 of them listed people (25 %).
        a.lookup_batch([applicant(("cn_ric", valid_ric(n % 5 if n < 10 else 1000 + n))) for n in range(40)])
        # platform-b: 300 guessed ID numbers in a day's window of 10 declared sign-ups; none matches.
        b.lookup_batch([applicant(("cn_ric", valid_ric(2000 + n))) for n in range(300)])
        c.lookup(applicant(("cn_ric", valid_ric(0))))

    audit = json.loads(jpr.admin("admin", "audit", "access", "--json", "--min-applicants", "100"))
    rows = {row["member"]: row for row in audit["members"]}
    assert [row["member"] for row in audit["members"]][:2] == ["platform-b", "platform-c"]  # flagged first
    assert rows["platform-b"]["flags"] == ["VOLUME_OUT_OF_LINE", "ENUMERATION_LIKE_MISSES"]
    assert (rows["platform-b"]["applicants"], rows["platform-b"]["matched"], rows["platform-b"]["onboarding_per_day"]) == (300, 0, 10)
    assert "300 applicants in 7.0 days against 10 onboarded a day" in rows["platform-b"]["why"][0]
    assert "0 of 300 applicants matched" in rows["platform-b"]["why"][1]
    assert rows["platform-c"]["flags"] == ["NO_DECLARED_VOLUME"]
    assert rows["platform-a"]["flags"] == [] and (rows["platform-a"]["applicants"], rows["platform-a"]["matched"]) == (40, 10)
    assert rows["platform-a"]["match_rate"] == "25.00%"
    assert rows["platform-a"]["tokenized"] == 45  # 5 reports' identifiers and 40 applicants'

    # With the default threshold, 300 applicants are too few to judge a match rate.
    default = json.loads(jpr.admin("admin", "audit", "access", "--json"))
    assert {r["member"]: r["flags"] for r in default["members"]}["platform-b"] == ["VOLUME_OUT_OF_LINE"]
    table = jpr.admin("admin", "audit", "access", "--min-applicants", "100")
    assert "platform-b: 0 of 300 applicants matched" in table
    # A window before any call: nothing counted, nothing flagged.
    empty = json.loads(jpr.admin("admin", "audit", "access", "--json", "--until", "2020-01-01T00:00:00Z"))
    assert all(r["calls"] == 0 and r["flags"] == [] for r in empty["members"])


def test_audit_and_volume_refuse_bad_input(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    member("platform-a")
    cases: list[tuple[str, object, grpc.StatusCode, str]] = [
        ("SetOnboardingVolume", admin_pb2.SetOnboardingVolumeRequest(member="platform-a", per_day=0, reason="x"), grpc.StatusCode.INVALID_ARGUMENT, "per_day: 0"),
        ("SetOnboardingVolume", admin_pb2.SetOnboardingVolumeRequest(member="platform-a", per_day=5), grpc.StatusCode.INVALID_ARGUMENT, "reason is required"),
        ("SetOnboardingVolume", admin_pb2.SetOnboardingVolumeRequest(member="nobody", per_day=5, reason="x"), grpc.StatusCode.NOT_FOUND, "nobody"),
        ("AuditAccess", admin_pb2.AuditAccessRequest(volume_factor=0.5), grpc.StatusCode.INVALID_ARGUMENT, "a number above 1"),
    ]
    late = admin_pb2.AuditAccessRequest()
    late.since.FromSeconds(2_000_000_000)
    late.until.FromSeconds(1_000_000_000)
    cases.append(("AuditAccess", late, grpc.StatusCode.INVALID_ARGUMENT, "is not before until"))
    for method, request, status, words in cases:
        with pytest.raises(RPCError) as refused:
            admin.call(method, request)
        assert refused.value.status is status and words in refused.value.message, (method, refused.value.message)
    members: admin_pb2.ListMembersResponse = admin.call("ListMembers", admin_pb2.ListMembersRequest())  # type: ignore[assignment]
    assert [m.onboarding_per_day for m in members.members] == [0]  # nothing was recorded
