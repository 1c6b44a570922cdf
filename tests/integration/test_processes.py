"""`jpr serve --processes N`: one address served by N processes, supervised by the `jpr serve` process."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from jpr_client import Credentials
from registry.cli.main import main
from registry.datadir import PROBE_CREDENTIALS
from tests.integration.test_streams import wait_until
from tests.processes import BIN, ServeProcess

CONNECTIONS = 24  # SO_REUSEPORT spreads connections by a hash of their ports: 24 leave both processes idle with odds 2**-23
SERVING_PROCESS = re.compile(r"process (\d+) serving \(pid (\d+)\)")
METRICS_PORT = re.compile(r"metrics served over HTTP at \S+ \(port (\d+)\)")
CHECK = "/grpc.health.v1.Health/Check"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    assert main(["init", "--data-dir", str(tmp_path / "jpr-data")]) == 0
    return tmp_path / "jpr-data"


@pytest.fixture
def two(data_dir: Path) -> Iterator[ServeProcess]:
    with ServeProcess(data_dir, extra=("--metrics-listen", "127.0.0.1:0"), processes=2) as server:
        yield server


def pids(server: ServeProcess) -> dict[int, int]:
    """Each process number and the pid of its latest start, from the log of `jpr serve`."""
    return {int(number): int(pid) for number, pid in SERVING_PROCESS.findall(server.log.read_text())}


def running(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie waiting for its parent has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def checks_over_new_connections(data_dir: Path, endpoint: str, count: int = CONNECTIONS) -> list[int]:
    """A health check over each of `count` connections of their own; the statuses."""
    probe = Credentials.load(data_dir / PROBE_CREDENTIALS)
    tls = grpc.ssl_channel_credentials(probe.ca_certificate.encode(), probe.private_key.encode(), probe.certificate.encode())
    statuses = []
    for _ in range(count):
        # A channel of its own subchannel pool opens a connection of its own, not the one the last channel had.
        with grpc.secure_channel(endpoint, tls, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            statuses.append(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status)
    return statuses


def calls_counted(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(body) for sample in family.samples
               if sample.name == "jpr_calls_total" and sample.labels == {"method": CHECK, "status": "OK"})


def test_both_processes_answer_connections_to_the_one_address_and_their_counts_add_up(two: ServeProcess, data_dir: Path) -> None:
    assert set(pids(two)) == {0, 1} and len(set(pids(two).values())) == 2
    assert checks_over_new_connections(data_dir, two.endpoint) == [health_pb2.HealthCheckResponse.SERVING] * CONNECTIONS
    metrics_ports = [int(port) for port in METRICS_PORT.findall(two.log.read_text())]
    assert len(metrics_ports) == 2
    wait_until(lambda: sum(calls_counted(port) for port in metrics_ports) == CONNECTIONS)
    assert all(calls_counted(port) > 0 for port in metrics_ports)


def test_sigterm_stops_every_process_gracefully_and_frees_the_port(two: ServeProcess) -> None:
    children = pids(two).values()
    two.process.send_signal(signal.SIGTERM)
    assert two.process.wait(timeout=30) == 0
    assert not [pid for pid in children if running(pid)]
    log = two.log.read_text()
    assert "stopping: finishing calls in flight" in log and log.rstrip().endswith("stopped")
    assert "Traceback" not in log
    with socket.socket() as free:
        free.bind(("127.0.0.1", two.port))


def test_a_killed_process_is_started_again_and_the_address_keeps_answering(two: ServeProcess, data_dir: Path) -> None:
    killed = pids(two)[1]
    subprocess.run(["kill", "-KILL", str(killed)], check=True)
    wait_until(lambda: pids(two)[1] != killed, timeout=60)
    assert "process 1 (pid %d) exited (signal SIGKILL): starting it again in 1 s" % killed in two.log.read_text()
    assert running(pids(two)[0]) and running(pids(two)[1])
    assert checks_over_new_connections(data_dir, two.endpoint) == [health_pb2.HealthCheckResponse.SERVING] * CONNECTIONS


def test_killing_jpr_serve_takes_its_processes_with_it(two: ServeProcess) -> None:
    children = pids(two).values()
    two.kill()
    wait_until(lambda: not any(running(pid) for pid in children), timeout=10)


def serve_on(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "jpr"), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}", "--processes", "2"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def assert_refused(taken: subprocess.CompletedProcess[str], port: int) -> None:
    assert taken.returncode == 1
    assert f"jpr: cannot listen on 127.0.0.1:{port}: the address is taken by another process (--listen, JPR_LISTEN)" in taken.stderr
    assert "serving on" not in taken.stdout and "Traceback" not in taken.stderr


def test_a_foreign_listener_on_the_port_stops_jpr_serve_with_an_error_naming_listen(data_dir: Path) -> None:
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        assert_refused(serve_on(data_dir, foreign.getsockname()[1]), foreign.getsockname()[1])


def test_a_second_jpr_serve_on_the_port_of_one_with_processes_is_refused_not_sharing_it(
    two: ServeProcess, data_dir: Path, tmp_path: Path
) -> None:
    assert main(["init", "--data-dir", str(tmp_path / "second")]) == 0
    assert_refused(serve_on(tmp_path / "second", two.port), two.port)
    assert checks_over_new_connections(data_dir, two.endpoint, 4) == [health_pb2.HealthCheckResponse.SERVING] * 4


@pytest.mark.long
def test_a_process_that_keeps_exiting_stops_the_registry_with_a_log_line_saying_so(two: ServeProcess, data_dir: Path) -> None:
    (data_dir / "registry.db").rename(data_dir.parent / "moved.db")  # the processes serving keep theirs open; a new one finds none
    subprocess.run(["kill", "-KILL", str(pids(two)[1])], check=True)
    assert two.process.wait(timeout=90) == 1  # restarts after 1, 2, 4 and 8 s, each failing at once
    log = two.log.read_text()
    assert log.count("process 1 could not start again: ") == 4
    assert "process 1 exited 5 times within 60 s (last: exit code 1): stopping the registry" in log
    assert not any(running(pid) for pid in pids(two).values()) and "Traceback" not in log
