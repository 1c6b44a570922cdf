"""Platform code type-checks against the SDK with concrete types (py.typed, no Any in results)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "platform_onboarding.py"

REVEALS = '''
from jpr_client import Applicant, NewReport, RegistryClient
def revealed(client: RegistryClient, applicant: Applicant, report: NewReport) -> None:
    reveal_type(client.lookup(applicant))
    reveal_type(client.lookup_batch([applicant]))
    reveal_type(client.submit_report(report))
    reveal_type(client.watch_changes("cursor"))
'''


def mypy(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict as a platform runs it: its own directory, no project config, the SDK and nothing of the server.

    The SDK is installed editable here, through an import hook mypy cannot follow, so its source directory is
    given as MYPYPATH: what a platform's installed wheel holds (tests/integration/test_sdk_distribution.py
    checks that the wheel ships py.typed and the stubs).
    """
    # An installed package's own errors are not the platform's: mypy stays silent about them, as here.
    (cwd / "mypy.ini").write_text("[mypy]\n\n[mypy-jpr_client.*]\nfollow_imports = silent\n")
    environment = {**os.environ, "MYPYPATH": str(ROOT / "clients" / "python")}
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini", "--no-incremental", *arguments],
                          capture_output=True, text=True, cwd=cwd, timeout=300, env=environment)


def test_the_platform_example_passes_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "platform_onboarding.py").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    checked = mypy("platform_onboarding.py", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_lookup_lookup_batch_submit_report_and_watch_changes_have_concrete_result_types(tmp_path: Path) -> None:
    (tmp_path / "reveals.py").write_text(REVEALS, encoding="utf-8")
    checked = mypy("reveals.py", cwd=tmp_path)
    revealed = [line.split('Revealed type is "', 1)[1].rstrip('"') for line in checked.stdout.splitlines() if "Revealed type" in line]
    assert revealed == [
        "jpr_client.model.LookupResult",
        "list[jpr_client.model.LookupResult]",
        "jpr_client.model.Receipt",
        "typing.Iterator[jpr_client.model.ListingChange]",
    ], checked.stdout
