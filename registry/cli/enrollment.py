"""A platform's own keys, the request it sends the association, and what comes back.

The platform generates its Ed25519 signing key and its TLS key; only the
public signing key and a certificate request leave it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from jpr_client.credentials import Credentials
from jpr_client.crypto import dsse
from registry.crypto import pki


def _write_new(path: Path, data: dict[str, str], *, secret: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(_json(data))


def _json(data: dict[str, str]) -> str:
    return json.dumps(data, indent=2) + "\n"


@contextmanager
def claim(path: Path, newline: str | None = None) -> Iterator[TextIO]:
    """Create `path` (0600, must not exist) before the work that fills it; remove it if the work fails.
    `newline` as for `open` ("" for the csv module)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ValueError(f"{path} exists; refusing to overwrite it") from None
    except OSError as error:
        raise ValueError(f"cannot create {path}: {error.strerror}") from None
    handle = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
    try:
        yield handle
    except BaseException:
        handle.close()
        path.unlink()
        raise
    handle.close()


def _read(path: Path, kind: str) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {kind} file {path}: {error}") from error
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise ValueError(f"{path} is not a JPR {kind} file")
    return data


@dataclass(frozen=True)
class EnrollmentRequest:
    """Public: what the platform sends to the association."""

    name: str
    signing_public_key: bytes
    csr_pem: str

    def save(self, path: Path) -> None:
        _write_new(path, {"kind": "request", "name": self.name, "signing_public_key": self.signing_public_key.hex(), "csr_pem": self.csr_pem}, secret=False)

    @classmethod
    def load(cls, path: Path) -> EnrollmentRequest:
        data = _read(path, "request")
        return cls(name=data["name"], signing_public_key=bytes.fromhex(data["signing_public_key"]), csr_pem=data["csr_pem"])


@dataclass(frozen=True)
class Issued:
    """Public: what the association sends back."""

    name: str
    registry: str
    endpoint: str
    ca_certificate: str
    certificate: str
    key_id: str
    oprf_public_key: str = ""  # hex; files issued before tokens were verified have none
    log_public_key: str = ""  # the transparency log's note verifier key; files issued before the log have none

    def save(self, path: Path) -> None:
        _write_new(path, {"kind": "issued", **asdict(self)}, secret=False)

    def to_json(self) -> str:
        return _json({"kind": "issued", **asdict(self)})

    @classmethod
    def load(cls, path: Path) -> Issued:
        data = _read(path, "issued")
        data.pop("kind")
        return cls(**data)


@dataclass(frozen=True)
class PlatformKeys:
    """Secret: stays on the platform."""

    name: str
    signing_key: bytes
    tls_key_pem: str
    csr_pem: str

    def request(self) -> EnrollmentRequest:
        return EnrollmentRequest(name=self.name, signing_public_key=dsse.public_key(self.signing_key), csr_pem=self.csr_pem)

    def credentials(self, issued: Issued) -> Credentials:
        if issued.key_id != dsse.key_id(dsse.public_key(self.signing_key)):
            raise ValueError(f"the issued key id {issued.key_id} is not this platform's signing key")
        return Credentials(
            registry=issued.registry,
            endpoint=issued.endpoint,
            role=pki.ROLE_MEMBER,
            name=self.name,
            ca_certificate=issued.ca_certificate,
            certificate=issued.certificate,
            private_key=self.tls_key_pem,
            signing_key=self.signing_key.hex(),
            key_id=issued.key_id,
            oprf_public_key=issued.oprf_public_key,
            log_public_key=issued.log_public_key,
        )

    def save(self, path: Path) -> None:
        _write_new(path, {"kind": "keys", "name": self.name, "signing_key": self.signing_key.hex(), "tls_key_pem": self.tls_key_pem, "csr_pem": self.csr_pem}, secret=True)

    @classmethod
    def load(cls, path: Path) -> PlatformKeys:
        data = _read(path, "keys")
        return cls(name=data["name"], signing_key=bytes.fromhex(data["signing_key"]), tls_key_pem=data["tls_key_pem"], csr_pem=data["csr_pem"])


def generate_keys(name: str) -> PlatformKeys:
    key_pem, csr_pem = pki.make_csr(name, pki.ROLE_MEMBER)
    return PlatformKeys(name=name, signing_key=dsse.generate_signing_key(), tls_key_pem=key_pem.decode(), csr_pem=csr_pem.decode())
