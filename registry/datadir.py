"""The registry's data directory: name, OPRF key, log key, CA certificate, server certificate, database.

Secrets live in files here (mode 0600), never in the database, so that a
database backup alone cannot tokenize or issue certificates. The directory
itself is owner-only (0700), and so are the database and its -wal/-shm files.

What a serving replica needs is at the top: oprf.key, log.key, server.key, server.pem, ca.pem.
The CA key is not: `jpr init` writes it to issuer/ (ca.key and a copy of ca.pem),
which belongs offline on the admin's machine, where certificates are signed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from jpr_client.credentials import Credentials
from jpr_client.crypto import oprf
from jpr_client.transparency import note
from registry.crypto import pki
from registry.settings import CONFIG_FILE, DATABASE_FILE

OPRF_KEY = "oprf.key"
LOG_KEY = "log.key"  # the transparency log's note signer key (Ed25519), not the TLS key
CA_KEY, CA_CERT = "ca.key", "ca.pem"
ISSUER_DIR = "issuer"  # the CA key: offline, never on a replica
SERVER_KEY, SERVER_CERT = "server.key", "server.pem"
ADMIN_CREDENTIALS = "admin.credentials.json"
PROBE_CREDENTIALS = "probe.credentials.json"
# The first admin's and the probe's certificates (no keys): every replica registers them at start,
# so they are admitted wherever the admin's credentials file has gone.
INITIAL_CERTIFICATES = "initial-certificates.pem"
# The lookup index kept between starts by the serving registry itself (registry/store/index_snapshot.py).
INDEX_SNAPSHOT = "index.snapshot"
SERVER_HOSTS = ("localhost", "127.0.0.1")
# What a serving replica reads, and nothing else: `jpr init --owner` hands exactly these (and the
# SQLite database, when there is one) to the replicas' user, and docker/compose.yaml mounts exactly
# these. Never the CA key, nor the admin's credentials. The probe's are for the container health check.
REPLICA_FILES = (CONFIG_FILE, OPRF_KEY, LOG_KEY, CA_CERT, SERVER_KEY, SERVER_CERT, PROBE_CREDENTIALS, INITIAL_CERTIFICATES)


class DataDirError(RuntimeError):
    """A data directory that is missing, incomplete or already initialized."""


@dataclass(frozen=True)
class DataDir:
    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    def require(self) -> None:
        """Refuse a data directory that is not there, before anything tries a file in it."""
        if not self.path.is_dir():
            what = "is not a directory" if self.path.exists() else "does not exist"
            raise DataDirError(f"data directory {self.path} {what}: `jpr init --data-dir {self.path}` creates one")

    def _read(self, name: str) -> bytes:
        try:
            return self.file(name).read_bytes()
        except FileNotFoundError as error:
            raise DataDirError(f"{self.file(name)} is missing; is {self.path} a registry data directory? (`jpr init`)") from error

    def registry_name(self) -> str:
        from registry.settings import load_settings

        name = load_settings({"data_dir": self.path}, environ={}).registry_name
        if not name:
            raise DataDirError(f"{self.file(CONFIG_FILE)} names no registry_name")
        return name

    def oprf_key(self) -> bytes:
        return bytes.fromhex(self._read(OPRF_KEY).decode().strip())

    def oprf_public_key(self) -> bytes:
        """The public half of the OPRF key: what members pin and every Tokenize proof is checked against."""
        return oprf.public_key(self.oprf_key())

    def log_signer(self) -> note.Signer:
        """The key that signs the transparency log's checkpoints; its name is the checkpoints' origin."""
        if not self.file(LOG_KEY).exists():
            raise DataDirError(
                f"{self.file(LOG_KEY)} is missing: {self.path} was made before the transparency log; "
                f"`jpr init --data-dir {self.path} --add-log-key` creates the log key (then copy it to every replica)"
            )
        try:
            return note.Signer.from_key_string(self._read(LOG_KEY).decode().strip())
        except (UnicodeDecodeError, ValueError) as error:
            raise DataDirError(f"{self.file(LOG_KEY)} is not a signed-note signer key: {error}") from None

    def log_public_key(self) -> str:
        """The log key's verifier key string: what members pin (credentials' log_public_key)."""
        return self.log_signer().verifier().key_string()

    def add_log_key(self) -> str:
        """Create the log key of a data directory made before the transparency log; its verifier key."""
        if not self.file(CONFIG_FILE).exists():
            raise DataDirError(f"{self.path} holds no registry; `jpr init --data-dir {self.path}` creates one")
        self._write_log_key(self.registry_name())
        return self.log_public_key()

    def _write_log_key(self, name: str) -> None:
        signer_key, _ = note.generate_signer_key(name)
        self._write(LOG_KEY, signer_key.encode() + b"\n", secret=True)

    def ca_certificate(self) -> bytes:
        return self._read(CA_CERT)

    def server_certificate(self) -> bytes:
        return self._read(SERVER_CERT)

    def issuer(self) -> Issuer:
        return Issuer(self.path / ISSUER_DIR)

    def holds_ca_key(self) -> bool:
        """A data directory made before the CA key moved to issuer/ still has it at the top."""
        return self.file(CA_KEY).exists()

    def local_certificates(self) -> list[bytes]:
        """The client certificates `jpr init` made here (the first admin's, the probe's): from
        initial-certificates.pem, or, in a data directory made before it, from the credentials files."""
        if self.file(INITIAL_CERTIFICATES).exists():
            text = self.file(INITIAL_CERTIFICATES).read_text(encoding="ascii")
            return [block.encode() + b"-----END CERTIFICATE-----\n" for block in text.split("-----END CERTIFICATE-----\n") if block.strip()]
        return [Credentials.load(self.file(name)).certificate.encode() for name in (ADMIN_CREDENTIALS, PROBE_CREDENTIALS) if self.file(name).exists()]

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self._read(SERVER_KEY), self._read(SERVER_CERT))],
            root_certificates=self._read(CA_CERT),
            require_client_auth=True,
        )

    def initialize(self, *, registry_name: str, admin_name: str, endpoint: str, hosts: Sequence[str] = ()) -> None:
        """Create every secret and the admin's credentials; refuse to touch an existing registry."""
        if self.file(CONFIG_FILE).exists() or self.file(DATABASE_FILE).exists():
            raise DataDirError(f"{self.path} already holds a registry; refusing to overwrite it")
        if self.path.exists() and any(self.path.iterdir()):
            raise DataDirError(f"{self.path} is not empty; `jpr init` needs a new or empty directory")
        self._create_private_directory()
        ca = pki.create_ca(registry_name)
        self.issuer().create(ca)
        server = pki.issue_server_cert(ca, [*SERVER_HOSTS, *(h for h in hosts if h not in SERVER_HOSTS)])
        oprf_key = oprf.generate_key()
        self._write(OPRF_KEY, oprf_key.hex().encode() + b"\n", secret=True)
        self._write(CA_CERT, ca.cert_pem)
        self._write(SERVER_KEY, server.key_pem, secret=True)
        self._write(SERVER_CERT, server.cert_pem)
        self._write_log_key(registry_name)
        pinned = oprf.public_key(oprf_key).hex()
        admin = self._client_credentials(ca, registry_name, endpoint, admin_name, pki.ROLE_ADMIN, pinned, self.log_public_key())
        probe = self._client_credentials(ca, registry_name, endpoint, "probe", pki.ROLE_PROBE, pinned, self.log_public_key())
        admin.save(self.file(ADMIN_CREDENTIALS))
        probe.save(self.file(PROBE_CREDENTIALS))
        self._write(INITIAL_CERTIFICATES, (admin.certificate + probe.certificate).encode())
        # Written last: its presence marks a complete registry.
        self._write(CONFIG_FILE, f'registry_name = "{registry_name}"\n'.encode())

    def hand_over(self, uid: int, gid: int) -> None:
        """Give the directory, what a replica reads and the database files to the replicas' user (`jpr init --owner`).

        Modes stay owner-only; everything else (the CA key, the admin's credentials) stays with the caller.
        """
        database = [path.name for path in self.path.glob(f"{DATABASE_FILE}*")]
        for name in (".", *REPLICA_FILES, *database):
            os.chown(self.file(name), uid, gid, follow_symlinks=False)

    def _create_private_directory(self) -> None:
        _private_directory(self.path)

    @staticmethod
    def _client_credentials(
        ca: pki.KeyAndCert, registry_name: str, endpoint: str, name: str, role: str, oprf_public_key: str, log_public_key: str
    ) -> Credentials:
        key_pem, csr_pem = pki.make_csr(name, role)
        return Credentials(
            registry=registry_name,
            endpoint=endpoint,
            role=role,
            name=name,
            ca_certificate=ca.cert_pem.decode(),
            certificate=pki.issue_client_cert(ca, csr_pem, name, role).decode(),
            private_key=key_pem.decode(),
            oprf_public_key=oprf_public_key,
            log_public_key=log_public_key,
        )

    def _write(self, name: str, data: bytes, *, secret: bool = False) -> None:
        write_new(self.file(name), data, secret=secret)


