"""SDK calls: typed errors with the gRPC status, deadlines, retries only where safe."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from jpr_client import RPCError, RegistryClient, RetryConfig
from jpr_client.client import channel_target, service_config
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


def test_every_call_has_a_deadline(silent_port: int) -> None:
    with RegistryClient(credentials(f"127.0.0.1:{silent_port}"), timeout=0.5, retry=RetryConfig(attempts=1)) as client:
        started = time.monotonic()
        with pytest.raises(RPCError) as caught:
            client.get_report("00000000-0000-0000-0000-000000000000")
    assert caught.value.status in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    assert time.monotonic() - started < 5


def test_the_deadline_covers_every_attempt_of_the_channels_retry_policy(closed_port: int) -> None:
    """Retries are gRPC's own: four 5-second backoffs still end at the call's 1-second deadline."""
    slow_retries = RetryConfig(attempts=5, initial_backoff=5.0, max_backoff=5.0)
    with RegistryClient(credentials(f"127.0.0.1:{closed_port}"), timeout=1.0, retry=slow_retries) as client:
        started = time.monotonic()
        with pytest.raises(RPCError) as caught:
            client.get_report("00000000-0000-0000-0000-000000000000")
    assert caught.value.status in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    assert caught.value.method == "GetReport"
    assert time.monotonic() - started < 3.0


def test_the_service_config_retries_only_unavailable_and_only_calls_safe_to_repeat() -> None:
    from grpc_health.v1 import health_pb2

    from jpr_client.api.jpr.v1 import admin_pb2, log_pb2, registry_pb2

    config = service_config(RetryConfig(attempts=3, initial_backoff=0.25, max_backoff=4.0))
    [method_config] = config["methodConfig"]
    assert method_config["retryPolicy"] == {
        "maxAttempts": 3, "initialBackoff": "0.25s", "maxBackoff": "4s", "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    named = {(n["service"], n["method"]) for n in method_config["name"]}
    served = {(s.full_name, m.name) for f in (registry_pb2, admin_pb2, log_pb2, health_pb2) for s in f.DESCRIPTOR.services_by_name.values()
              for m in s.methods}
    assert named <= served  # every name is a real method
    assert ("jpr.v1.Admin", "ListReports") in named and ("jpr.v1.Registry", "LookupBatch") in named
    decisions = {"AcceptReport", "RejectReport", "LiftListing", "CreateMember", "SuspendMember", "RevokeCertificate", "DecideAppeal"}
    assert not {m for s, m in named if m in decisions}  # an admin decision is never re-sent
    assert ("jpr.v1.Registry", "WatchChanges") not in named  # the watch loop resumes from its cursor instead
    assert service_config(RetryConfig(attempts=1)) == {"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": []}
    with pytest.raises(ValueError, match="1 to 5"):
        RetryConfig(attempts=6)


def test_unreadable_credentials_file_is_a_typed_error(tmp_path: Any) -> None:
    path = tmp_path / "creds.json"
    path.write_text('{"version": 1, "endpoint": "x"}')
    with pytest.raises(CredentialsError, match="missing"):
        Credentials.load(path)


@pytest.mark.parametrize(("value", "seconds"), [
    ("250", 0.25), (b"1000", 1.0), ("0", 0.0),
    ("-1", None), ("", None), ("2.5", None), ("abc", None), ("١٢", None), ("9" * 5000, None),
])
def test_a_pushback_trailer_is_a_wait_only_when_it_is_whole_milliseconds(value: str | bytes, seconds: float | None) -> None:
    from jpr_client.errors import pushback_seconds

    assert pushback_seconds(value) == seconds


def test_an_endpoint_list_becomes_one_target_checked_against_its_first_address() -> None:
    assert channel_target("registry.example.org:50051") == ("registry.example.org:50051", [])
    assert channel_target("dns:///registry.example.org:50051") == ("dns:///registry.example.org:50051", [])
    assert channel_target("10.0.0.7:50051, 10.0.0.8:50051") == (
        "ipv4:10.0.0.7:50051,10.0.0.8:50051", [("grpc.ssl_target_name_override", "10.0.0.7")],
    )
    assert channel_target("[2001:db8::7]:50051,[2001:db8::8]:50051")[0] == "ipv6:[2001:db8::7]:50051,[2001:db8::8]:50051"
    with pytest.raises(ValueError, match=r"'registry-1:50051' is not ADDRESS:PORT .* use dns:///NAME:PORT"):
        channel_target("registry-1:50051,registry-2:50051")
    with pytest.raises(ValueError, match="mixes IPv4 and IPv6"):
        channel_target("10.0.0.7:50051,[2001:db8::8]:50051")
