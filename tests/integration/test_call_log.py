"""One access-log record per call, written as it completes: its fields, the request id its caller was sent,
a stream's opening and end, UTC ISO 8601 times, and JSON lines from `jpr serve --log-format json`."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from jpr_client import Credentials, RegistryClient, RPCError, normalize
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, registry_pb2_grpc, types_pb2
from jpr_client.client import secure_channel
from jpr_client.errors import request_id
from registry.cli.main import main
from registry.crypto import pki
from registry.server.log_format import formatter
from registry.store.models import AccessCountRow
from tests.conftest import AdminClient, Registry
from tests.processes import BIN, ServeProcess

UTC_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
WATCH = "/jpr.v1.Registry/WatchChanges"


class JsonLines:
    """The `jpr.access` log as `--log-format json` writes it, one parsed object a line."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._sink = io.StringIO()

    def records(self, **fields: Any) -> list[dict[str, Any]]:
        self._registry.running.access_log.flush_lines()
        parsed = [json.loads(line) for line in self._sink.getvalue().splitlines()]
        return [r for r in parsed if all(r.get(k) == v for k, v in fields.items())]

    def wait_for(self, count: int = 1, timeout: float = 10.0, **fields: Any) -> list[dict[str, Any]]:
        """The records with these fields, once there are `count` of them (a stream's end is recorded by gRPC's thread)."""
        stop = time.monotonic() + timeout
        while len(found := self.records(**fields)) < count and time.monotonic() < stop:
            time.sleep(0.05)
        assert len(found) == count, (fields, found)
        return found


@pytest.fixture
def access(registry: Registry) -> Iterator[JsonLines]:
    lines = JsonLines(registry)
    handler = logging.StreamHandler(lines._sink)
    handler.setFormatter(formatter("json"))
    logger = logging.getLogger("jpr.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def one_token(client: RegistryClient) -> types_pb2.IdentifierToken:
    (token,) = client.tokenize([normalize("phone", "13800138000")])
    return types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=token.value)


def test_each_call_is_one_record_with_its_fields_and_the_request_id_its_caller_was_sent(
    registry: Registry, member: Callable[[str], Credentials], access: JsonLines
) -> None:
    platform = member("platform-a")
    with RegistryClient(platform) as client:
        request = registry_pb2.LookupRequest(applicant=registry_pb2.Applicant(identifiers=[one_token(client)]))
        _, call = client._stub.Lookup.with_call(request, timeout=10)
    sent = request_id(call)
    assert sent is not None and re.fullmatch(r"[0-9a-f]{16}", sent)
    [record] = access.records(request_id=sent)
    assert {k: record[k] for k in ("event", "method", "role", "caller", "certificate_sha256", "status", "items", "matched")} == {
        "event": "call", "method": "/jpr.v1.Registry/Lookup", "role": "member", "caller": "platform-a",
        "certificate_sha256": pki.fingerprint(platform.certificate.encode()), "status": "OK", "items": 1, "matched": 0,
    }
    assert record["duration_ms"] > 0 and UTC_ISO.match(record["time"]) and record["logger"] == "jpr.access"
    assert record["message"].startswith("/jpr.v1.Registry/Lookup member:platform-a ")
    assert record["message"].endswith(f" OK {record['duration_ms']:.1f}ms items=1 matched=0 request_id={sent}")
    ids = [r["request_id"] for r in access.records()]
    assert len(ids) == len(set(ids)), "two calls were given the same request id"


def test_a_refused_call_has_its_record_and_the_sdk_error_quotes_its_request_id(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], access: JsonLines
) -> None:
    platform = member("platform-a")
    admin.call("SuspendMember", admin_pb2.MemberStatusRequest(member="platform-a", reason="unpaid dues"))
    with RegistryClient(platform) as client, pytest.raises(RPCError) as refused:
        client.tokenize([normalize("phone", "13800138000")])
    assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED and refused.value.request_id
    assert f"(request id {refused.value.request_id})" in str(refused.value)
    [record] = access.records(request_id=refused.value.request_id)
    assert (record["method"], record["caller"], record["status"], record["items"]) == (
        "/jpr.v1.Registry/Tokenize", "platform-a", "PERMISSION_DENIED", 0,
    )


