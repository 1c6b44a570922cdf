"""Platform commands start without the server's storage stack: no SQLAlchemy, no Alembic."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jpr_client import Credentials
from registry.datadir import PROBE_CREDENTIALS
from tests.conftest import Registry
from tests.integration.test_lookup import RIC

SERVER_ONLY = ("sqlalchemy", "alembic", "psycopg")


def imported(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `jpr ARGV` as a fresh process under `-X importtime`; the top-level packages it imported."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "registry.cli.main", *argv],
                         capture_output=True, text=True, timeout=60)
    modules = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in run.stderr.splitlines() if line.startswith("import time:")}
    return run, modules


@pytest.mark.parametrize("argv", [["--help"], ["lookup", "--help"], ["report", "--help"], ["health", "--help"]])
def test_help_of_the_platform_commands_imports_no_storage_package(argv: list[str]) -> None:
    run, modules = imported(*argv)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not modules & set(SERVER_ONLY), f"jpr {' '.join(argv)} imported {sorted(modules & set(SERVER_ONLY))}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_lookup_and_health_against_a_registry_import_no_storage_package(
    registry: Registry, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    platform = tmp_path / "platform-b.credentials.json"
    member("platform-b").with_endpoint(registry.endpoint).save(platform)
    probe = Credentials.load(registry.data_dir / PROBE_CREDENTIALS).with_endpoint(registry.endpoint)
    probe_file = tmp_path / "probe.credentials.json"
    probe.save(probe_file)
    for argv, says in ((["lookup", "--credentials", str(platform), "--role", "merchant", "--cn-ric", RIC], "verdict: CLEAR"),
                       (["health", "--credentials", str(probe_file)], "SERVING")):
        run, modules = imported(*argv)
        assert run.returncode == 0 and says in run.stdout, run.stderr[-2000:]
        assert not modules & set(SERVER_ONLY), f"jpr {argv[0]} imported {sorted(modules & set(SERVER_ONLY))}"


def test_jpr_version_is_the_sdks_version_and_the_installed_distributions() -> None:
    from importlib.metadata import version

    import jpr_client

    run, modules = imported("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"jpr {jpr_client.__version__} (protocol jpr.v1)"
    assert version("jpr") == jpr_client.__version__
    assert not modules & set(SERVER_ONLY)
