"""Request bodies that are not the method's protobuf message: INVALID_ARGUMENT, no traceback, a bounded log."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from jpr_client import Credentials
from jpr_client.client import secure_channel
from registry.datadir import DataDir, ADMIN_CREDENTIALS, PROBE_CREDENTIALS
from registry.server.app import start
from registry.settings import load_settings
from tests.conftest import AdminClient, Ticks
from tests.integration.test_streams import new_data_dir

NOT_PROTOBUF = [b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x08"]  # a runaway varint, a truncated string, a tag with no value


def raw(channel: grpc.Channel, path: str, body: bytes, kind: str) -> grpc.RpcError:
    """Send `body` as the request of `path`, as is; the error it ends with."""
    try:
        if kind == "unary":
            channel.unary_unary(path)(body, timeout=5)
        elif kind == "server-stream":
            next(iter(channel.unary_stream(path)(body, timeout=5)))
        else:
            next(iter(channel.stream_stream(path)(iter([body]), timeout=5)))
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{path} accepted {body!r}")


METHODS = [
    ("member", "/jpr.v1.Registry/Lookup", "unary", "jpr.v1.LookupRequest"),
    ("member", "/jpr.v1.Registry/Tokenize", "unary", "jpr.v1.TokenizeRequest"),
    ("member", "/jpr.v1.Registry/SubmitReport", "unary", "jpr.v1.SubmitReportRequest"),
    ("member", "/jpr.v1.Registry/WatchChanges", "server-stream", "jpr.v1.WatchChangesRequest"),
    ("admin", "/jpr.v1.Admin/ListMembers", "unary", "jpr.v1.ListMembersRequest"),
    ("probe", "/grpc.health.v1.Health/Check", "unary", "grpc.health.v1.HealthCheckRequest"),
    ("probe", "/grpc.health.v1.Health/Watch", "server-stream", "grpc.health.v1.HealthCheckRequest"),
    ("admin", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "bidi", "grpc.reflection.v1alpha.ServerReflectionRequest"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_malformed_bodies_are_invalid_argument_on_every_kind_of_method_and_logged_once_a_minute_per_caller(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = new_data_dir(tmp_path)
    ticks = Ticks()
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url}, environ={}), ticks=ticks)
    endpoint = f"127.0.0.1:{running.port}"
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(endpoint), DataDir(data_dir).issuer())
    credentials = {"member": admin.add_member("platform-a"), "admin": admin.credentials,
                   "probe": Credentials.load(data_dir / PROBE_CREDENTIALS).with_endpoint(endpoint)}
    channels = {who: secure_channel(c) for who, c in credentials.items()}
    try:
        with caplog.at_level(logging.DEBUG):
            for who, path, kind, message in METHODS:
                for body in NOT_PROTOBUF:
                    error = raw(channels[who], path, body, kind)
                    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (path, body)
                    assert error.details() == f"the request body is not a serialized {message}; send the method's request message"
            logged = [r for r in caplog.records if "the request body is not" in r.getMessage()]
            assert sorted(r.getMessage().split(" refused for ")[1].split(":")[0] for r in logged) == ["admin", "member", "probe"]
            ticks.now += 61  # a minute later the same caller is logged again, once
            for _ in range(3):
                raw(channels["member"], "/jpr.v1.Registry/Lookup", NOT_PROTOBUF[0], "unary")
            assert len([r for r in caplog.records if "the request body is not" in r.getMessage()]) == 4
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        assert not [r for r in caplog.records if "Exception deserializing" in r.getMessage()]
    finally:
        for channel in channels.values():
            channel.close()
        admin.close()
        running.stop(grace=None)


def test_a_malformed_body_from_a_caller_without_access_is_refused_for_the_access_first(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = new_data_dir(tmp_path)
    running = start(load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url}, environ={}))
    probe = Credentials.load(data_dir / PROBE_CREDENTIALS).with_endpoint(f"127.0.0.1:{running.port}")
    try:
        with secure_channel(probe) as channel:
            error = raw(channel, "/jpr.v1.Registry/Lookup", NOT_PROTOBUF[0], "unary")
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    finally:
        running.stop(grace=None)
