"""Witnesses against a real registry: `jpr witness keygen`, `jpr admin witnesses add`, `jpr witness run`
cosigns, the registry serves the cosignature, and a member requiring k of n witnesses accepts only
checkpoints they cosigned; a witness refuses a rewritten history after a restart."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from jpr_client import Cosigner, Credentials, LogForkError, MonitorConfig, RPCError, RegistryClient
from tests.conftest import Registry
from tests.integration.test_cli import Jpr
from tests.integration.test_log_monitor import grown, rewrite_history
from tests.integration.test_lookup import RIC, report


@pytest.fixture
def jpr(registry: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Jpr:
    return Jpr(registry, capsys, tmp_path)


def keygen(jpr: Jpr, name: str) -> tuple[Path, str]:
    key_file = jpr.workdir / f"{name}.witness.key"
    verifier_key = jpr("witness", "keygen", name, "--out", str(key_file)).strip()
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    return key_file, verifier_key


def test_a_witness_added_by_the_association_cosigns_and_members_can_require_it(
    registry: Registry, jpr: Jpr, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    key_file, verifier_key = keygen(jpr, "witness.platform-a")
    assert "witness witness.platform-a added" in jpr.admin("admin", "witnesses", "add", verifier_key, "--reason", "platform A's witness")
    listed = json.loads(jpr.admin("admin", "witnesses", "list", "--json"))
    assert [(w["name"], w["verifier_key"], w["removed_at"]) for w in listed] == [("witness.platform-a", verifier_key, None)]
    credentials = member("platform-a")
    credentials_file = tmp_path / "platform-a.credentials.json"
    credentials.save(credentials_file)
    required = MonitorConfig(witnesses=(verifier_key,), min_witnesses=1)
    with RegistryClient(credentials) as plain, RegistryClient(credentials, monitor=required) as strict:
        plain.prove_receipt(plain.submit_report(report(("cn_ric", RIC))))
        with pytest.raises(RPCError) as caught:
            strict.checkpoint()  # nobody cosigned yet: the registry has no checkpoint to show (WitnessQuorumError if it showed one)
        assert caught.value.status is grpc.StatusCode.NOT_FOUND
        state = tmp_path / "witness.state.json"
        out = jpr("witness", "run", "--credentials", str(credentials_file), "--endpoint", registry.endpoint,
                  "--key", str(key_file), "--state", str(state), "--once", "--json")
        cosigned = json.loads(out)
        assert strict.checkpoint().size == cosigned["size"]  # the registry serves it with the witness's cosignature


def test_a_witness_refuses_a_rewritten_history_after_a_restart(
    registry: Registry, jpr: Jpr, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    key_file, verifier_key = keygen(jpr, "witness.regulator")
    jpr.admin("admin", "witnesses", "add", verifier_key, "--reason", "the regulator")
    cosigner = Cosigner.from_key_string(key_file.read_text(encoding="ascii").strip())
    state = tmp_path / "witness.state.json"
    with RegistryClient(member("platform-a")) as client:
        client.prove_receipt(client.submit_report(report(("cn_ric", RIC))))
        seen = client.witness(cosigner, state)
    recorded = state.read_text(encoding="utf-8")
    rewrite_history(registry, leaf_index=0)
    with RegistryClient(member("platform-b")) as restarted:  # another process, the same state file
        grown(restarted, seen.size)
        with pytest.raises(LogForkError):
            restarted.witness(cosigner, state)
    assert state.read_text(encoding="utf-8") == recorded
    credentials_file = tmp_path / "platform-c.credentials.json"
    member("platform-c").save(credentials_file)
    err = jpr("witness", "run", "--credentials", str(credentials_file), "--endpoint", registry.endpoint,
              "--key", str(key_file), "--state", str(state), "--once", ok=False)
    assert "forked" in err and str(state) in err
