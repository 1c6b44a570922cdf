"""Shared fixtures: a real registry (data directory, SQLite file, mutual TLS) on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc
from jpr_client.client import call, secure_channel
from jpr_client.credentials import Credentials
from registry.cli.enrollment import Issued, generate_keys
from registry.crypto import pki
from registry.datadir import ADMIN_CREDENTIALS, DataDir, Issuer
from registry.server.app import RunningRegistry, start
from registry.settings import load_settings

pytest_plugins = ["tests.backends"]

REGISTRY_NAME = "jpr-test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked long run first, in their order; the rest follow in theirs.

    With `-n 2 --dist worksteal` (make test) each worker starts on half of this list and
    takes from the other's rest once its own is done, so the last minutes are short tests
    on both workers, not one worker finishing a long one while the other waits.
    """
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


class Clock:
    """A settable clock for the registry under test (UTC)."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def __call__(self) -> datetime:
        from datetime import timedelta

        return datetime.now(UTC) + timedelta(seconds=self.offset_seconds)


class Ticks:
    """A settable monotonic clock (seconds) for rate limits, view lag and event gaps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Registry:
    data_dir: Path
    running: RunningRegistry
    clock: Clock

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    @property
    def database(self) -> Database:
        return self.running.database

    def admin_credentials(self) -> Credentials:
        return Credentials.load(self.data_dir / ADMIN_CREDENTIALS).with_endpoint(self.endpoint)

    def admin(self) -> AdminClient:
        return AdminClient(self.admin_credentials(), DataDir(self.data_dir).issuer())


class AdminClient:
    """Admin calls for tests: raise jpr_client.RPCError like the SDK does. Certificates are signed
    with `issuer` (the CA key) here, then registered, as the `jpr admin` commands do."""

    def __init__(self, credentials: Credentials, issuer: Issuer) -> None:
        self.credentials = credentials
        self.issuer = issuer
        self.channel = secure_channel(credentials)
        self.stub = admin_pb2_grpc.AdminStub(self.channel)

    def call(self, method: str, request: object) -> object:
        return call(method, getattr(self.stub, method), request, 10.0)

    def add_member(self, name: str) -> Credentials:
        keys = generate_keys(name)
        request = keys.request()
        response: admin_pb2.CreateMemberResponse = self.call(  # type: ignore[assignment]
            "CreateMember",
            admin_pb2.CreateMemberRequest(
                name=name, signing_public_key=request.signing_public_key,
                certificate_pem=self.issuer.sign(request.csr_pem.encode(), name, pki.ROLE_MEMBER).decode(),
            ),
        )
        issued = Issued(
            name=name,
            registry=response.registry_name,
            endpoint=self.credentials.endpoint,
            ca_certificate=response.ca_certificate_pem,
            certificate=response.certificate_pem,
            key_id=response.key_id,
            oprf_public_key=response.oprf_public_key.hex(),
            log_public_key=response.log_public_key,
        )
        return keys.credentials(issued)

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    """A serving registry on the backend under test, with a fresh database."""
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:50051")
    clock = Clock()
    settings = load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url}, environ={})
    running = start(settings, clock=clock)
    try:
        yield Registry(data_dir=data_dir, running=running, clock=clock)
    finally:
        running.stop(grace=None)


@pytest.fixture
def admin(registry: Registry) -> Iterator[AdminClient]:
    client = registry.admin()
    yield client
    client.close()


@pytest.fixture
def member(admin: AdminClient) -> Callable[[str], Credentials]:
    return admin.add_member
