"""Two replicas behind one address, without Docker: what docker/compose.yaml runs, as it runs it.

The load-balancer test prepares the layout with docker/prepare (`jpr init --owner 10001`) as root,
runs `jpr db upgrade` and two `jpr serve` as uid 10001 on exactly the files compose mounts, and puts
docker/haproxy.cfg in front of them with a real HAProxy. The round-robin test is the SDK alone:
one client, an endpoint list, calls on both replicas.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jpr_client import Credentials, RegistryClient, Verdict
from jpr_client.client import secure_channel
from registry.cli.main import main
from registry.datadir import ADMIN_CREDENTIALS, PROBE_CREDENTIALS, DataDir
from tests.conftest import AdminClient
from tests.integration.test_lookup import RIC, applicant
from tests.processes import BIN, ServeProcess, as_user

DOCKER = Path(__file__).resolve().parents[2] / "docker"
IMAGE_USER = (10001, 10001)
IN_CI = os.environ.get("CI") == "true"


def calls_logged(serve: ServeProcess, method: str) -> int:
    """How many calls this replica's access log recorded whose method starts with `method`."""
    return sum(f" /{method}" in line for line in serve.log.read_text().splitlines())


def calls_per_replica(replicas: tuple[ServeProcess, ...], method: str, made: int, timeout: float = 5.0) -> list[int]:
    """Each replica's count of `method` calls, once all `made` are logged (the log is written in batches)."""
    deadline = time.monotonic() + timeout
    while sum(counts := [calls_logged(r, method) for r in replicas]) < made and time.monotonic() < deadline:
        time.sleep(0.1)
    return counts


def jpr(*argv: str) -> None:
    assert main([*argv]) == 0, argv


def test_an_endpoint_list_spreads_one_clients_calls_over_both_replicas(tmp_path: Path) -> None:
    data_dir = tmp_path / "jpr-data"
    jpr("init", "--data-dir", str(data_dir), "--name", "jpr-round-robin-test")
    with ServeProcess(data_dir) as one, ServeProcess(data_dir) as two:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(one.endpoint), DataDir(data_dir).issuer())
        try:
            member = admin.add_member("platform-a")
        finally:
            admin.close()
        with RegistryClient(member.with_endpoint(f"{one.endpoint},{two.endpoint}")) as client:
            verdicts = {client.lookup(applicant(("cn_ric", RIC))).verdict for _ in range(20)}
        assert verdicts == {Verdict.CLEAR}
        # Each lookup is two calls (Tokenize, then Lookup), so count both: 40 calls over two replicas.
        calls = calls_per_replica((one, two), "jpr.v1.Registry/", made=40)
    assert sum(calls) == 40 and min(calls) >= 10, f"calls per replica: {calls}"


# --- the compose layout behind HAProxy, as uid 10001 ----------------------------------------


def require(available: bool, reason: str) -> None:
    """Skip outside CI when a test's tool or privilege is missing; under CI (CI=true) fail instead."""
    if not available:
        if IN_CI:
            pytest.fail(f"{reason} (CI must have it: .ci/run)")
        pytest.skip(reason)


@pytest.fixture
def deploy_dir() -> Iterator[Path]:
    """A directory uid 10001 can pass through (tmp_path's parents are root's, 0700), like docker/."""
    path = Path(tempfile.mkdtemp(prefix="jpr-deploy-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def replica_mounts() -> dict[str, str]:
    """compose.yaml's bind mounts into registry-1: source (relative to docker/) -> target."""
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    return {m["source"]: m["target"] for m in services["registry-1"]["volumes"] if m["type"] == "bind"}


def mount_as_compose_does(deploy: Path, replica: Path) -> None:
    """The replica's data directory: what compose mounts, each file itself (a hard link keeps owner and mode)."""
    replica.mkdir(mode=0o700)
    os.chown(replica, *IMAGE_USER)
    for source, target in replica_mounts().items():
        os.link(deploy / source, replica / Path(target).name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"haproxy exited with {process.returncode}: {log.read_text()}"
        with socket.socket() as attempt:
            if attempt.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"haproxy did not listen on {port}: {log.read_text()}")


def health_check(probe: Credentials) -> str:
    """One Check on a new channel: a new TCP connection, which HAProxy hands to the next replica."""
    with secure_channel(probe) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def test_compose_layout_serves_as_uid_10001_behind_haproxy_on_both_replicas(deploy_dir: Path) -> None:
    require(os.geteuid() == 0, "runs jpr init --owner and the replicas as uid 10001: needs root")
    require(shutil.which("haproxy") is not None, "needs haproxy (apt-get install -y haproxy)")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DEPLOY_DIR": str(deploy_dir)}
    subprocess.run([str(DOCKER / "prepare")], env=env, check=True, capture_output=True, timeout=60)
    replica = deploy_dir / "replica-data"
    mount_as_compose_does(deploy_dir, replica)
    migrate = subprocess.run([*as_user(IMAGE_USER), str(BIN / "jpr"), "db", "upgrade", "--data-dir", str(replica)],
                             env=env, capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0, migrate.stderr
    port, log = free_port(), deploy_dir / "haproxy.log"
    with ServeProcess(replica, user=IMAGE_USER) as one, ServeProcess(replica, user=IMAGE_USER) as two, log.open("w") as sink:
        balancer_env = {**env, "LB_LISTEN": f"127.0.0.1:{port}", "REPLICA_1": one.endpoint, "REPLICA_2": two.endpoint}
        haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(DOCKER / "haproxy.cfg")], env=balancer_env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_until_listening(port, haproxy, log)
            balanced = f"127.0.0.1:{port}"
            probe = Credentials.load(replica / PROBE_CREDENTIALS).with_endpoint(balanced)
            assert [health_check(probe) for _ in range(6)] == ["SERVING"] * 6
            checks = calls_per_replica((one, two), "grpc.health.v1.Health/Check", made=6)
            # The admin, on its own machine with the CA key, enrolls a platform through the balancer;
            # the platform's entry audits, a new connection each, reach both replicas.
            issuer = DataDir(deploy_dir / "jpr-data").issuer()
            admin = AdminClient(Credentials.load(deploy_dir / "jpr-data" / ADMIN_CREDENTIALS).with_endpoint(balanced), issuer)
            try:
                platform = admin.add_member("platform-a").with_endpoint(balanced)
            finally:
                admin.close()
            for _ in range(6):
                with RegistryClient(platform) as client:
                    assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
            lookups = calls_per_replica((one, two), "jpr.v1.Registry/Lookup", made=6)
        finally:
            haproxy.terminate()
            haproxy.wait(timeout=10)
    assert sum(checks) == 6 and min(checks) >= 2, f"health checks per replica through haproxy: {checks}"
    assert sum(lookups) == 6 and min(lookups) >= 2, f"lookups per replica through haproxy: {lookups}"
