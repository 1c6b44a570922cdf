"""Where a member's watch of the changes feed stands, kept in a file that survives restarts."""

from __future__ import annotations

import os
from pathlib import Path

from jpr_client.durable import replace_file


class CursorFile:
    """The last change a member has processed. Written atomically (temporary file, fsync, rename)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str:
        """The saved cursor, or "" (the first change) when there is none yet."""
        try:
            return self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return ""

    def save(self, cursor: str) -> None:
        replace_file(self.path, cursor + "\n")
