"""The SDK is its own distribution: a platform installs `jpr-client` alone and screens applicants with it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from email.parser import Parser
from pathlib import Path

import pytest

import jpr_client
from jpr_client import Category, Credentials, NewReport, RegistryClient, Role, Severity, normalize
from jpr_client.api.jpr.v1 import admin_pb2
from tests.conftest import AdminClient

ROOT = Path(__file__).resolve().parents[2]
SDK_DEPENDENCIES = {"grpcio", "protobuf", "cryptography", "rbcl", "python-stdnum", "phonenumbers", "idna", "rfc8785"}

# The README quickstart's lookup, as platform code writes it against the SDK alone.
QUICKSTART_LOOKUP = """
import sys
from jpr_client import Applicant, Credentials, RegistryClient, Role, normalize

with RegistryClient(Credentials.load(sys.argv[1])) as client:
    result = client.lookup(Applicant(Role.MERCHANT, (normalize("cn_ric", "11010519491231002X"),)))
print(result.verdict.name, *sorted(c.name for m in result.matches for c in m.categories))
"""

# Every module of the installed SDK imports without the server (and is the installed copy, not the repository's).
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, jpr_client
for module in pkgutil.walk_packages(jpr_client.__path__, "jpr_client."):
    importlib.import_module(module.name)
print(jpr_client.__file__)
"""


def build_wheels(out: Path) -> tuple[Path, Path]:
    """The SDK's and the registry's wheels, built from a copy so the working tree gets no build/ folders."""
    source = out / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "clients" / "python", source / "clients" / "python", ignore=ignore)
    shutil.copytree(ROOT / "registry", source / "registry", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = out / "wheels"
    for project in (source / "clients" / "python", source):
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(project)]
        subprocess.run(pip, check=True, capture_output=True)
    (sdk,) = wheels.glob("jpr_client-*.whl")
    (server,) = wheels.glob("jpr-*.whl")
    return sdk, server


def requirements(wheel: Path) -> dict[str, str]:
    """Requires-Dist of a wheel: distribution name -> its version specifier."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(metadata).decode("utf-8"))
    parsed = (re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*(.*)", line) for line in message.get_all("Requires-Dist") or [])
    return {m.group(1).lower(): m.group(2) for m in parsed if m and "extra ==" not in m.group(2)}


def files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if not name.split("/")[0].endswith((".dist-info", ".data"))}


def packages(wheel: Path) -> set[str]:
    return {name.split("/")[0] for name in files(wheel)}


def run_code(python: Path, code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -c code args` away from the repository, whose folders would be importable from the working directory."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return subprocess.run([python, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def accepted_report(admin: AdminClient, platform: RegistryClient) -> None:
    """The quickstart's report by platform-a, accepted by the association."""
    receipt = platform.submit_report(
        NewReport(
            role=Role.MERCHANT,
            identifiers=(normalize("cn_ric", "11010519491231002X"), normalize("phone", "13800138000")),
            category=Category.COUNTERFEIT_OR_SUBSTANDARD_GOODS,
            severity=Severity.SEVERE,
            summary="sold counterfeit cosmetics in three live sessions",
            platform_action="store closed",
            evidence_sha256=hashlib.sha256(b"test purchase").digest(),
        )
    )
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, reason="counterfeits confirmed"))


@pytest.mark.long
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_sdk_wheel_alone_installs_without_the_server_and_looks_up_a_listed_merchant(
    tmp_path: Path, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    sdk, server = build_wheels(tmp_path)
    assert packages(sdk) == {"jpr_client"} and packages(server) == {"registry"}  # one definition of each part
    assert {"jpr_client/py.typed", "jpr_client/api/jpr/v1/registry_pb2.pyi"} <= files(sdk)  # typed for platform code
    assert set(requirements(sdk)) == SDK_DEPENDENCIES
    assert requirements(server)["jpr-client"] == f"=={jpr_client.__version__}"

    venv = tmp_path / "platform-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(sdk)], check=True, capture_output=True)

    with RegistryClient(member("platform-a")) as platform_a:
        accepted_report(admin, platform_a)
    member("platform-b").save(tmp_path / "platform-b.credentials.json")

    for server_only in ("sqlalchemy", "alembic", "psycopg", "registry"):
        refused = run_code(python, f"import {server_only}", cwd=tmp_path)
        assert "ModuleNotFoundError" in refused.stderr, f"{server_only} is importable next to the SDK alone"
    every_module = run_code(python, IMPORT_EVERY_MODULE, cwd=tmp_path)
    assert every_module.returncode == 0, every_module.stderr
    assert every_module.stdout.startswith(str(venv))
    lookup = run_code(python, QUICKSTART_LOOKUP, "platform-b.credentials.json", cwd=tmp_path)
    assert lookup.returncode == 0, lookup.stderr
    assert lookup.stdout.split() == ["DENY", "COUNTERFEIT_OR_SUBSTANDARD_GOODS"]


def test_under_ci_the_whole_suite_runs_on_the_installed_wheels_not_on_the_working_tree() -> None:
    """`make test` under CI=true installs both wheels; a package file they leave out then fails the suite."""
    import importlib.metadata
    import sysconfig

    import registry

    mode = os.environ.get("JPR_TEST_INSTALL")
    if mode != "wheels":
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the suite runs on an install of kind {mode!r}; `make test` under CI=true installs the wheels")
        pytest.skip("the suite runs on the editable install; `make test INSTALL=wheels` (the default under CI=true) runs it on the wheels")
    for package, distribution in ((registry, "jpr"), (jpr_client, "jpr-client")):
        location = Path(package.__file__).resolve()
        site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
        assert location.is_relative_to(site_packages), f"{package.__name__} was imported from the working tree: {location}"
        installed = importlib.metadata.distribution(distribution)
        assert installed.read_text("direct_url.json") is None or '"editable": true' not in installed.read_text("direct_url.json")
        assert Path(str(installed.locate_file(package.__name__))).resolve() == location.parent
