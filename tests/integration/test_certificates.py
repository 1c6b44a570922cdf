"""The certificate lifecycle (issue 13): re-issue, renewal with overlap, named admins, the CA key offline."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from jpr_client import CertificateExpiryWarning, Credentials, RPCError, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2
from jpr_client.crypto import dsse
from registry.cli.enrollment import generate_keys
from registry.cli.main import main
from registry.crypto import pki
from registry.datadir import ADMIN_CREDENTIALS, DataDir, Issuer
from registry.server.app import start
from registry.settings import load_settings
from registry.store import schema
from registry.store.database import Database
from registry.store.models import CertificatePolicyRow, EventRow, MemberKeyRow, MemberRow
from tests.conftest import REGISTRY_NAME, AdminClient, Registry
from tests.integration.test_migrations import empty_database  # noqa: F401 (a fixture)
from tests.integration.test_lookup import RIC, applicant, report


@pytest.fixture
def jpr(registry: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """`jpr ARGV` as the admin, on the machine where the CA key is; the output (stderr when `ok=False`)."""
    monkeypatch.setenv("JPR_ISSUER", str(registry.data_dir / "issuer"))
    monkeypatch.setenv("JPR_CREDENTIALS", str(registry.data_dir / ADMIN_CREDENTIALS))
    monkeypatch.setenv("JPR_ENDPOINT", registry.endpoint)

    def run(*argv: str, ok: bool = True, code: int | None = None) -> str:
        result = main([*argv])
        out, err = capsys.readouterr()
        assert result == (code if code is not None else 0 if ok else 1), f"exit {result}: {err}"
        return out if ok else err

    return run


def enroll(jpr: Callable[..., str], tmp_path: Path, name: str, verb: str = "add", **flags: str) -> Credentials:
    """The platform's keygen, the admin's `members add|reissue`, the platform's `member credentials`."""
    work = tmp_path / f"{name}-{verb}-{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    jpr("member", "keygen", name, "--out-dir", str(work))
    extra = [item for key, value in flags.items() for item in (f"--{key}", value)]
    jpr("admin", "members", verb, name, "--request", str(work / f"{name}.request.json"), "--out", str(work / "issued.json"), *extra)
    jpr("member", "credentials", "--keys", str(work / f"{name}.keys.json"), "--issued", str(work / "issued.json"),
        "--out", str(work / "credentials.json"))
    return Credentials.load(work / "credentials.json")


def refused(credentials: Credentials) -> RPCError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CertificateExpiryWarning)
        with RegistryClient(credentials) as client, pytest.raises(RPCError) as caught:
            client.lookup(applicant(("cn_ric", RIC)))
    return caught.value


def test_a_revoked_member_is_reissued_a_certificate_and_keeps_its_reports(
    registry: Registry, admin: AdminClient, jpr: Callable[..., str], tmp_path: Path
) -> None:
    old = enroll(jpr, tmp_path, "platform-a").with_endpoint(registry.endpoint)
    with RegistryClient(old) as client:
        receipt = client.submit_report(report(("cn_ric", RIC)))
    sha256 = pki.fingerprint(old.certificate.encode())
    jpr("admin", "cert", "revoke", sha256, "--reason", "laptop stolen")
    assert refused(old).status is grpc.StatusCode.UNAUTHENTICATED
    new = enroll(jpr, tmp_path, "platform-a", "reissue").with_endpoint(registry.endpoint)
    with RegistryClient(new) as client:
        assert client.get_report(receipt.report_id).report_id == receipt.report_id  # its reports are untouched
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.REVIEW  # a report under review
        client.submit_report(report(("cn_ric", RIC)))  # signed with the new signing key, registered by reissue
    assert "has been revoked" in refused(old).message
    members = json.loads(jpr("admin", "members", "list", "--json"))
    (row,) = [m for m in members if m["name"] == "platform-a"]
    assert len(row["keys"]) == 2 and len(row["certificates"]) == 2
    assert [c["revoked_at"] is not None for c in row["certificates"] if c["certificate_sha256"] == sha256] == [True]
    with registry.database.session() as session:
        kinds = session.scalars(select(EventRow.kind).order_by(EventRow.seq)).all()
    assert kinds.count("member.created") == 1 and "member.certificate_revoked" in kinds and "certificate.registered" in kinds


