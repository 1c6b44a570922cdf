"""Platform commands start without the server's storage stack (no SQLAlchemy, no Alembic) and
`jpr COMMAND` loads only that command's code: the cold start that bench/cli_start.py measures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jpr_client import Credentials
from jpr_client.api.jpr.v1 import admin_pb2
from jpr_client.transparency.cosignature import generate_witness_key
from registry.datadir import PROBE_CREDENTIALS
from tests.conftest import AdminClient, Registry
from tests.integration.test_lookup import RIC

SERVER_ONLY = ("sqlalchemy", "alembic", "psycopg")
# What a platform command has no use for: the other commands' code, the data directory's keys and
# CA, the server. Loading any of them is where the cold start went before. (The SDK reads its own
# certificate's expiry with cryptography.x509, to warn within 30 days of it: that one stays.)
NOT_FOR_PLATFORM_COMMANDS = ("registry.cli.admin", "registry.cli.db", "registry.cli.member", "registry.cli.enrollment",
                             "registry.crypto.pki", "registry.datadir", "registry.server", "registry.store")


def imported(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `jpr ARGV` as a fresh process; the top-level packages it imported."""
    run, modules = imported_modules(*argv)
    return run, {name.split(".")[0] for name in modules}


def imported_modules(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `jpr ARGV` in a fresh interpreter; every module loaded by the time it exits (help included)."""
    run = subprocess.run([sys.executable, "-c", _REPORT_MODULES, *argv], capture_output=True, text=True, timeout=60)
    before, _, listed = run.stderr.rpartition(_MARK)
    return subprocess.CompletedProcess(run.args, run.returncode, run.stdout, before), set(listed.split())


_MARK = "\nloaded modules: "
_REPORT_MODULES = f"""
import sys
from registry.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
sys.stderr.write({_MARK!r} + " ".join(sys.modules))
sys.exit(code)
"""


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_jpr_help_loads_no_command_and_no_grpc() -> None:
    run, modules = imported_modules("--help")
    assert run.returncode == 0 and "lookup" in run.stdout and "retract" in run.stdout, run.stderr[-2000:]
    assert not loaded(modules, ("grpc", "rbcl", "cryptography", "phonenumbers", "jpr_client.client", "registry.cli.audit",
                                "registry.cli.server", *NOT_FOR_PLATFORM_COMMANDS))


@pytest.mark.parametrize("command", ["init", "health", "serve", "db", "admin", "member", "lookup", "report", "retract", "witness"])
def test_each_command_loads_its_own_module_and_still_has_its_flags(command: str) -> None:
    from registry.cli.main import COMMANDS

    run, modules = imported_modules(command, "--help")
    assert run.returncode == 0 and run.stdout.startswith(f"usage: jpr {command} [-h]"), run.stderr[-2000:]
    own = f"registry.cli.{COMMANDS[command][0]}"
    others = {f"registry.cli.{module}" for module, _ in COMMANDS.values()} - {own}
    assert own in modules and not loaded(modules, tuple(others))


@pytest.mark.parametrize("argv", [["--help"], ["lookup", "--help"], ["report", "--help"], ["health", "--help"], ["witness", "run", "--help"]])
def test_help_of_the_platform_commands_imports_no_storage_package(argv: list[str]) -> None:
    run, modules = imported(*argv)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not modules & set(SERVER_ONLY), f"jpr {' '.join(argv)} imported {sorted(modules & set(SERVER_ONLY))}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_lookup_health_and_witness_against_a_registry_import_no_storage_package(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    platform = tmp_path / "platform-b.credentials.json"
    member("platform-b").with_endpoint(registry.endpoint).save(platform)
    probe = Credentials.load(registry.data_dir / PROBE_CREDENTIALS).with_endpoint(registry.endpoint)
    probe_file = tmp_path / "probe.credentials.json"
    probe.save(probe_file)
    witness_key, witness_verifier = tmp_path / "witness.key", generate_witness_key("witness.test")
    witness_key.write_text(witness_verifier[0] + "\n", encoding="ascii")
    admin.call("AddWitness", admin_pb2.AddWitnessRequest(verifier_key=witness_verifier[1], reason="cold start"))
    witness = ["--key", str(witness_key), "--state", str(tmp_path / "witness.state.json"), "--once"]
    for argv, says in ((["lookup", "--credentials", str(platform), "--role", "merchant", "--cn-ric", RIC], "verdict: CLEAR"),
                       (["health", "--credentials", str(probe_file)], "SERVING"),
                       (["witness", "run", "--credentials", str(platform), *witness], "cosigned")):
        run, modules = imported_modules(*argv)
        assert run.returncode == 0 and says in run.stdout, run.stderr[-2000:]
        assert not loaded(modules, (*SERVER_ONLY, *NOT_FOR_PLATFORM_COMMANDS)), f"jpr {argv[0]}"


def test_jpr_version_is_the_sdks_version_and_the_installed_distributions() -> None:
    from importlib.metadata import version

    import jpr_client

    run, modules = imported("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"jpr {jpr_client.__version__} (protocol jpr.v1)"
    assert version("jpr") == jpr_client.__version__
    assert not modules & set(SERVER_ONLY)
