"""The docker/ files cannot be built here; check what can be checked without an engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from jpr_client import __version__
from registry.datadir import CA_KEY, REPLICA_FILES

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILES = ("compose.yaml", "compose.sqlite.yaml")
REPLICAS = ("migrate", "registry-1", "registry-2")  # every compose.yaml service that runs the registry image
IMAGE_USER = "10001:10001"


def services(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / name).read_text())["services"]
    return loaded


def test_image_runs_as_a_non_root_user_with_a_grpc_health_check() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1\d\.\d+-slim-\w+", dockerfile, re.M)  # a pinned version
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile and '"jpr", "health"' in dockerfile


def test_no_key_or_certificate_is_copied_into_the_image() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    copied = " ".join(re.findall(r"^COPY (.+)$", dockerfile, re.M))
    for secret in (".key", ".pem", "credentials", "jpr-data"):
        assert secret not in copied


def test_compose_health_command_flags_exist() -> None:
    from registry.cli.main import build_parser

    build_parser().parse_args(["health", "--credentials", "x", "--endpoint", "127.0.0.1:50051"])
    build_parser().parse_args(["init", "--data-dir", "d", "--host", "registry", "--endpoint", "127.0.0.1:50051"])
    build_parser().parse_args(["init", "--data-dir", "d", "--no-database", "--owner", "10001:10001", "--host", "registry"])


def test_the_image_user_is_the_one_compose_and_prepare_hand_the_files_to() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "--uid 10001 --gid 10001" in dockerfile and "--gid 10001 jpr" in dockerfile
    assert f"image_user={IMAGE_USER}" in (DOCKER / "prepare").read_text()
    for name in COMPOSE_FILES:
        assert {s["user"] for s in services(name).values() if s["image"].startswith("jpr-registry")} == {IMAGE_USER}


def test_each_replica_mounts_exactly_the_files_a_replica_reads_read_only_and_never_the_ca_key() -> None:
    for name in REPLICAS:
        mounts = services("compose.yaml")[name]["volumes"]
        assert all(m["type"] == "bind" and m["read_only"] for m in mounts), name
        assert {m["source"]: m["target"] for m in mounts} == {
            f"./jpr-data/{file}": f"/var/lib/jpr/data/{file}" for file in REPLICA_FILES
        }, name
    assert CA_KEY not in REPLICA_FILES and CA_KEY not in (DOCKER / "compose.yaml").read_text()


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_service_drops_privileges_is_read_only_limited_and_pinned(name: str) -> None:
    for service, spec in services(name).items():
        assert spec["cap_drop"] == ["ALL"] and spec["security_opt"] == ["no-new-privileges:true"], service
        assert spec["read_only"] is True and "/tmp" in spec["tmpfs"], service
        assert set(spec["deploy"]["resources"]["limits"]) == {"cpus", "memory", "pids"}, service
        image, _, tag = spec["image"].partition(":")
        assert re.fullmatch(r"\d+(\.\d+)+(-\w+)?", tag), f"{service}: {spec['image']} is not pinned to a version"
        if image == "jpr-registry":
            assert tag == __version__, f"{service}: the registry image is tagged with the SDK's version"


def test_the_database_password_secret_is_prepared_for_the_container_user() -> None:
    prepare = (DOCKER / "prepare").read_text()
    secret = yaml.safe_load((DOCKER / "compose.yaml").read_text())["secrets"]["db-password"]["file"]
    assert secret == "./db-password.txt"
    assert 'chown "$image_user" "$deploy_dir/db-password.txt"' in prepare and "umask 077" in prepare
    assert "--owner \"$image_user\"" in prepare


def test_the_replicas_sit_behind_one_tcp_load_balancer_the_certificate_names() -> None:
    compose = services("compose.yaml")
    balancer = compose["registry"]
    assert balancer["image"].startswith("haproxy:") and balancer["ports"] == ["127.0.0.1:50051:50051"]
    assert [m["source"] for m in balancer["volumes"]] == ["./haproxy.cfg"]
    assert all("ports" not in compose[name] for name in REPLICAS)  # reached through the balancer only
    replicas = {balancer["environment"][f"REPLICA_{n}"] for n in (1, 2)}
    assert replicas == {"registry-1:50051", "registry-2:50051"}
    config = (DOCKER / "haproxy.cfg").read_text()
    assert re.search(r"^\s+mode tcp$", config, re.M) and " ssl" not in config  # TLS passes through to the replicas
    assert re.search(r"^\s+default-server check ", config, re.M)
    assert re.findall(r'^\s+server (\S+) "\$\{(REPLICA_\d)\}"', config, re.M) == [
        ("registry-1", "REPLICA_1"), ("registry-2", "REPLICA_2"),
    ]
    hosts = re.findall(r"--host (\S+)", (DOCKER / "prepare").read_text())
    assert {"registry", "registry-1", "registry-2"} <= set(hosts)  # every name clients may dial is in the certificate
