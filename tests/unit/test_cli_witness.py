"""`jpr witness`: keygen writes a private key file only its owner reads, and `run` refuses unusable
input with one line saying what to fix, before it calls any registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jpr_client.transparency.cosignature import Cosigner
from jpr_client.transparency.note import ALG_COSIGNATURE_V1, Verifier
from registry.cli.main import main


def test_keygen_writes_a_0600_key_and_prints_its_cosignature_verifier_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "w.key"
    assert main(["witness", "keygen", "witness.example", "--out", str(key_file)]) == 0
    printed = capsys.readouterr().out.strip()
    verifier = Verifier.from_key_string(printed)
    assert verifier.name == "witness.example" and verifier.alg == ALG_COSIGNATURE_V1
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert Cosigner.from_key_string(key_file.read_text(encoding="ascii").strip()).verifier() == verifier
    assert main(["witness", "keygen", "witness.example", "--out", str(key_file)]) == 1
    assert "never overwritten" in capsys.readouterr().err


@pytest.mark.parametrize(("key", "extra", "says"), [
    (None, [], "cannot read the witness key file"),
    ("not a key", [], "holds no witness key"),
    ("valid", ["--interval", "0"], "--interval is 0"),
])
def test_run_refuses_unusable_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str | None, extra: list[str], says: str
) -> None:
    key_file = tmp_path / "w.key"
    if key == "valid":
        main(["witness", "keygen", "witness.example", "--out", str(key_file)])
    elif key is not None:
        key_file.write_text(key, encoding="ascii")
    capsys.readouterr()
    credentials = tmp_path / "missing.credentials.json"
    code = main(["witness", "run", "--credentials", str(credentials), "--key", str(key_file), "--state", str(tmp_path / "s"), *extra])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("jpr: "), err
    assert says in err, err