def test_a_renewed_certificate_overlaps_the_old_one_and_expiry_is_announced(
    registry: Registry, jpr: Callable[..., str], tmp_path: Path
) -> None:
    old = enroll(jpr, tmp_path, "platform-a", days="10").with_endpoint(registry.endpoint)  # expires within 30 days
    with pytest.warns(CertificateExpiryWarning, match="expires in 9 days"):
        RegistryClient(old).close()
    credentials_file = tmp_path / "old.credentials.json"
    old.save(credentials_file)
    status = jpr("member", "status", "--credentials", str(credentials_file), code=1)
    assert "certificate expires" in status and "warning:" in status
    audit = json.loads(jpr("admin", "audit", "certs", "--json"))
    flagged = [c for c in audit["certificates"] if c["flag"] == "EXPIRING"]
    assert [c["certificate_sha256"] for c in flagged] == [pki.fingerprint(old.certificate.encode())]
    new = enroll(jpr, tmp_path, "platform-a", "reissue").with_endpoint(registry.endpoint)
    for credentials in (old, new):  # both work until the old one expires or is revoked
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if credentials is old else "error", CertificateExpiryWarning)  # full term: no warning
            with RegistryClient(credentials) as client:
                assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    table = jpr("admin", "members", "list")
    assert pki.fingerprint(old.certificate.encode()) in table and pki.fingerprint(new.certificate.encode()) in table
    jpr("admin", "cert", "revoke", pki.fingerprint(old.certificate.encode()), "--reason", "fleet rolled to the new certificate")
    assert refused(old).status is grpc.StatusCode.UNAUTHENTICATED
    with RegistryClient(new) as client:
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR


def test_named_admins_sign_their_decisions_and_one_is_revoked_alone(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], jpr: Callable[..., str], tmp_path: Path
) -> None:
    member("platform-a")
    jpr("admin", "admins", "add", "alice", "--out", str(tmp_path / "alice.json"))
    jpr("admin", "admins", "add", "bob", "--out", str(tmp_path / "bob.json"))
    alice = ("--credentials", str(tmp_path / "alice.json"))
    jpr("admin", "members", "suspend", "platform-a", "--reason", "dues unpaid", *alice)
    jpr("admin", "members", "resume", "platform-a", "--reason", "dues paid", "--credentials", str(tmp_path / "bob.json"))
    with registry.database.session() as session:
        rows = session.execute(select(EventRow.kind, EventRow.actor).where(EventRow.kind.in_(["member.suspended", "member.resumed"])))
        actors = {kind: actor for kind, actor in rows}
    assert actors == {"member.suspended": "admin:alice", "member.resumed": "admin:bob"}
    names = {row["name"] for row in json.loads(jpr("admin", "admins", "list", "--json"))}
    assert names == {"admin", "alice", "bob"}  # the first admin was registered when the registry started
    jpr("admin", "admins", "revoke", "alice", "--reason", "credentials file leaked")
    error = jpr("admin", "members", "list", *alice, ok=False)
    assert "UNAUTHENTICATED" in error and "revoked" in error
    assert "platform-a" in jpr("admin", "members", "list", "--credentials", str(tmp_path / "bob.json"))
    assert "platform-a" in jpr("admin", "members", "list")  # nobody else was re-keyed
    assert "holds no unrevoked" in jpr("admin", "admins", "revoke", "alice", "--reason", "again", ok=False)


def test_bad_certificates_get_a_precise_status_naming_the_field(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    credentials = member("platform-a")
    stranger = pki.create_ca("elsewhere")
    key_pem, csr = pki.make_csr("platform-a", pki.ROLE_MEMBER)
    cases = {
        pki.issue_client_cert(stranger, csr, "platform-a", pki.ROLE_MEMBER).decode(): (grpc.StatusCode.INVALID_ARGUMENT, "not signed by this registry's CA"),
        "hello": (grpc.StatusCode.INVALID_ARGUMENT, "not a PEM X.509 certificate"),
        "": (grpc.StatusCode.INVALID_ARGUMENT, "certificate_pem is required"),
        credentials.certificate: (grpc.StatusCode.ALREADY_EXISTS, "already registered"),
        admin.issuer.sign(csr, "nobody", pki.ROLE_MEMBER).decode(): (grpc.StatusCode.NOT_FOUND, "no member named 'nobody'"),
        pki.issue_server_cert(admin.issuer.ca(), ["localhost"]).cert_pem.decode(): (grpc.StatusCode.INVALID_ARGUMENT, "not a client certificate"),
    }
    for pem, (status, message) in cases.items():
        with pytest.raises(RPCError) as caught:
            admin.call("RegisterCertificate", admin_pb2.RegisterCertificateRequest(certificate_pem=pem))
        assert caught.value.status is status and message in caught.value.message, caught.value.message
        assert caught.value.message.startswith("certificate_pem") or status is not grpc.StatusCode.INVALID_ARGUMENT
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = bytearray(x509.load_pem_x509_csr(csr).public_bytes(Encoding.DER))
    der[-1] ^= 1  # the last byte of the request's signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(Encoding.PEM)
    with pytest.raises(pki.PkiError, match="CSR"):  # signed where the CA key is: the issuer refuses it before any call
        admin.issuer.sign(tampered, "platform-a", pki.ROLE_MEMBER)
    with pytest.raises(RPCError) as bad_role:
        admin.call("ListCertificates", admin_pb2.ListCertificatesRequest(role="root"))
    assert bad_role.value.status is grpc.StatusCode.INVALID_ARGUMENT and "role" in bad_role.value.message
    impostor = replace(credentials, certificate=admin.issuer.sign(csr, "platform-a", pki.ROLE_MEMBER).decode(), private_key=key_pem.decode())
    assert "never registered" in refused(impostor).message  # signed by the CA, never given to the registry: refused


def test_a_replica_without_the_ca_key_serves_every_call(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    offline = tmp_path / "admin-laptop" / "issuer"
    offline.parent.mkdir()
    shutil.move(data_dir / "issuer", offline)
    assert not list(data_dir.rglob("ca.key"))
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url}, environ={}))
    try:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}"), DataDir(offline.parent).issuer())
        with RegistryClient(admin.add_member("platform-a")) as client:
            client.tokenize([])
            receipt = client.submit_report(report(("cn_ric", RIC)))
            assert client.get_report(receipt.report_id).report_id == receipt.report_id
            assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.REVIEW
        admin.close()
    finally:
        running.stop(grace=None)


