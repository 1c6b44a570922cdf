"""SDK calls: typed errors with the gRPC status, deadlines, retries only where safe."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from jpr_client import RPCError, RegistryClient, RetryConfig
from jpr_client.client import call_with_retry
from jpr_client.credentials import Credentials, CredentialsError
from registry.crypto import pki


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung registry)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def credentials(endpoint: str) -> Credentials:
    ca = pki.create_ca("test")
    key_pem, csr_pem = pki.make_csr("platform-a", pki.ROLE_MEMBER)
    return Credentials(
        registry="test", endpoint=endpoint, role="member", name="platform-a", ca_certificate=ca.cert_pem.decode(),
        certificate=pki.issue_client_cert(ca, csr_pem, "platform-a", pki.ROLE_MEMBER).decode(), private_key=key_pem.decode(),
    )


def counting(stub: Callable[..., Any]) -> tuple[Callable[..., Any], list[float]]:
    calls: list[float] = []

    def call(request: Any, timeout: float) -> Any:
        calls.append(timeout)
        return stub(request, timeout=timeout)

    return call, calls


def test_every_call_has_a_deadline(silent_port: int) -> None:
    with RegistryClient(credentials(f"127.0.0.1:{silent_port}"), timeout=0.5, retry=RetryConfig(attempts=1)) as client:
        started = time.monotonic()
        with pytest.raises(RPCError) as caught:
            client.get_report("00000000-0000-0000-0000-000000000000")
    assert caught.value.status in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    assert time.monotonic() - started < 5


def test_unavailable_is_retried_with_backoff_then_raised_typed(closed_port: int) -> None:
    with RegistryClient(credentials(f"127.0.0.1:{closed_port}")) as client:
        stub, calls = counting(client._stub.GetReport)
        with pytest.raises(RPCError) as caught:
            call_with_retry("GetReport", stub, _request(), 2.0, RetryConfig(attempts=3, initial_backoff=0.01))
    assert caught.value.status is grpc.StatusCode.UNAVAILABLE
    assert caught.value.method == "GetReport"
    assert len(calls) == 3 and all(t == 2.0 for t in calls)


def test_admin_decisions_are_tried_once_and_lookups_retried(closed_port: int, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI retries a listing but never re-sends an AcceptReport (not safe to repeat)."""
    from registry.cli import admin as admin_cli
    from registry.cli.main import main

    creds = tmp_path / "admin.json"
    credentials(f"127.0.0.1:{closed_port}").save(creds)
    attempts: list[str] = []
    real = admin_cli.call_with_retry

    def spy(method: str, stub: Any, request: Any, timeout: float, retry: RetryConfig) -> Any:
        attempts.append(f"{method}:{retry.attempts}")
        return real(method, stub, request, timeout, RetryConfig(attempts=retry.attempts, initial_backoff=0.001))

    monkeypatch.setattr(admin_cli, "call_with_retry", spy)
    assert main(["admin", "reports", "accept", "00000000-0000-0000-0000-000000000000", "--credentials", str(creds)]) == 1
    assert main(["admin", "reports", "list", "--credentials", str(creds)]) == 1
    assert attempts == ["AcceptReport:1", "ListReports:4"]


def test_unreadable_credentials_file_is_a_typed_error(tmp_path: Any) -> None:
    path = tmp_path / "creds.json"
    path.write_text('{"version": 1, "endpoint": "x"}')
    with pytest.raises(CredentialsError, match="missing"):
        Credentials.load(path)


def _request() -> Any:
    from jpr_client.api.jpr.v1 import registry_pb2

    return registry_pb2.GetReportRequest(report_id="00000000-0000-0000-0000-000000000000")
