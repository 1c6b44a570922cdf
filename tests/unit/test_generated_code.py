"""The committed generated code must be what `make protos` makes from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "clients" / "python" / "jpr_client" / "api"


def test_generated_code_matches_the_proto_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "jpr").rglob("*") if p.is_file()}
    committed = {p.relative_to(COMMITTED): p.read_bytes() for p in (COMMITTED / "jpr").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert sorted(fresh) == sorted(committed), "generated files differ in name: run `make protos`"
    stale = [str(name) for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"generated code is stale, run `make protos`: {stale}"


def test_every_proto_service_is_generated() -> None:
    from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2

    assert set(registry_pb2.DESCRIPTOR.services_by_name) == {"Registry"}
    assert set(admin_pb2.DESCRIPTOR.services_by_name) == {"Admin"}