def test_certificates_issued_before_registration_keep_working(tmp_path: Path, empty_database: Database) -> None:
    """A registry from before 0009: ca.key in its data directory, a member whose certificate it signed and never kept."""
    schema.upgrade(empty_database, "0008")
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    for name in ("ca.key", "ca.pem"):  # the old layout
        shutil.copy(data_dir / "issuer" / name, data_dir / name)
    shutil.rmtree(data_dir / "issuer")
    legacy_issuer = Issuer(data_dir)  # `--issuer DATA_DIR` for the old layout
    keys = generate_keys("platform-a")
    old_certificate = legacy_issuer.sign(keys.csr_pem.encode(), "platform-a", pki.ROLE_MEMBER)
    public_key = dsse.public_key(keys.signing_key)
    with empty_database.session() as session:
        row = MemberRow(name="platform-a", status="ACTIVE", created_at=pki.not_after(old_certificate).replace(year=2020))
        session.add(row)
        session.flush()
        session.add(MemberKeyRow(key_id=dsse.key_id(public_key), member_id=row.id, public_key=public_key, valid_from=row.created_at))
        session.commit()
    time.sleep(1.1)  # X.509 times are whole seconds: the upgrade comes clearly after the signing
    schema.upgrade(empty_database)
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": empty_database.url}, environ={}))
    try:
        endpoint = f"127.0.0.1:{running.port}"
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(endpoint), legacy_issuer)
        old = Credentials(
            registry=REGISTRY_NAME, endpoint=endpoint, role="member", name="platform-a",
            ca_certificate=(data_dir / "ca.pem").read_text(), certificate=old_certificate.decode(), private_key=keys.tls_key_pem,
            signing_key=keys.signing_key.hex(), key_id=dsse.key_id(public_key), oprf_public_key=DataDir(data_dir).oprf_public_key().hex(),
        )
        with RegistryClient(old) as client:
            assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
        new_unregistered = replace(old, certificate=legacy_issuer.sign(keys.csr_pem.encode(), "platform-a", pki.ROLE_MEMBER).decode())
        assert "never registered" in refused(new_unregistered).message
        admin.call("RegisterCertificate", admin_pb2.RegisterCertificateRequest(certificate_pem=old_certificate.decode()))
        listed = admin.call("ListCertificates", admin_pb2.ListCertificatesRequest(role="member"))
        assert [c.certificate_sha256 for c in listed.certificates] == [pki.fingerprint(old_certificate)]  # type: ignore[attr-defined]
        admin.close()
    finally:
        running.stop(grace=None)


def test_a_new_probe_certificate_asks_the_health_service_and_nothing_else(
    registry: Registry, jpr: Callable[..., str], tmp_path: Path
) -> None:
    out = tmp_path / "haproxy-1.credentials.json"
    said = jpr("admin", "probes", "add", "haproxy-1", "--out", str(out), "--json")
    assert json.loads(said)["name"] == "haproxy-1" and out.stat().st_mode & 0o777 == 0o600
    assert "SERVING" in jpr("health", "--credentials", str(out))
    error = refused(Credentials.load(out))
    assert error.status is grpc.StatusCode.PERMISSION_DENIED
    jpr("admin", "cert", "revoke", json.loads(said)["certificate_sha256"], "--reason", "replaced")
    assert "UNAUTHENTICATED" in jpr("health", "--credentials", str(out), ok=False)


