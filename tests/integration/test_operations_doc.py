"""docs/operations.md's commands, run as written against a registry served as `make run` serves it.

The guide's convention: an `sh` block runs as written, in order with the others, from the directory
holding `jpr-data` while the registry serves it; a `shell` block needs what this test cannot have
(root, Docker, another machine, a server that runs until stopped) and says so on its first line.
Other blocks (JSON, TOML, output) are neither. Sections may come and go: every `sh` block runs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.documents import ROOT, fenced_blocks
from tests.processes import cli_environ, served_from_scratch

OPERATIONS = ROOT / "docs" / "operations.md"
RUN, SHOWN = "sh", "shell"


@pytest.mark.long
def test_every_sh_block_of_the_operations_guide_runs_as_written_in_order(tmp_path: Path) -> None:
    blocks = [block for block in fenced_blocks(OPERATIONS) if block.language == RUN]
    assert blocks, f"docs/operations.md has no `{RUN}` block"
    with served_from_scratch(tmp_path) as server:
        environ = cli_environ(JPR_ENDPOINT=server.endpoint)
        for block in blocks:
            # -e: a block stops at its first failing command, as an operator pasting it would notice.
            result = subprocess.run(["sh", "-eu", "-c", block.text], cwd=tmp_path, env=environ,
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"docs/operations.md:{block.line}\n{block.text}{result.stdout}{result.stderr}"
    # The blocks did their work, not only exited 0: the backup block wrote a file only its owner reads.
    [backup] = (tmp_path / "backups").iterdir()
    assert backup.stat().st_size > 0 and backup.stat().st_mode & 0o777 == 0o600


def test_each_block_not_run_says_why_on_its_first_line() -> None:
    shown = [block for block in fenced_blocks(OPERATIONS) if block.language == SHOWN]
    assert shown and [block.line for block in shown if not block.text.lstrip().startswith("#")] == []
