"""Long-lived calls: no caller can starve the others, and a caller that loses access loses its open streams.

Every stream (health watch, reflection, changes feed) holds a server thread while it is open; the
registry caps them per caller and in total so that unary calls always keep their threads.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jpr_client import Credentials, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, registry_pb2_grpc
from jpr_client.client import secure_channel
from registry.cli.main import main
from registry.crypto import pki
from registry.datadir import ADMIN_CREDENTIALS, DataDir, PROBE_CREDENTIALS
from registry.server.app import RunningRegistry, start
from registry.server.auth import RULES
from registry.settings import load_settings
from tests.conftest import AdminClient, REGISTRY_NAME, Registry
from tests.integration.test_lookup import RIC, applicant

PER_CALLER = 4


@contextmanager
def serving(data_dir: Path, database_url: str, **settings: object) -> Iterator[RunningRegistry]:
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url, **settings}, environ={}))
    try:
        yield running
    finally:
        running.stop(grace=None)


def new_data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    return data_dir


@contextmanager
def administered(tmp_path: Path, database_url: str, **settings: object) -> Iterator[tuple[RunningRegistry, Path, AdminClient]]:
    """A registry with these settings, its data directory, and an admin client talking to it."""
    data_dir = new_data_dir(tmp_path)
    with serving(data_dir, database_url, **settings) as running:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}"), DataDir(data_dir).issuer())
        try:
            yield running, data_dir, admin
        finally:
            admin.close()


@dataclass
class Streams:
    """Streams opened on one channel: those the registry admitted (held open) and the refusals."""

    channel: grpc.Channel
    held: list[grpc.RpcContext] = field(default_factory=list)
    refused: list[grpc.RpcError] = field(default_factory=list)
    _ends: list[queue.Queue[object]] = field(default_factory=list)

    def health_watch(self) -> None:
        watch = health_pb2_grpc.HealthStub(self.channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
        self._admit(watch, watch)

    def reflection(self) -> None:
        requests: queue.Queue[object] = queue.Queue()
        requests.put(reflection_pb2.ServerReflectionRequest(list_services=""))
        self._ends.append(requests)
        session = reflection_pb2_grpc.ServerReflectionStub(self.channel).ServerReflectionInfo(iter(requests.get, None), timeout=60)
        self._admit(session, session)

    def watch_changes(self) -> None:
        watch = registry_pb2_grpc.RegistryStub(self.channel).WatchChanges(registry_pb2.WatchChangesRequest(), timeout=60)
        self.held.append(watch)  # a watch with nothing to send sends nothing: held until it ends

    def _admit(self, call: grpc.RpcContext, responses: Iterator[object]) -> None:
        try:
            next(responses)
        except grpc.RpcError as error:
            self.refused.append(error)
        else:
            self.held.append(call)

    def close(self) -> None:
        for end in self._ends:
            end.put(None)
        for call in self.held:
            call.cancel()
        self.channel.close()


def measure(calls: list[Callable[[], object]], rounds: int) -> list[float]:
    """Milliseconds each call took, `rounds` times through `calls`."""
    taken = []
    for _ in range(rounds):
        for call in calls:
            began = time.perf_counter()
            call()
            taken.append((time.perf_counter() - began) * 1000)
    return taken


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) * 0.99) - 1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_flood_of_streams_from_two_callers_cannot_starve_another_members_lookups_and_health_checks(
    tmp_path: Path, database_url: str
) -> None:
    with administered(tmp_path, database_url, max_streams_per_caller=PER_CALLER) as (running, data_dir, admin):
        endpoint = f"127.0.0.1:{running.port}"
        flooder, honest = admin.add_member("platform-flood"), admin.add_member("platform-honest")
        member_streams = Streams(secure_channel(flooder))
        probe_streams = Streams(secure_channel(Credentials.load(data_dir / PROBE_CREDENTIALS).with_endpoint(endpoint)))
        client = RegistryClient(honest)
        health = health_pb2_grpc.HealthStub(client._channel)
        calls = [lambda: client.lookup(applicant(("cn_ric", RIC))),
                 lambda: health.Check(health_pb2.HealthCheckRequest(service="jpr.v1.Registry"), timeout=5)]
        measure(calls, 5)  # connections and caches warm
        try:
            with ThreadPoolExecutor(3) as flood:
                opened = [flood.submit(lambda: [member_streams.health_watch() for _ in range(50)]),
                          flood.submit(lambda: [member_streams.reflection() for _ in range(50)]),
                          flood.submit(lambda: [probe_streams.health_watch() for _ in range(50)])]
                during = measure(calls, 60)  # while the streams are being opened and refused
                for each in opened:
                    each.result(timeout=60)
            after = measure(calls, 60)  # with the streams held open
        finally:
            member_streams.close()
            probe_streams.close()
            client.close()
    assert len(member_streams.held) == PER_CALLER and len(member_streams.refused) == 100 - PER_CALLER
    assert len(probe_streams.held) == PER_CALLER and len(probe_streams.refused) == 50 - PER_CALLER
    for refusal in member_streams.refused + probe_streams.refused:
        assert refusal.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"may hold at most {PER_CALLER} open streams at once" in (refusal.details() or "")
    assert "member:platform-flood may hold" in (member_streams.refused[0].details() or "")
    assert "probe:probe may hold" in (probe_streams.refused[0].details() or "")
    taken = during + after
    assert len(taken) >= 200
    assert p99(taken) < 100, f"p99 {p99(taken):.1f} ms over {len(taken)} calls"


def threads_serving(function: Callable[..., object]) -> int:
    """How many threads are running `function` right now (read off their stacks, nothing patched).

    Another thread's stack changes while it is walked: on CPython 3.11 the `f_back` of a frame that
    just returned can be a stale object, not a frame, so the walk stops at anything but a frame."""
    code = function.__code__
    count = 0
    for frame in sys._current_frames().values():
        while isinstance(frame, FrameType) and frame.f_code is not code:
            frame = frame.f_back  # type: ignore[assignment]
        count += isinstance(frame, FrameType)
    return count


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_streams_cancelled_and_reopened_in_a_loop_never_hold_more_threads_than_their_slots(
    tmp_path: Path, database_url: str
) -> None:
    """A slot is freed when the stream's thread leaves the call, not when the client cancels it."""
    from registry.domain.changes import ChangeFeed

    with administered(tmp_path, database_url, max_streams_per_caller=PER_CALLER) as (running, _, admin):
        churner, honest = secure_channel(admin.add_member("platform-churn")), secure_channel(admin.add_member("platform-honest"))
        stop, peak = threading.Event(), [0]

        def churn() -> None:
            stub = registry_pb2_grpc.RegistryStub(churner)
            while not stop.is_set():
                calls = [stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=30) for _ in range(PER_CALLER)]
                time.sleep(0.03)
                for call in calls:
                    call.cancel()

        def watch_threads() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], threads_serving(ChangeFeed.watch))
                time.sleep(0.005)

        workers = [threading.Thread(target=churn), threading.Thread(target=watch_threads)]
        for worker in workers:
            worker.start()
        try:
            health = health_pb2_grpc.HealthStub(honest)
            taken = measure([lambda: health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)], 200)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
            churner.close()
            honest.close()
    assert 0 < peak[0] <= PER_CALLER, f"{peak[0]} threads served one member's {PER_CALLER} stream slots"
    assert p99(taken) < 100, f"p99 {p99(taken):.1f} ms over {len(taken)} calls"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_streams_beyond_the_replicas_total_are_refused_whoever_asks_and_a_closed_one_frees_its_slot(
    tmp_path: Path, database_url: str
) -> None:
    with administered(tmp_path, database_url, max_streams=3, max_streams_per_caller=3) as (running, _, admin):
        first, second = Streams(secure_channel(admin.add_member("platform-a"))), Streams(secure_channel(admin.add_member("platform-b")))
        try:
            first.health_watch()
            first.reflection()
            first.watch_changes()
            wait_until(lambda: running.interceptor.streams.count == 3)  # the watch, which sends nothing yet, is admitted
            second.health_watch()
            assert len(second.refused) == 1 and second.refused[0].code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "serves at most 3 open streams at once and all are in use" in (second.refused[0].details() or "")
            first.held.pop(0).cancel()
            wait_until(lambda: running.interceptor.streams.count == 2)
            second.health_watch()  # the cancelled watch's slot is free again
            assert len(second.held) == 1
        finally:
            first.close()
            second.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def ended(call: grpc.RpcContext) -> Callable[[], bool]:
    return lambda: not call.is_active()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_revoking_a_certificate_on_one_replica_ends_its_open_streams_on_another_within_a_second(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = new_data_dir(tmp_path)
    with serving(data_dir, database_url) as one, serving(data_dir, database_url) as two:
        admin_file = data_dir / ADMIN_CREDENTIALS
        admin = AdminClient(Credentials.load(admin_file).with_endpoint(f"127.0.0.1:{one.port}"), DataDir(data_dir).issuer())
        leaked = admin.add_member("platform-a").with_endpoint(f"127.0.0.1:{two.port}")
        kept = admin.add_member("platform-b").with_endpoint(f"127.0.0.1:{two.port}")
        on_two, untouched = Streams(secure_channel(leaked)), Streams(secure_channel(kept))
        try:
            for streams in (on_two, untouched):
                streams.watch_changes()
                streams.health_watch()
                streams.reflection()
            wait_until(lambda: two.interceptor.streams.count == 6)  # every stream is admitted and waiting
            sha256 = pki.fingerprint(leaked.certificate.encode())
            assert main(["admin", "cert", "revoke", sha256, "--reason", "key leaked", "--credentials", str(admin_file),
                         "--endpoint", f"127.0.0.1:{one.port}"]) == 0
            revoked_at = time.monotonic()  # committed on replica one
            for call in on_two.held:
                wait_until(ended(call), timeout=3)
            took = time.monotonic() - revoked_at
            for call in on_two.held:
                assert call.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
                assert f"client certificate {sha256} has been revoked" in call.details()  # type: ignore[attr-defined]
            assert took < 1.0, f"the streams ended {took:.2f} s after the revocation"
            assert all(call.is_active() for call in untouched.held)  # another member's streams go on
            wait_until(lambda: two.interceptor.streams.count == len(untouched.held))  # the ended streams' threads left
        finally:
            on_two.close()
            untouched.close()
            admin.close()
    assert "revoked" in capsys.readouterr().out
    assert not [r for r in caplog.records if r.exc_info], "ending streams logged a traceback"


LATER = "jpr.v1.Later"  # a service added after this test was written: its streams are capped and swept like the rest


def later_service() -> grpc.GenericRpcHandler:
    def upload(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return b"%d" % sum(1 for _ in requests)

    def chat(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        yield from requests

    return grpc.method_handlers_generic_handler(LATER, {
        "Upload": grpc.stream_unary_rpc_method_handler(upload, request_deserializer=health_pb2.HealthCheckRequest.FromString),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    })


def test_streams_of_any_kind_added_later_are_capped_per_caller_and_end_when_the_member_is_suspended(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("Upload", "Chat"):
        monkeypatch.setitem(RULES, f"/{LATER}/{name}", frozenset({pki.ROLE_MEMBER}))  # type: ignore[arg-type]
    registry.running.server.add_generic_rpc_handlers((later_service(),))
    channel = secure_channel(member("platform-a"))
    ends: list[queue.Queue[bytes | None]] = []

    def requests() -> Iterator[bytes]:
        pending: queue.Queue[bytes | None] = queue.Queue()
        pending.put(b"")  # an empty message: valid for any protobuf request
        ends.append(pending)
        return iter(pending.get, None)

    try:
        with pytest.raises(grpc.RpcError) as malformed:  # a stream's malformed message is refused like a unary call's
            channel.stream_unary(f"/{LATER}/Upload")(iter([b"\xff\xff\xff"]), timeout=5)
        assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "not a serialized grpc.health.v1.HealthCheckRequest" in (malformed.value.details() or "")
        uploads = [channel.stream_unary(f"/{LATER}/Upload").future(requests(), timeout=30) for _ in range(2)]
        chats = [channel.stream_stream(f"/{LATER}/Chat")(requests(), timeout=30) for _ in range(2)]
        assert [next(chat) for chat in chats] == [b"", b""]
        wait_until(lambda: registry.running.interceptor.streams.count == 4)
        with pytest.raises(grpc.RpcError) as refused:
            channel.stream_unary(f"/{LATER}/Upload")(iter([b"one more"]), timeout=5)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "member:platform-a may hold at most 4 open streams" in (refused.value.details() or "")
        admin.call("SuspendMember", admin_pb2.MemberStatusRequest(member="platform-a", reason="a leaked key"))
        for call in [*uploads, *chats]:
            wait_until(ended(call), timeout=2)
            assert call.code() is grpc.StatusCode.PERMISSION_DENIED
            assert call.details() == "member 'platform-a' is SUSPENDED"
        wait_until(lambda: registry.running.interceptor.streams.count == 0)
        assert not [r for r in caplog.records if r.exc_info], "ending streams logged a traceback"
    finally:
        for end in ends:
            end.put(None)
        channel.close()
