"""No file left behind: `jpr` commands and a `jpr serve` start and stop leave $TMPDIR as they found it.

Each process runs as operators run it, a separate `jpr` with its own fresh,
empty $TMPDIR, so a leftover names the command that left it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from registry.datadir import ADMIN_CREDENTIALS, PROBE_CREDENTIALS
from tests.processes import BIN, ServeProcess

RIC = "11010519491231002X"
REPORT_FLAGS = (
    "--role", "merchant", "--cn-ric", RIC, "--category", "fraud", "--severity", "serious",
    "--summary", "refund fraud", "--action", "store closed", "--evidence-sha256", "00" * 32,
)


class Jpr:
    """`jpr` as a subprocess; every run (and every `jpr serve`) gets a temporary directory of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmpdirs: dict[str, Path] = {}

    def tmpdir_for(self, label: str) -> Path:
        path = self.root / f"tmp-{len(self.tmpdirs):02d}"
        path.mkdir(parents=True)
        self.tmpdirs[f"{len(self.tmpdirs):02d} jpr {label}"] = path
        return path

    def __call__(self, *argv: str, ok: bool = True) -> str:
        """Its standard output, or when it must fail (`ok=False`) its one-line reason."""
        tmpdir = self.tmpdir_for(" ".join(argv[:3]))
        env = {**os.environ, "TMPDIR": str(tmpdir)}
        done = subprocess.run([str(BIN / "jpr"), *argv], env=env, capture_output=True, text=True, timeout=60)
        assert (done.returncode == 0) is ok, f"jpr {' '.join(argv)}: exit {done.returncode}: {done.stderr}"
        return done.stdout if ok else done.stderr

    def leftovers(self) -> dict[str, list[str]]:
        """Each run whose temporary directory is no longer empty, with what it left there."""
        return {label: sorted(os.listdir(path)) for label, path in self.tmpdirs.items() if os.listdir(path)}


@pytest.mark.long
def test_twenty_commands_and_a_serve_start_and_stop_leave_tmpdir_as_it_was(tmp_path: Path) -> None:
    jpr, data, work = Jpr(tmp_path / "tmpdirs"), tmp_path / "jpr-data", tmp_path / "work"
    work.mkdir()
    assert "Joint Punishment Registry" in jpr("--help")
    jpr("init", "--data-dir", str(data), "--name", "jpr-tmp-test")
    jpr("db", "current", "--data-dir", str(data))
    jpr("db", "upgrade", "--data-dir", str(data))
    with ServeProcess(data, environ={"TMPDIR": str(jpr.tmpdir_for("serve"))}) as serve:
        admin = ("--credentials", str(data / ADMIN_CREDENTIALS), "--endpoint", serve.endpoint)

        def member(name: str) -> tuple[str, ...]:
            return ("--credentials", str(work / f"{name}.credentials.json"), "--endpoint", serve.endpoint)

        assert jpr("health", "--credentials", str(data / PROBE_CREDENTIALS), "--endpoint", serve.endpoint).strip() == "SERVING"
        issuer = ("--issuer", str(data / "issuer"))  # where `jpr init` put the CA key
        jpr("admin", "members", "add", "platform-a", "--generate", "--out", str(work / "platform-a.credentials.json"), *admin, *issuer)
        jpr("member", "keygen", "platform-b", "--out-dir", str(work))
        jpr("admin", "members", "add", "platform-b", "--request", str(work / "platform-b.request.json"), "--out", str(work / "issued.json"),
            *admin, *issuer)
        jpr("member", "credentials", "--keys", str(work / "platform-b.keys.json"), "--issued", str(work / "issued.json"),
            "--out", str(work / "platform-b.credentials.json"))
        assert len(json.loads(jpr("admin", "members", "list", "--json", *admin))) == 2
        receipt = json.loads(jpr("report", *member("platform-a"), *REPORT_FLAGS, "--json"))
        assert receipt["report_id"] in jpr("admin", "reports", "list", "--status", "submitted", *admin)
        jpr("admin", "reports", "accept", receipt["report_id"], "--term-days", "30", *admin)
        assert "verdict: DENY" in jpr("lookup", *member("platform-b"), "--role", "merchant", "--cn-ric", RIC)
        assert json.loads(jpr("lookup", *member("platform-a"), "--role", "anchor", "--phone", "13800138000", "--json"))["verdict"] == "CLEAR"
        assert "invalid cn_ric" in jpr("lookup", *member("platform-a"), "--role", "merchant", "--cn-ric", "110105194912310021", ok=False)
        jpr("admin", "listings", "list", "--status", "active", "--json", *admin)
        jpr("admin", "subjects", "show", receipt["subject_id"], *admin)
        jpr("admin", "audit", "access", *admin)
        assert "integrity ok" in jpr("db", "backup", str(work / "backup.db"), "--data-dir", str(data))
        serve.stop()  # SIGTERM: the registry's own shutdown runs
    assert serve.process.returncode == 0 and "stopped" in serve.log.read_text()
    assert len(jpr.tmpdirs) == 21  # twenty commands and the server
    assert jpr.leftovers() == {}
