"""One registry per address: a second `jpr serve` on a taken port fails instead of sharing it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from registry.cli.main import main
from tests.integration.test_streams import serving
from tests.processes import BIN


def test_serve_on_an_address_another_registry_listens_on_exits_non_zero_naming_the_address(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for data_dir in (first, second):
        assert main(["init", "--data-dir", str(data_dir)]) == 0
    with serving(first, "") as running:
        address = f"127.0.0.1:{running.port}"
        taken = subprocess.run(
            [str(BIN / "jpr"), "serve", "--data-dir", str(second), "--listen", address],
            capture_output=True, text=True, timeout=60,
        )
    assert taken.returncode != 0
    assert f"cannot listen on {address}: the address is taken by another process" in taken.stderr
    assert "serving on" not in taken.stdout
    assert "Traceback" not in taken.stderr
