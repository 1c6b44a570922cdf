"""The docker/ files cannot be built here; check what can be checked without an engine."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_image_runs_as_a_non_root_user_with_a_grpc_health_check() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1\d-slim", dockerfile, re.M)
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