def test_a_change_watch_is_recorded_when_it_opens_and_when_it_ends_and_counted_once(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], access: JsonLines
) -> None:
    channel = secure_channel(member("platform-a"))
    stub = registry_pb2_grpc.RegistryStub(channel)
    cancelled = stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=30)
    cancelled_id = request_id(cancelled)  # the initial metadata, before any change
    [opened] = access.wait_for(request_id=cancelled_id, event="open")
    assert (opened["method"], opened["status"], opened["caller"]) == (WATCH, "OK", "platform-a")
    time.sleep(0.3)
    cancelled.cancel()
    [ended] = access.wait_for(request_id=cancelled_id, event="end")
    assert ended["status"] == "CANCELLED" and ended["duration_ms"] >= 300

    # A cursor the registry never gave: refused as it opens, one record, no end.
    with pytest.raises(grpc.RpcError) as bad:
        next(iter(stub.WatchChanges(registry_pb2.WatchChangesRequest(cursor="nonsense"), timeout=5)))
    bad_id = request_id(bad.value)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT and bad_id
    [refused] = access.wait_for(request_id=bad_id)
    assert (refused["event"], refused["status"]) == ("open", "INVALID_ARGUMENT")

    # Ended by the registry when the member is suspended: the end says why, not CANCELLED.
    suspended = stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=30)
    access.wait_for(request_id=request_id(suspended), event="open")
    admin.call("SuspendMember", admin_pb2.MemberStatusRequest(member="platform-a", reason="unpaid dues"))
    with pytest.raises(grpc.RpcError):
        next(iter(suspended))
    [swept] = access.wait_for(request_id=request_id(suspended), event="end")
    assert swept["status"] == "PERMISSION_DENIED"
    channel.close()

    registry.running.access_log.flush()
    with registry.database.read() as conn:
        row = conn.execute(select(AccessCountRow).where(AccessCountRow.method == WATCH)).one()
    assert (row.calls, row.refused) == (3, 1)  # three watches opened, one refused; their ends add nothing


def lines_of(log: Path) -> list[str]:
    """What `jpr serve` wrote to stderr: its log (stdout's few lines say where it serves and that it stops)."""
    stdout = ("serving on ", "stopping: ", "stopped")
    return [line for line in log.read_text().splitlines() if line and not line.startswith(stdout)]


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_jpr_serve_with_the_json_log_format_writes_every_record_as_a_json_line_in_utc(tmp_path: Path, how: str) -> None:
    data_dir = tmp_path / "jpr-data"
    assert main(["init", "--data-dir", str(data_dir)]) == 0
    flag, environ = (("--log-format", "json"), {}) if how == "flag" else ((), {"JPR_LOG_FORMAT": "json", "TZ": "Asia/Shanghai"})
    with ServeProcess(data_dir, extra=flag, environ=environ) as served:
        health = subprocess.run(
            [str(BIN / "jpr"), "health", "--credentials", str(data_dir / "probe.credentials.json"), "--endpoint", served.endpoint],
            capture_output=True, text=True, timeout=30,
        )
        assert health.stdout.strip() == "SERVING", health.stderr
        time.sleep(0.5)  # the access log's writer runs every 0.2 s
    records = [json.loads(line) for line in lines_of(served.log)]
    assert records and all(UTC_ISO.match(r["time"]) and r["level"] and r["logger"] for r in records)
    [check] = [r for r in records if r.get("method") == "/grpc.health.v1.Health/Check"]
    assert (check["role"], check["status"], check["event"]) == ("probe", "OK", "call") and check["request_id"]


def test_jpr_serve_writes_text_lines_that_begin_with_the_utc_time(tmp_path: Path) -> None:
    data_dir = tmp_path / "jpr-data"
    assert main(["init", "--data-dir", str(data_dir)]) == 0
    with ServeProcess(data_dir, environ={"TZ": "America/New_York"}) as served:
        subprocess.run(
            [str(BIN / "jpr"), "health", "--credentials", str(data_dir / "probe.credentials.json"), "--endpoint", served.endpoint],
            capture_output=True, text=True, timeout=30, check=True,
        )
        time.sleep(0.5)
    lines = lines_of(served.log)
    assert lines and all(UTC_ISO.match(line.split(" ", 1)[0]) for line in lines), lines
    assert [line for line in lines if " INFO jpr.access /grpc.health.v1.Health/Check probe:" in line and " request_id=" in line]
