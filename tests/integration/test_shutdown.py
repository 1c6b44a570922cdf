"""Server limits: graceful shutdown (health says NOT_SERVING first, calls in flight finish, new calls refused),
the concurrency cap, keepalive enforcement, message and batch sizes, deadlines carried to the database."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import psycopg
import pytest
from sqlalchemy import make_url
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jpr_client import Credentials, RPCError, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, registry_pb2_grpc
from jpr_client.client import KEEPALIVE_OPTIONS, secure_channel
from registry.datadir import ADMIN_CREDENTIALS, DataDir, PROBE_CREDENTIALS
from registry.domain.tokens import MAX_ELEMENTS
from registry.server.app import MESSAGE_LIMIT, start
from registry.settings import Settings, load_settings
from tests.conftest import AdminClient, REGISTRY_NAME, Registry
from tests.integration.reporting import payload, sign
from tests.integration.test_lookup import RIC, applicant
from tests.processes import ServeProcess


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
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}"), DataDir(data_dir).issuer())
    try:
        platform = admin.add_member("platform-a")
        with RegistryClient(platform) as client:
            held = [client._stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=20) for _ in range(2)]
            deadline = time.monotonic() + 20  # a loaded machine can be slow to start both
            while running.interceptor.streams.count < 2:
                ended = [(call.code(), call.details()) for call in held if call.done()]
                assert not ended and time.monotonic() < deadline, f"the watches are not both in progress: {ended}"
                time.sleep(0.05)
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


@contextmanager
def write_lock(database_url: str) -> Iterator[None]:
    """Another session holds the lock a report's insert needs, until the block ends."""
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as holder:
        holder.execute("LOCK TABLE reports IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            holder.rollback()


def wait_for_access_line(caplog: pytest.LogCaptureFixture, *parts: str, timeout: float = 10.0) -> str:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        for record in caplog.records:
            for line in record.getMessage().splitlines():
                if all(part in line for part in parts):
                    return line
        time.sleep(0.05)
    raise AssertionError(f"no access-log line with {parts}")


def test_a_write_whose_deadline_passed_is_abandoned_and_never_lands(
    registry: Registry, member: Callable[[str], Credentials], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jpr.access")
    with RegistryClient(member("platform-a")) as client:
        body = payload(client, [("cn_ric", RIC)])
        envelope = sign(client.credentials, body)
        with write_lock(registry.database.url):
            with pytest.raises(grpc.RpcError) as late:
                client._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=1.0)
            assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            # The server gave up too, while the lock was still held: its statement or lock wait was
            # cut at the deadline instead of waiting the database's own 30 s and writing afterwards.
            wait_for_access_line(caplog, "/jpr.v1.Registry/SubmitReport", "DEADLINE_EXCEEDED", timeout=5.0)
        with pytest.raises(RPCError) as missing:
            client.get_report(body.report_id)
        assert missing.value.status is grpc.StatusCode.NOT_FOUND
        receipt = client._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=10)
        assert receipt.report_id == body.report_id  # the same report, sent again in time, is stored


def test_sigterm_lets_a_call_in_flight_finish_while_refusing_new_ones(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    server = ServeProcess(data_dir, database_url)
    try:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(server.endpoint), DataDir(data_dir).issuer())
        platform = admin.add_member("platform-a").with_endpoint(server.endpoint)
        admin.close()
        probe = Credentials.load(data_dir / PROBE_CREDENTIALS).with_endpoint(server.endpoint)
        health = health_pb2_grpc.HealthStub(secure_channel(probe)).Watch(health_pb2.HealthCheckRequest(), timeout=30)
        assert next(health).status == health_pb2.HealthCheckResponse.SERVING
        with RegistryClient(platform) as client, RegistryClient(platform) as latecomer:
            body = payload(client, [("cn_ric", RIC)])
            latecomer.lookup(applicant(("cn_ric", RIC)))  # its connection is open before the signal
            with write_lock(database_url):
                in_flight = client._stub.SubmitReport.future(
                    registry_pb2.SubmitReportRequest(envelope=sign(platform, body)), timeout=30
                )
                time.sleep(0.5)  # the call is in the server, waiting for the lock
                server.process.terminate()  # SIGTERM, as an orchestrator sends it
                assert next(health).status == health_pb2.HealthCheckResponse.NOT_SERVING
                # Health turns first, the server stops taking calls a moment later: poll until refused.
                # INVALID_ARGUMENT means served (the request is empty); UNAVAILABLE once the client saw
                # the server's GOAWAY; CANCELLED for a call that raced it.
                refused_with, stop = None, time.monotonic() + 5
                while refused_with is None and time.monotonic() < stop:
                    try:
                        latecomer._stub.Tokenize(registry_pb2.TokenizeRequest(), timeout=5)
                    except grpc.RpcError as error:
                        if error.code() is not grpc.StatusCode.INVALID_ARGUMENT:
                            refused_with = error.code()
                    time.sleep(0.02)
                assert refused_with in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
                assert not in_flight.done()
            receipt = in_flight.result(timeout=10)  # the lock is gone: the call in flight finishes
            assert receipt.report_id == body.report_id
        assert server.process.wait(timeout=10) == 0
        assert "stopped" in server.log.read_text()
    finally:
        server.stop()