@dataclass(frozen=True)
class Issuer:
    """Where the CA key is (offline): the only place certificates are signed."""

    path: Path

    def ca(self) -> pki.KeyAndCert:
        try:
            return pki.KeyAndCert(key_pem=(self.path / CA_KEY).read_bytes(), cert_pem=(self.path / CA_CERT).read_bytes())
        except FileNotFoundError as error:
            raise DataDirError(
                f"{error.filename} is missing: --issuer names the directory holding the CA key (ca.key and ca.pem; "
                f"`jpr init` wrote them to DATA_DIR/{ISSUER_DIR}, registries made before that keep them in DATA_DIR)"
            ) from None

    def create(self, ca: pki.KeyAndCert) -> None:
        _private_directory(self.path)
        write_new(self.path / CA_KEY, ca.key_pem, secret=True)
        write_new(self.path / CA_CERT, ca.cert_pem)

    def sign(self, csr_pem: bytes, name: str, role: str, days: int = pki.CLIENT_DAYS) -> bytes:
        """A client certificate for the CSR's key; the registry admits it once it is registered."""
        return pki.issue_client_cert(self.ca(), csr_pem, name, role, days)


def write_new(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Create `path` (refused if it exists): 0600 for a secret, 0644 otherwise."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    except FileExistsError:
        raise DataDirError(f"{path} exists; refusing to overwrite it") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _private_directory(path: Path) -> None:
    """Owner-only (0700) before any file is written in it, also when given an existing empty directory."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        path.chmod(0o700)


def new_registry_name() -> str:
    return f"jpr-{secrets.token_hex(4)}"
