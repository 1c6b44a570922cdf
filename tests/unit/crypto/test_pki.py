"""The association's CA, checked through a real gRPC mutual-TLS handshake on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from registry.crypto import pki

WHOAMI = "/jpr.test.Probe/Whoami"


@pytest.fixture(scope="module")
def ca() -> pki.KeyAndCert:
    return pki.create_ca("jpr-test")


@pytest.fixture(scope="module")
def member(ca: pki.KeyAndCert) -> pki.KeyAndCert:
    key_pem, csr_pem = pki.make_csr("acme", pki.ROLE_MEMBER)
    return pki.KeyAndCert(key_pem, pki.issue_client_cert(ca, csr_pem, "acme", pki.ROLE_MEMBER))


def _whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Echoes the caller's auth context, so tests see what a servicer sees."""
    # grpc-stubs types each value as bytes; at run time it is a list of bytes.
    auth = {key: [value.decode() for value in values] for key, values in context.auth_context().items()}  # type: ignore[attr-defined]
    return json.dumps(auth).encode()


@pytest.fixture(scope="module")
def port(ca: pki.KeyAndCert) -> Iterator[int]:
    server_cert = pki.issue_server_cert(ca, ["localhost", "127.0.0.1"])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    probe = grpc.method_handlers_generic_handler(
        "jpr.test.Probe", {"Whoami": grpc.unary_unary_rpc_method_handler(_whoami)}
    )
    server.add_generic_rpc_handlers((probe,))
    credentials = grpc.ssl_server_credentials(
        [(server_cert.key_pem, server_cert.cert_pem)], root_certificates=ca.cert_pem, require_client_auth=True
    )
    bound = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield bound
    server.stop(None)


def _channel(target: str, ca: pki.KeyAndCert, client: pki.KeyAndCert | None) -> grpc.Channel:
    if client is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem)
    else:
        credentials = grpc.ssl_channel_credentials(ca.cert_pem, client.key_pem, client.cert_pem)
    return grpc.secure_channel(target, credentials)


def _health_check(target: str, ca: pki.KeyAndCert, client: pki.KeyAndCert | None) -> int:
    with _channel(target, ca, client) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    status: int = response.status
    return status


def test_a_client_with_an_issued_certificate_passes_the_health_check(
    ca: pki.KeyAndCert, member: pki.KeyAndCert, port: int
) -> None:
    assert _health_check(f"localhost:{port}", ca, member) == health_pb2.HealthCheckResponse.SERVING


def test_the_server_certificate_is_valid_for_its_ip_address(ca: pki.KeyAndCert, member: pki.KeyAndCert, port: int) -> None:
    assert _health_check(f"127.0.0.1:{port}", ca, member) == health_pb2.HealthCheckResponse.SERVING


def test_a_client_with_a_certificate_from_another_ca_is_refused(ca: pki.KeyAndCert, port: int) -> None:
    other_ca = pki.create_ca("someone-else")
    key_pem, csr_pem = pki.make_csr("acme", pki.ROLE_ADMIN)
    impostor = pki.KeyAndCert(key_pem, pki.issue_client_cert(other_ca, csr_pem, "acme", pki.ROLE_ADMIN))
    with pytest.raises(grpc.RpcError) as raised:
        _health_check(f"localhost:{port}", ca, impostor)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_client_without_a_certificate_is_refused(ca: pki.KeyAndCert, port: int) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        _health_check(f"localhost:{port}", ca, None)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_handler_finds_the_client_certificate_pem_in_the_auth_context(
    ca: pki.KeyAndCert, member: pki.KeyAndCert, port: int
) -> None:
    with _channel(f"localhost:{port}", ca, member) as channel:
        whoami = channel.unary_unary(WHOAMI, request_serializer=None, response_deserializer=None)
        auth = json.loads(whoami(b"", timeout=10))
    assert auth["x509_pem_cert"] == [member.cert_pem.decode()]
    assert auth["x509_common_name"] == ["acme"]
    assert auth["transport_security_type"] == ["ssl"]
    assert pki.identity_from_cert(auth["x509_pem_cert"][0].encode()) == (pki.ROLE_MEMBER, "acme")


