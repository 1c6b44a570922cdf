"""Credentials files: everything a member or an admin needs to reach the registry.

One JSON file (mode 0600) holds the endpoint, the association's CA
certificate, the client's TLS certificate and key, the registry's OPRF public
key (pinned: every Tokenize answer must prove evaluation under it), and for
members the Ed25519 signing key. It never leaves the platform that generated
its keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jpr_client.transparency.note import Verifier

FORMAT_VERSION = 1
_OPRF_PUBLIC_KEY_SIZE = 32


# A certificate expiring within this many days is flagged: the SDK warns, `jpr admin audit certs` lists it.
EXPIRY_WARNING_DAYS = 30


class CertificateExpiryWarning(UserWarning):
    """The client certificate expires soon (or has): renew it before calls are refused."""


class CredentialsError(ValueError):
    """A credentials file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Credentials:
    """What identifies one caller to one registry.

    Example:
        >>> creds = Credentials.load("platform-a.credentials.json")  # doctest: +SKIP
        >>> creds.endpoint
        '127.0.0.1:50051'
    """

    registry: str
    endpoint: str
    role: str  # "member" or "admin"
    name: str
    ca_certificate: str
    certificate: str
    private_key: str
    signing_key: str = ""  # hex of the 32-byte Ed25519 seed (members only)
    key_id: str = ""
    oprf_public_key: str = ""  # hex of the registry's 32-byte OPRF public key (ristretto255 element)
    log_public_key: str = ""  # the transparency log's note verifier key (C2SP signed-note): checkpoints must verify under it

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read a credentials file written by `jpr init` or `jpr admin member add`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise CredentialsError(f"cannot read credentials file {path}: {error.strerror}") from error
        except ValueError as error:
            raise CredentialsError(f"credentials file {path} is not JSON: {error}") from error
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise CredentialsError(f"credentials file {path} is not a version {FORMAT_VERSION} JPR credentials file")
        data.pop("version")
        try:
            credentials = cls(**data)
        except TypeError as error:
            raise CredentialsError(f"credentials file {path} has unexpected or missing fields: {error}") from error
        if credentials.oprf_public_key:
            _ = credentials.pinned_oprf_public_key  # refuse a malformed key now, not at the first lookup
        if credentials.log_public_key:
            _ = credentials.log_verifier
        return credentials

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file readable by its owner only; refuse to overwrite one."""
        fd = os.open(Path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())

    def to_json(self) -> str:
        return json.dumps({"version": FORMAT_VERSION, **asdict(self)}, indent=2) + "\n"

    @property
    def certificate_expires_at(self) -> datetime:
        """When the client certificate expires (UTC): renew it before (docs/operations.md)."""
        from cryptography import x509  # here: loading credentials does not load X.509

        try:
            return x509.load_pem_x509_certificate(self.certificate.encode()).not_valid_after_utc
        except ValueError as error:
            raise CredentialsError(f"the credentials' certificate is not a PEM X.509 certificate: {error}") from error

    def expiry_warning(self, now: datetime | None = None) -> str | None:
        """What to tell the holder when the certificate expires within EXPIRY_WARNING_DAYS; None otherwise."""
        expires = self.certificate_expires_at
        left = expires - (now or datetime.now(UTC))
        if left > timedelta(days=EXPIRY_WARNING_DAYS):
            return None
        when = "expired" if left.total_seconds() <= 0 else f"expires in {left.days} days"
        return (
            f"the client certificate of {self.role} {self.name!r} {when} ({expires.isoformat()}): "
            "send a new request (`jpr member keygen`) to the association for a renewed certificate"
        )

    def with_endpoint(self, endpoint: str) -> Credentials:
        return replace(self, endpoint=endpoint)

    @property
    def pinned_oprf_public_key(self) -> bytes:
        """The registry's OPRF public key these credentials pin (32 bytes).

        Credentials written before JPR verified tokens have none: the member
        needs new credentials from the association, which carry the key.

        Example:
            >>> Credentials.load("platform-a.credentials.json").pinned_oprf_public_key.hex()  # doctest: +SKIP
            'c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e'
        """
        if not self.oprf_public_key:
            raise CredentialsError(
                f"the credentials of {self.role} {self.name!r} pin no registry OPRF public key (oprf_public_key), "
                "so tokens cannot be verified; ask the association for new credentials (`jpr admin member add`)"
            )
        try:
            key = bytes.fromhex(self.oprf_public_key)
        except ValueError:
            key = b""
        if len(key) != _OPRF_PUBLIC_KEY_SIZE:
            raise CredentialsError(f"oprf_public_key in the credentials of {self.name!r} is not {_OPRF_PUBLIC_KEY_SIZE} bytes of hex")
        return key

    @property
    def log_verifier(self) -> Verifier:
        """The verifier of the registry's transparency-log checkpoints these credentials pin.

        Example:
            >>> Credentials.load("platform-a.credentials.json").log_verifier.name  # doctest: +SKIP
            'jpr-1a2b3c4d'
        """
        if not self.log_public_key:
            raise CredentialsError(
                f"the credentials of {self.role} {self.name!r} pin no transparency-log key (log_public_key), so checkpoints "
                "cannot be verified; ask the association for new credentials (`jpr admin member add`)"
            )
        from jpr_client.transparency.note import Verifier  # here: loading credentials does not load Ed25519

        try:
            return Verifier.from_key_string(self.log_public_key)
        except ValueError as error:  # NoteError is one
            raise CredentialsError(f"log_public_key in the credentials of {self.name!r} is not a signed-note verifier key: {error}") from None

    @property
    def signing_seed(self) -> bytes:
        if not self.signing_key:
            raise CredentialsError(f"{self.role} {self.name!r} has no signing key in its credentials")
        return bytes.fromhex(self.signing_key)
