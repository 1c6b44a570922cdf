"""A registry served the way an operator starts one, for the benchmarks that drive the CLI.

`jpr init`, `jpr serve --listen 127.0.0.1:0` (its port read from its log) and `jpr admin
members add --generate` for one member, all through the installed console script; the
server is stopped on exit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The console script pip installed, as a platform runs it (`.venv/bin/jpr`), through this interpreter.
JPR = [sys.executable, str(Path(sys.executable).parent / "jpr")]


@dataclass(frozen=True)
class Served:
    endpoint: str
    data_dir: Path
    member: Path  # the member's credentials file

    @property
    def admin(self) -> Path:
        return self.data_dir / "admin.credentials.json"

    @property
    def probe(self) -> Path:
        return self.data_dir / "probe.credentials.json"


@contextmanager
def served(root: Path, member: str, environ: Mapping[str, str] | None = None) -> Iterator[Served]:
    data = root / "jpr-data"
    subprocess.run([*JPR, "init", "--data-dir", str(data)], check=True, capture_output=True)
    log = root / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([*JPR, "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0"],
                                  stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(environ or {})})
    try:
        endpoint = _listening(log, server)
        credentials = root / f"{member}.credentials.json"
        subprocess.run([*JPR, "admin", "members", "add", "--credentials", str(data / "admin.credentials.json"), "--endpoint", endpoint,
                        "--issuer", str(data / "issuer"), "--generate", "--out", str(credentials), member], check=True, capture_output=True)
        yield Served(endpoint, data, credentials)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def _listening(log: Path, server: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening at 127\.0\.0\.1:\d+ \(port (\d+)\)", log.read_text(errors="replace"))
        if found:
            return f"127.0.0.1:{found.group(1)}"
        if server.poll() is not None:
            raise SystemExit(f"jpr serve exited {server.returncode}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    raise SystemExit(f"jpr serve did not listen within 60 s:\n{log.read_text(errors='replace')}")
