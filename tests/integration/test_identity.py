"""The identity lifecycle: suspension, certificate revocation and expiry, signing-key validity windows."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from collections.abc import Callable

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jpr_client import CertificateExpiryWarning, Credentials, RPCError, RegistryClient, Verdict, normalize
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2
from jpr_client.crypto import dsse
from registry.crypto import pki
from registry.datadir import DataDir
from tests.conftest import AdminClient, Registry
from tests.integration.reporting import now_stamp, payload
from tests.integration.test_lookup import RIC, applicant, report


def suspend(admin: AdminClient, name: str, reason: str = "unpaid dues and a leaked key") -> object:
    return admin.call("SuspendMember", admin_pb2.MemberStatusRequest(member=name, reason=reason))


def test_a_suspended_member_is_refused_at_once_on_its_open_connection_and_can_be_resumed(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    with RegistryClient(member("platform-a")) as client:
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR  # the connection is open
        stream = client._stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=30)
        ended: list[grpc.RpcError] = []
        watcher = threading.Thread(target=lambda: ended.append(_drain(stream)), daemon=True)
        watcher.start()
        suspended = suspend(admin, "platform-a")
        assert suspended.status == admin_pb2.MEMBER_STATUS_SUSPENDED  # type: ignore[attr-defined]
        for call in (lambda: client.lookup(applicant(("cn_ric", RIC))), lambda: client.tokenize([normalize("cn_ric", RIC)]), lambda: client.get_report("x")):
            with pytest.raises(RPCError) as refused:
                call()
            assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED
            assert refused.value.message == "member 'platform-a' is SUSPENDED"
        watcher.join(10)
        assert ended and ended[0].code() is grpc.StatusCode.PERMISSION_DENIED  # the open watch ended too
        with pytest.raises(RPCError) as twice:
            suspend(admin, "platform-a")
        assert twice.value.status is grpc.StatusCode.FAILED_PRECONDITION
        admin.call("ResumeMember", admin_pb2.MemberStatusRequest(member="platform-a", reason="dues paid, key replaced"))
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR


def _drain(stream: object) -> grpc.RpcError:
    try:
        for _ in stream:  # type: ignore[attr-defined]
            pass
    except grpc.RpcError as error:
        return error
    raise AssertionError("the watch ended without an error")


def test_a_revoked_certificate_is_refused_and_other_members_go_on(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    leaked, other = member("platform-a"), member("platform-b")
    sha256 = pki.fingerprint(leaked.certificate.encode())
    with pytest.raises(RPCError) as malformed:
        admin.call("RevokeCertificate", admin_pb2.RevokeCertificateRequest(certificate_sha256="abc", reason="leaked"))
    assert malformed.value.status is grpc.StatusCode.INVALID_ARGUMENT
    revoked = admin.call("RevokeCertificate", admin_pb2.RevokeCertificateRequest(certificate_sha256=sha256, reason="laptop stolen"))
    assert revoked.revoked_by == "admin:admin"  # type: ignore[attr-defined]
    with RegistryClient(leaked) as client, pytest.raises(RPCError) as refused:
        client.lookup(applicant(("cn_ric", RIC)))
    assert refused.value.status is grpc.StatusCode.UNAUTHENTICATED
    assert f"client certificate {sha256} has been revoked" in refused.value.message
    with RegistryClient(other) as client:
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    with pytest.raises(RPCError) as again:
        admin.call("RevokeCertificate", admin_pb2.RevokeCertificateRequest(certificate_sha256=sha256, reason="twice"))
    assert again.value.status is grpc.StatusCode.ALREADY_EXISTS


def test_the_enrollment_answer_names_the_certificate_to_revoke(registry: Registry, admin: AdminClient) -> None:
    key_pem, csr_pem = pki.make_csr("platform-z", pki.ROLE_MEMBER)
    signing_public_key = dsse.public_key(dsse.generate_signing_key())
    with pytest.raises(RPCError) as unsigned:  # the registry holds no CA key: it signs nothing
        admin.call("CreateMember", admin_pb2.CreateMemberRequest(name="platform-z", signing_public_key=signing_public_key, csr_pem=csr_pem.decode()))
    assert unsigned.value.status is grpc.StatusCode.INVALID_ARGUMENT and unsigned.value.message.startswith("csr_pem: ")
    certificate = admin.issuer.sign(csr_pem, "platform-z", pki.ROLE_MEMBER)
    response = admin.call("CreateMember", admin_pb2.CreateMemberRequest(
        name="platform-z", signing_public_key=signing_public_key, certificate_pem=certificate.decode()))
    assert response.certificate_sha256 == pki.fingerprint(certificate)  # type: ignore[attr-defined]


def test_an_expired_certificate_gets_no_service(registry: Registry, member: Callable[[str], Credentials]) -> None:
    credentials = member("platform-a")
    ca = DataDir(registry.data_dir).issuer().ca()
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "member"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, "platform-a")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    old = replace(
        credentials,
        certificate=expired.public_bytes(serialization.Encoding.PEM).decode(),
        private_key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )
    with pytest.warns(CertificateExpiryWarning, match="expired"), RegistryClient(old) as client, pytest.raises(RPCError) as refused:
        client.lookup(applicant(("cn_ric", RIC)))
    assert refused.value.status is grpc.StatusCode.UNAVAILABLE  # the TLS handshake itself fails


def test_signing_keys_have_validity_windows_and_old_reports_still_verify(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    credentials = member("platform-a")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    keys = {name: dsse.generate_signing_key() for name in ("current", "future", "ended")}
    windows = {"current": (now - dt.timedelta(hours=1), now + dt.timedelta(days=90)),
               "future": (now + dt.timedelta(days=1), None),
               "ended": (now - dt.timedelta(days=2), now - dt.timedelta(days=1))}
    for name, (start, end) in windows.items():
        request = admin_pb2.AddMemberKeyRequest(member="platform-a", public_key=dsse.public_key(keys[name]), valid_from=now_stamp(start))
        if end is not None:
            request.valid_until.CopyFrom(now_stamp(end))
        admin.call("AddMemberKey", request)
    with pytest.raises(RPCError) as backwards:
        admin.call("AddMemberKey", admin_pb2.AddMemberKeyRequest(
            member="platform-a", public_key=dsse.public_key(dsse.generate_signing_key()), valid_from=now_stamp(now), valid_until=now_stamp(now)))
    assert backwards.value.status is grpc.StatusCode.INVALID_ARGUMENT

    with RegistryClient(credentials) as client:
        def submit(key: str) -> registry_pb2.ReportReceipt:
            message = payload(client, [("cn_ric", RIC)])
            envelope = dsse.sign_envelope(keys[key], dsse.REPORT_PAYLOAD_TYPE, message.SerializeToString(deterministic=True))
            return client._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=10)

        receipt = submit("current")
        for key, words in (("future", "was not valid at created_at"), ("ended", "sign new reports with a current key")):
            with pytest.raises(grpc.RpcError) as refused:
                submit(key)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED, key
            assert words in (refused.value.details() or ""), refused.value.details()
        current_id = dsse.key_id(dsse.public_key(keys["current"]))
        admin.call("RevokeMemberKey", admin_pb2.RevokeMemberKeyRequest(member="platform-a", key_id=current_id))  # rotated away
        with pytest.raises(grpc.RpcError) as revoked:
            submit("current")
        assert revoked.value.code() is grpc.StatusCode.UNAUTHENTICATED
        stored = client.get_report(receipt.report_id)  # the old key's report still re-verifies
    envelope = dsse.parse_envelope(stored.envelope)
    assert dsse.verify(dsse.public_key(keys["current"]), envelope.payload_type, envelope.payload, envelope.signatures[0].sig)
