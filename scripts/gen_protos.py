"""Generate the SDK's jpr_client/api/jpr/v1 from protos/jpr/v1 (run by `make protos`).

protoc writes cross-file imports as `from jpr.v1 import ...`; the generated
package lives in the SDK, which the registry builds on, at
`jpr_client.api.jpr.v1`, so those imports are rewritten.
`tests/unit/test_generated_code.py` runs this into a temporary folder and
fails when the committed code differs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc
import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
API = ROOT / "clients" / "python" / "jpr_client" / "api"
IMPORT = re.compile(rb"^from jpr\.v1 import ", re.MULTILINE)


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "jpr" / "v1").glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in (out / "jpr").rglob("*.py*"):
        path.write_bytes(IMPORT.sub(b"from jpr_client.api.jpr.v1 import ", path.read_bytes()))
    for package in (out / "jpr", out / "jpr" / "v1"):
        (package / "__init__.py").touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=API)
    args = parser.parse_args()
    target = args.out / "jpr"
    if target.exists():
        shutil.rmtree(target)
    generate(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