def test_a_renewed_ca_certificate_is_trusted_by_credentials_updated_with_trust_ca(
    registry: Registry, jpr: Callable[..., str], tmp_path: Path
) -> None:
    platform = enroll(jpr, tmp_path, "platform-a").with_endpoint(registry.endpoint)
    credentials_file = tmp_path / "platform-a.credentials.json"
    platform.save(credentials_file)
    jpr("admin", "ca", "renew", "--out", str(tmp_path / "new-ca.pem"))
    renewed = (tmp_path / "new-ca.pem").read_text()
    assert renewed != platform.ca_certificate
    jpr("member", "trust-ca", "--credentials", str(credentials_file), "--ca", str(tmp_path / "new-ca.pem"))
    updated = Credentials.load(credentials_file)
    assert updated.ca_certificate == renewed and updated.certificate == platform.certificate
    assert credentials_file.stat().st_mode & 0o777 == 0o600
    with RegistryClient(updated) as client:  # the registry's certificate verifies under the renewal: the same key
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR

    (tmp_path / "other-ca.pem").write_bytes(pki.create_ca("elsewhere").cert_pem)
    error = jpr("member", "trust-ca", "--credentials", str(credentials_file), "--ca", str(tmp_path / "other-ca.pem"), ok=False)
    assert "--ca" in error and "not signed by" in error
    assert Credentials.load(credentials_file).ca_certificate == renewed  # unchanged


def test_a_new_registry_admits_no_unregistered_certificate_however_it_was_backdated(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    """Migration 0009 on a new database sets no cut-off: only registered certificates get in."""
    credentials = member("platform-a")
    with registry.database.session() as session:
        assert session.scalar(select(CertificatePolicyRow.unregistered_issued_before)) is None
    key_pem, csr = pki.make_csr("platform-a", pki.ROLE_MEMBER)
    backdated = admin.issuer.sign(csr, "platform-a", pki.ROLE_MEMBER)  # signed now, never registered
    impostor = replace(credentials, certificate=backdated.decode(), private_key=key_pem.decode())
    assert "never registered" in refused(impostor).message


def test_an_upgraded_registry_admits_old_certificates_only_as_long_as_the_server_signed_them(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    """With a cut-off (a registry in use before 0009), a certificate signed before it but valid for longer
    than the server ever signed (a forgery with the CA key) is refused; one of the usual 730 days is admitted."""
    from datetime import UTC, datetime, timedelta

    credentials = member("platform-a")
    with registry.database.engine.begin() as conn:
        conn.execute(CertificatePolicyRow.__table__.update().values(unregistered_issued_before=datetime.now(UTC) + timedelta(days=1)))
    registry.running.view.catch_up()  # as a restart would read it
    registry.running.view.load()
    for days, admitted in ((pki.CLIENT_DAYS, True), (pki.CLIENT_DAYS + 400, False)):
        key_pem, csr = pki.make_csr("platform-a", pki.ROLE_MEMBER)
        certificate = admin.issuer.sign(csr, "platform-a", pki.ROLE_MEMBER, days)
        holder = replace(credentials, certificate=certificate.decode(), private_key=key_pem.decode())
        if admitted:
            with RegistryClient(holder) as client:
                assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
        else:
            assert "never registered" in refused(holder).message


def test_a_renewed_server_certificate_serves_members_after_a_restart_and_they_need_nothing_new(
    registry: Registry, jpr: Callable[..., str], member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    platform = member("platform-a")
    new = tmp_path / "new-server"
    new.mkdir()
    jpr("admin", "server-cert", "renew", "--out-dir", str(new), "--host", "registry.example.org", "--days", "30")
    assert (new / "server.key").stat().st_mode & 0o777 == 0o600
    renewed = (new / "server.pem").read_bytes()
    assert renewed != (registry.data_dir / "server.pem").read_bytes()
    replica = tmp_path / "replica"
    shutil.copytree(registry.data_dir, replica, ignore=shutil.ignore_patterns("issuer", "admin.credentials.json"))
    for name in ("server.key", "server.pem"):  # what the operator copies into each replica's data directory
        shutil.copy(new / name, replica / name)
    restarted = start(load_settings({"data_dir": replica, "listen": "127.0.0.1:0", "database_url": registry.running.database.url},
                                    environ={}))
    try:
        with RegistryClient(platform.with_endpoint(f"127.0.0.1:{restarted.port}")) as client:  # the same credentials file
            assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
        expiring = [c for c in json.loads(jpr("admin", "audit", "certs", "--json", "--endpoint", f"127.0.0.1:{restarted.port}"))["certificates"]
                    if c["flag"] == "EXPIRING"]
        assert [c["role"] for c in expiring] == ["server"]  # 30 days: the answering replica's own is flagged
    finally:
        restarted.stop(grace=None)