def test_identity_from_cert_returns_role_and_name(ca: pki.KeyAndCert) -> None:
    key_pem, csr_pem = pki.make_csr("secretariat", pki.ROLE_ADMIN)
    cert_pem = pki.issue_client_cert(ca, csr_pem, "secretariat", pki.ROLE_ADMIN)
    assert pki.identity_from_cert(cert_pem) == (pki.ROLE_ADMIN, "secretariat")


def test_the_ca_sets_name_and_role_from_its_arguments_not_from_the_csr(ca: pki.KeyAndCert) -> None:
    _, csr_pem = pki.make_csr("mallory", pki.ROLE_ADMIN)
    cert_pem = pki.issue_client_cert(ca, csr_pem, "acme", pki.ROLE_MEMBER)
    assert pki.identity_from_cert(cert_pem) == (pki.ROLE_MEMBER, "acme")


def test_client_certificates_are_for_client_auth_signed_by_the_ca(ca: pki.KeyAndCert, member: pki.KeyAndCert) -> None:
    certificate = x509.load_pem_x509_certificate(member.cert_pem)
    ca_certificate = x509.load_pem_x509_certificate(ca.cert_pem)
    certificate.verify_directly_issued_by(ca_certificate)
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_server_certificates_name_dns_hosts_and_ip_addresses(ca: pki.KeyAndCert) -> None:
    server = x509.load_pem_x509_certificate(pki.issue_server_cert(ca, ["registry.example", "10.0.0.7", "::1"]).cert_pem)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["registry.example"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.7", "::1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_the_ca_certificate_is_a_ca_named_after_the_registry(ca: pki.KeyAndCert) -> None:
    certificate = x509.load_pem_x509_certificate(ca.cert_pem)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "jpr-test"


def test_a_csr_whose_signature_does_not_verify_is_refused(ca: pki.KeyAndCert) -> None:
    _, csr_pem = pki.make_csr("acme", pki.ROLE_MEMBER)
    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature's s value
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(pki.PkiError, match="signature does not verify"):
        pki.issue_client_cert(ca, tampered, "acme", pki.ROLE_MEMBER)


def test_a_csr_that_is_not_pem_is_refused(ca: pki.KeyAndCert) -> None:
    with pytest.raises(pki.PkiError, match="not a PEM certificate signing request"):
        pki.issue_client_cert(ca, b"hello", "acme", pki.ROLE_MEMBER)


def test_a_csr_with_a_key_tls_stacks_may_not_accept_is_refused(ca: pki.KeyAndCert) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, None)
    with pytest.raises(pki.PkiError, match="CSR key Ed25519PublicKey is not accepted"):
        pki.issue_client_cert(ca, csr.public_bytes(serialization.Encoding.PEM), "acme", pki.ROLE_MEMBER)


def test_a_p384_csr_is_accepted(ca: pki.KeyAndCert) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA384())
    cert_pem = pki.issue_client_cert(ca, csr.public_bytes(serialization.Encoding.PEM), "acme", pki.ROLE_MEMBER)
    assert pki.identity_from_cert(cert_pem) == (pki.ROLE_MEMBER, "acme")


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [("acme", "root", "role 'root' is not one of admin, member"), ("", pki.ROLE_MEMBER, "certificate name is empty")],
)
def test_unknown_roles_and_empty_names_are_refused(ca: pki.KeyAndCert, name: str, role: str, message: str) -> None:
    _, csr_pem = pki.make_csr("acme", pki.ROLE_MEMBER)
    with pytest.raises(pki.PkiError, match=message):
        pki.issue_client_cert(ca, csr_pem, name, role)
    with pytest.raises(pki.PkiError, match=message):
        pki.make_csr(name, role)


def test_identity_from_a_certificate_without_a_role_is_refused(ca: pki.KeyAndCert) -> None:
    server_cert = pki.issue_server_cert(ca, ["localhost"]).cert_pem
    with pytest.raises(pki.PkiError, match=r"0 OU \(role\) attributes"):
        pki.identity_from_cert(server_cert)


def test_identity_from_something_that_is_not_a_certificate_is_refused() -> None:
    with pytest.raises(pki.PkiError, match="not a PEM X.509 certificate"):
        pki.identity_from_cert(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_a_server_certificate_needs_a_host(ca: pki.KeyAndCert) -> None:
    with pytest.raises(pki.PkiError, match="at least one host"):
        pki.issue_server_cert(ca, [])


def test_pki_errors_are_value_errors() -> None:
    assert issubclass(pki.PkiError, ValueError)
