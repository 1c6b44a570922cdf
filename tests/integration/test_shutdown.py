"""Graceful shutdown: health says NOT_SERVING first, a call in flight finishes, new calls are refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from grpc_health.v1 import health_pb2, health_pb2_grpc

from jpr_client import Credentials, RegistryClient, Verdict
from jpr_client.client import secure_channel
from registry.datadir import PROBE_CREDENTIALS
from tests.conftest import AdminClient, Registry
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