def watch_with_pings(endpoint: str, platform: Credentials, every_ms: int, seconds: float) -> Iterator[object]:
    """A WatchChanges stream of `seconds` on a channel of its own that pings every `every_ms` while it waits."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=platform.ca_certificate.encode(),
        private_key=platform.private_key.encode(),
        certificate_chain=platform.certificate.encode(),
    )
    options = [("grpc.keepalive_time_ms", every_ms), ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
    channel = grpc.secure_channel(endpoint, credentials, options=options)
    watch = registry_pb2_grpc.RegistryStub(channel).WatchChanges(registry_pb2.WatchChangesRequest(), timeout=seconds)
    return iter(watch)


def test_keepalive_is_enforced_on_clients_that_ping_too_often(tmp_path: Path, sqlite_template: Path) -> None:
    """Transport only, so one backend. The same pushy client is sent away or not by the setting alone."""
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    shutil.copyfile(sqlite_template, tmp_path / "registry.db")
    outcomes = {}
    for min_client_ping_seconds in (0.5, Settings().min_client_ping_seconds):
        flags = {
            "data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": f"sqlite+pysqlite:///{tmp_path / 'registry.db'}",
            "min_client_ping_seconds": min_client_ping_seconds,
        }
        running = start(load_settings(flags, environ={}))
        endpoint = f"127.0.0.1:{running.port}"
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(endpoint), DataDir(data_dir).issuer())
        try:
            platform = admin.add_member(f"platform-{len(outcomes)}")
            allowed = min_client_ping_seconds < 1
            # gRPC's client paces its own pings, so three strikes take a few seconds: give the pushy watch time.
            with pytest.raises(grpc.RpcError) as ended:
                next(watch_with_pings(endpoint, platform, every_ms=50, seconds=4 if allowed else 20))  # only pings cross
            outcomes[min_client_ping_seconds] = (ended.value.code(), ended.value.details())
        finally:
            admin.close()
            running.stop(grace=None)
    # Allowed to ping that often, the watch runs its whole 4 s; at the default, GOAWAY (too_many_pings) ends it
    # (within the 20 s, or the outcome would be DEADLINE_EXCEEDED). The open watch has had its headers (its request id),
    # so gRPC's client words the deadline "Stream removed (Deadline Exceeded)".
    (allowed_code, allowed_details), refused = outcomes[0.5], outcomes[10.0]
    assert allowed_code is grpc.StatusCode.DEADLINE_EXCEEDED and "Deadline Exceeded" in allowed_details
    assert refused == (grpc.StatusCode.UNAVAILABLE, "Too many pings")
    # The SDK's own keepalive stays within what the server allows by default.
    assert dict(KEEPALIVE_OPTIONS)["grpc.keepalive_time_ms"] >= Settings().min_client_ping_seconds * 1000


def test_messages_and_batches_beyond_the_limits_are_refused(registry: Registry, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as client:
        with pytest.raises(grpc.RpcError) as too_big:
            client._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=b"x" * (MESSAGE_LIMIT + 1)), timeout=10)
        assert too_big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (too_big.value.details() or "")
        elements = [b"\x00" * 32] * (MAX_ELEMENTS + 1)
        with pytest.raises(grpc.RpcError) as too_many:
            client._stub.Tokenize(registry_pb2.TokenizeRequest(blinded_elements=elements), timeout=10)
        assert too_many.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert f"at most {MAX_ELEMENTS}" in (too_many.value.details() or "")
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR  # the connection is still good


def test_calls_without_a_deadline_reach_the_database_normally(registry: Registry, member: Callable[[str], Credentials]) -> None:
    """grpcurl and other languages' clients often set none: gRPC then reports ~9.2e18 s remaining."""
    platform = member("platform-a")
    with RegistryClient(platform) as client:
        body = payload(client, [("cn_ric", RIC)])
        receipt = client._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=sign(platform, body)))
        assert receipt.report_id == body.report_id
        assert client._stub.GetReport(registry_pb2.GetReportRequest(report_id=body.report_id)).report_id == body.report_id
    admin = registry.admin()
    try:
        members = admin.stub.ListMembers(admin_pb2.ListMembersRequest())
        assert [m.name for m in members.members] == ["platform-a"]
    finally:
        admin.close()
