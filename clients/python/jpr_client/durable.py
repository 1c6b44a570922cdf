"""Small state files that must survive a crash whole: a cursor, the last checkpoint a monitor or witness verified.

A reader sees either the old content or the new one, never half of either, and once `replace_file`
returns the new content survives a power cut: temporary file in the same directory, fsync, rename,
fsync of the directory (the rename is only durable once the directory is).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

if sys.platform != "win32":
    import fcntl


def replace_file(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write `text` (UTF-8) to `path` atomically and durably.

    Example:
        >>> replace_file(Path("jpr-changes.cursor"), "42\\n")  # doctest: +SKIP
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`'s companion `.lock` file: two processes sharing one state file
    (two workers of a platform, a witness run twice by cron) read, check and write it one at a time,
    as Go's checksum database client compares and swaps its latest tree note.

    Example:
        >>> with locked(Path("jpr-log.state")):  # doctest: +SKIP
        ...     ...  # read, check, replace_file
    """
    if sys.platform == "win32":  # no flock: there, give each process its own state file
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
