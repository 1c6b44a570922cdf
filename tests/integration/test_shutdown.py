"""Server limits: graceful shutdown (health says NOT_SERVING first, new calls refused) and the concurrency cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jpr_client import Credentials, RegistryClient, RPCError, Verdict
from jpr_client.client import secure_channel
from registry.api.jpr.v1 import registry_pb2
from registry.datadir import ADMIN_CREDENTIALS, PROBE_CREDENTIALS, DataDir
from registry.server.app import start
from registry.settings import load_settings
from tests.conftest import REGISTRY_NAME, AdminClient, Registry
from tests.integration.test_lookup import RIC, applicant


def test_stopping_says_not_serving_then_refuses_new_calls(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    probe = Credentials.load(registry.data_dir / PROBE_CREDENTIALS).with_endpoint(registry.endpoint)
    channel = secure_channel(probe)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
    statuses = [next(watch).status]
    client = RegistryClient(member("platform-a"))
    assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    stopper = threading.Thread(target=registry.running.stop, kwargs={"grace": 3.0})
    stopper.start()
    statuses.append(next(watch).status)  # the change reaches watchers while calls in flight finish
    stopper.join(10)
    assert statuses == [health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING]
    started = time.monotonic()
    try:
        client.lookup(applicant(("cn_ric", RIC)))
        refused = False
    except Exception:  # noqa: BLE001 - the SDK's RPCError after its retries: nobody serves
        refused = True
    assert refused and time.monotonic() - started < 10
    client.close()
    channel.close()


def test_calls_beyond_the_concurrency_cap_are_resource_exhausted(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    flags = {"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url, "max_concurrent_calls": 2}
    running = start(load_settings(flags, environ={}))
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}"))
    try:
        platform = admin.add_member("platform-a")
        with RegistryClient(platform) as client:
            held = [client._stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=20) for _ in range(2)]
            time.sleep(0.5)  # both watches are in progress
            with pytest.raises(RPCError) as refused:
                client.lookup(applicant(("cn_ric", RIC)))
            assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "Concurrent RPC limit exceeded" in refused.value.message
            for call in held:
                call.cancel()
            time.sleep(1.5)  # a watch notices its cancel within a second (it waits on the view in 1 s steps)
            assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    finally:
        admin.close()
        running.stop(grace=None)
