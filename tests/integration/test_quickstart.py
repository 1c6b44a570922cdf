"""The README's quickstart, run line for line against a registry started as `make run` does."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import BIN, ServeProcess, cli_environ, served_from_scratch

ROOT = Path(__file__).resolve().parents[2]


def quickstart_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- quickstart:start -->\s*```bash\n(.*?)```\s*<!-- quickstart:end -->", readme, re.S)
    assert block, "README.md has no quickstart block"
    return block.group(1).splitlines()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """`jpr init` then `jpr serve` as separate processes, like `make run`."""
    with served_from_scratch(tmp_path) as server:
        yield tmp_path, server.endpoint


def test_readme_quickstart_ends_with_deny(served: tuple[Path, str]) -> None:
    workdir, endpoint = served
    lines = quickstart_lines()
    assert lines[0] == ". .venv/bin/activate"  # the test's PATH already has the venv
    script = "set -euo pipefail\n" + "\n".join(lines[1:]) + "\n"
    result = subprocess.run(["bash", "-c", script], cwd=workdir, env=cli_environ(JPR_ENDPOINT=endpoint), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "member platform-a registered" in result.stdout
    assert "accepted" in result.stdout
    last = result.stdout.strip().splitlines()
    verdict = next(line for line in last if line.startswith("verdict:"))
    assert verdict == "verdict: DENY"
    assert "COUNTERFEIT_OR_SUBSTANDARD_GOODS" in result.stdout.split("verdict: DENY", 1)[1]


def test_readme_postgresql_commands_serve_from_an_empty_database(tmp_path: Path) -> None:
    """The README's PostgreSQL block, on a fresh empty database: migrate, then serve and answer health."""
    from tests.backends import fresh_postgres_database

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## PostgreSQL.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README.md has no PostgreSQL block"
    upgrade, serve = block.group(1).strip().splitlines()
    url = re.search(r"--database-url (\S+)", upgrade)
    assert url and serve.startswith("jpr serve --database-url")
    env = cli_environ()
    subprocess.run([BIN / "jpr", "init", "--data-dir", "jpr-data", "--no-database"], cwd=tmp_path, env=env, check=True, capture_output=True)
    with fresh_postgres_database() as database_url:
        subprocess.run(["bash", "-c", upgrade.replace(url.group(1), database_url)], cwd=tmp_path, env=env, check=True, capture_output=True)
        with ServeProcess(tmp_path / "jpr-data", database_url) as server:
            health = subprocess.run(
                [BIN / "jpr", "health", "--credentials", "jpr-data/probe.credentials.json", "--endpoint", server.endpoint],
                cwd=tmp_path, env=env, capture_output=True, text=True,
            )
    assert health.stdout.strip() == "SERVING", health.stderr
