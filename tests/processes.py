"""`jpr serve` as a real separate process, as operators run it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
SERVING = re.compile(r"(?m)^serving on 127\.0\.0\.1:(\d+)")


def as_user(user: tuple[int, int] | None) -> list[str]:
    """The prefix that runs a command as (uid, gid) and no other group, as a container's user (needs root).

    setpriv, not subprocess's `user=`: on some kernels the latter's exec is refused where setpriv's is not.
    """
    return ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups"] if user else []


class ServeProcess:
    """One `jpr serve --listen 127.0.0.1:0` process; its output goes to a log file.

    `port`: the port an earlier process got from port 0, to restart in its place.
    `environ`: variables to set for the process on top of this one's.
    `user`: (uid, gid) to run as, as a container's user does (needs root).
    `processes`: `--processes`, 1 unless said: what a test says of one process (its streams, its crash)
    holds for it alone; None leaves the default, one per core, as an operator's `jpr serve` has it.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str = "",
        log: Path | None = None,
        extra: tuple[str, ...] = (),
        port: int = 0,
        environ: Mapping[str, str] | None = None,
        user: tuple[int, int] | None = None,
        processes: int | None = 1,
    ) -> None:
        self.log = log or data_dir.parent / f"serve-{time.monotonic_ns()}.log"
        command = [str(BIN / "jpr"), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}"]
        if database_url:
            command += ["--database-url", database_url]
        if processes is not None:
            command += ["--processes", str(processes)]
        command += extra
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(environ or {})}
        with self.log.open("w") as sink:
            self.process = subprocess.Popen([*as_user(user), *command], stdout=sink, stderr=subprocess.STDOUT, env=env)
        self.port = int(self._wait_for_port())
        self.endpoint = f"127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := SERVING.search(self.log.read_text()):
                return found.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"jpr serve exited with {self.process.returncode}: {self.log.read_text()}")
            time.sleep(0.02)
        self.kill()
        raise AssertionError("jpr serve did not say where it serves")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def cli_environ(**extra: str) -> dict[str, str]:
    """This process's environment with the venv's `jpr` first on PATH, as `. .venv/bin/activate` gives."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


@contextmanager
def served_from_scratch(workdir: Path) -> Iterator[ServeProcess]:
    """`jpr init` then `jpr serve` of `workdir/jpr-data`, as separate processes, as `make run` does."""
    subprocess.run([BIN / "jpr", "init", "--data-dir", "jpr-data"], cwd=workdir, env=cli_environ(), check=True, capture_output=True)
    with ServeProcess(workdir / "jpr-data", processes=None) as server:
        yield server
