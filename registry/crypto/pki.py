"""The association's X.509 CA for mutual TLS.

A caller's identity comes from its client certificate only: the role is the
subject's OrganizationalUnitName, the name its CommonName. Both are set by the
CA from the enrollment request's arguments, never copied from the CSR, so a
member cannot ask to become an admin.

Keys are ECDSA P-256: every TLS stack grpc ships with (BoringSSL) and every
platform language accepts them for both server and client certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ROLES",
    "ROLE_ADMIN",
    "ROLE_MEMBER",
    "ROLE_PROBE",
    "CertificateInfo",
    "KeyAndCert",
    "PkiError",
    "create_ca",
    "inspect_client_cert",
    "issued_at",
    "not_after",
    "renew_ca",
    "identity_from_cert",
    "issue_client_cert",
    "issue_server_cert",
    "make_csr",
]

ROLE_MEMBER = "member"
ROLE_ADMIN = "admin"
# A probe certificate may only ask the health service (container health checks).
ROLE_PROBE = "probe"
ROLES = frozenset({ROLE_MEMBER, ROLE_ADMIN, ROLE_PROBE})

# Certificates start a little in the past so a peer whose clock lags still accepts them.
_BACKDATE = datetime.timedelta(minutes=5)
_MIN_RSA_BITS = 2048
# Default validity in days: the certificate calendar of docs/operations.md.
CA_DAYS, SERVER_DAYS, CLIENT_DAYS = 3650, 825, 730
_CLIENT_CURVES = (ec.SECP256R1, ec.SECP384R1)


class PkiError(ValueError):
    """A certificate, CSR or key the CA refuses; the message says what is wrong."""


@dataclass(frozen=True)
class KeyAndCert:
    """A PEM private key (PKCS#8, unencrypted) and its PEM certificate."""

    key_pem: bytes
    cert_pem: bytes


def create_ca(registry_name: str, days: int = CA_DAYS) -> KeyAndCert:
    """A new self-signed CA for one registry; it signs every member, admin and server certificate."""
    if not registry_name:
        raise PkiError("registry name is empty")
    key = _new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, registry_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{registry_name} CA"),
        ]
    )
    builder = (
        _builder(subject, subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    certificate = builder.sign(key, hashes.SHA256())
    return KeyAndCert(key_pem=_key_pem(key), cert_pem=_cert_pem(certificate))


def renew_ca(ca: KeyAndCert, days: int = CA_DAYS) -> bytes:
    """A new certificate (PEM) for the same CA key and name, valid for `days` from now.

    Every certificate the old one signed still chains to it (same subject, same key identifier):
    replicas and members swap in the new ca.pem, nobody is re-issued.
    """
    key, old = _load_ca(ca)
    builder = _builder(old.subject, old.subject, key.public_key(), days)
    for extension in old.extensions:
        if not isinstance(extension.value, x509.SubjectKeyIdentifier):  # _builder adds the same one
            builder = builder.add_extension(extension.value, extension.critical)
    return _cert_pem(builder.sign(key, hashes.SHA256()))


def issue_server_cert(ca: KeyAndCert, hosts: Sequence[str], days: int = SERVER_DAYS) -> KeyAndCert:
    """A TLS server certificate for the registry, valid for each host name or IP address in `hosts`."""
    if not hosts:
        raise PkiError("a server certificate needs at least one host name or IP address")
    ca_key, ca_cert = _load_ca(ca)
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    builder = (
        _leaf_builder(ca_cert, subject, key.public_key(), days)
        .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    certificate = builder.sign(ca_key, hashes.SHA256())
    return KeyAndCert(key_pem=_key_pem(key), cert_pem=_cert_pem(certificate))


def make_csr(name: str, role: str) -> tuple[bytes, bytes]:
    """A new key and a CSR for it: (key PEM, CSR PEM). The key never leaves the caller.

    The CSR carries the name and role only as a courtesy; the CA sets both itself.
    """
    _check_identity(name, role)
    key = _new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_identity_name(name, role))
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def issue_client_cert(ca: KeyAndCert, csr_pem: bytes, name: str, role: str, days: int = CLIENT_DAYS) -> bytes:
    """A client certificate (PEM) for the CSR's key, naming `name` with role `role`.

    The CSR's own signature must verify (proof that the requester holds the
    key); its subject is ignored.
    """
    _check_identity(name, role)
    csr = _load_csr(csr_pem)
    public = _client_public_key(csr)
    ca_key, ca_cert = _load_ca(ca)
    builder = _leaf_builder(ca_cert, _identity_name(name, role), public, days).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    return _cert_pem(builder.sign(ca_key, hashes.SHA256()))


@dataclass(frozen=True)
class CertificateInfo:
    """What the registry records of a client certificate its CA signed."""

    sha256: str
    role: str
    name: str
    not_before: datetime.datetime
    not_after: datetime.datetime


def inspect_client_cert(ca_cert_pem: bytes, cert_pem: bytes, now: datetime.datetime) -> CertificateInfo:
    """The identity and validity of a client certificate, once it is shown to be signed by this CA
    for client authentication and not expired at `now`."""
    certificate = _load_cert(cert_pem)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    try:
        certificate.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise PkiError(f"the certificate is not signed by this registry's CA ({ca_cert.subject.rfc4514_string()})") from None
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usage:
        raise PkiError("the certificate is not a client certificate (no clientAuth extended key usage)")
    if certificate.not_valid_after_utc <= now:
        raise PkiError(f"the certificate expired at {certificate.not_valid_after_utc.isoformat()}")
    role, name = identity_from_cert(cert_pem)
    return CertificateInfo(
        sha256=fingerprint(cert_pem), role=role, name=name,
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
    )


def issued_at(cert_pem: bytes) -> datetime.datetime:
    """The latest moment a certificate this module signed can have been signed: its start undone of the
    backdating, plus the second X.509 times drop."""
    return _load_cert(cert_pem).not_valid_before_utc + _BACKDATE + datetime.timedelta(seconds=1)


def not_after(cert_pem: bytes) -> datetime.datetime:
    """When a certificate expires (UTC)."""
    return _load_cert(cert_pem).not_valid_after_utc


def fingerprint(cert_pem: bytes) -> str:
    """Hex SHA-256 of the certificate's DER: how a certificate is named for revocation."""
    return x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()


def identity_from_cert(cert_pem: bytes) -> tuple[str, str]:
    """(role, name) of a client certificate: its subject's OU and CN.

    Refuses a certificate without exactly one of each, or with an unknown role,
    so that a stray certificate can never be read as some default identity.
    """
    certificate = _load_cert(cert_pem)
    role = _single_attribute(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME, "OU (role)")
    name = _single_attribute(certificate.subject, NameOID.COMMON_NAME, "CN (name)")
    if role not in ROLES:
        raise PkiError(f"certificate role {role!r} is not one of {', '.join(sorted(ROLES))}")
    return role, name


def _load_cert(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise PkiError("not a PEM X.509 certificate (-----BEGIN CERTIFICATE-----)") from None


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: x509.Name, issuer: x509.Name, public: CertificateIssuerPublicKeyTypes, days: int
) -> x509.CertificateBuilder:
    """Fields every certificate shares: names, a random serial, validity, key identifier."""
    if days < 1:
        raise PkiError(f"validity of {days} days; a certificate must be valid for at least 1 day")
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _leaf_builder(
    ca_cert: x509.Certificate, subject: x509.Name, public: CertificateIssuerPublicKeyTypes, days: int
) -> x509.CertificateBuilder:
    """An end-entity certificate signed by the CA: not a CA itself, signing keys only."""
    ca_key_id = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        _builder(subject, ca_cert.subject, public, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _load_ca(ca: KeyAndCert) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key(ca.key_pem, password=None)
        certificate = x509.load_pem_x509_certificate(ca.cert_pem)
    except (ValueError, TypeError) as error:
        raise PkiError(f"CA key or certificate cannot be read: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("CA key is not an ECDSA key")
    return key, certificate


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise PkiError("not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)") from None
    if not csr.is_signature_valid:
        raise PkiError("the CSR's signature does not verify with its own public key")
    return csr


def _client_public_key(csr: x509.CertificateSigningRequest) -> CertificateIssuerPublicKeyTypes:
    """Key types every TLS stack accepts for client certificates: ECDSA P-256/P-384, RSA >= 2048."""
    public = csr.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, _CLIENT_CURVES):
        return public
    if isinstance(public, rsa.RSAPublicKey) and public.key_size >= _MIN_RSA_BITS:
        return public
    raise PkiError(f"CSR key {_describe_key(public)} is not accepted; use ECDSA P-256 (or P-384, RSA >= 2048)")


def _describe_key(public: object) -> str:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return f"ECDSA {public.curve.name}"
    if isinstance(public, rsa.RSAPublicKey):
        return f"RSA {public.key_size}"
    return type(public).__name__


def _check_identity(name: str, role: str) -> None:
    if not name:
        raise PkiError("certificate name is empty")
    if role not in ROLES:
        raise PkiError(f"role {role!r} is not one of {', '.join(sorted(ROLES))}")


def _identity_name(name: str, role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


def _single_attribute(subject: x509.Name, oid: x509.ObjectIdentifier, label: str) -> str:
    values = subject.get_attributes_for_oid(oid)
    if len(values) != 1:
        raise PkiError(f"certificate subject has {len(values)} {label} attributes; exactly one is required")
    value = values[0].value
    if not isinstance(value, str) or not value:
        raise PkiError(f"certificate subject {label} is empty")
    return value


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)
