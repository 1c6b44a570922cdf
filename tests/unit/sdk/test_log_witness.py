"""A witness cosigns a checkpoint only once it extends the last one it cosigned, kept in its state file
before the cosignature leaves: it never cosigns two inconsistent checkpoints, across restarts too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jpr_client.errors import LogForkError, LogRollbackError, LogSignatureError, LogStateError
from jpr_client.transparency.cosignature import Cosigner, generate_witness_key
from jpr_client.transparency.note import Verifier, add_signature_lines, open_note
from jpr_client.transparency.witness import WitnessState, cosign_checkpoint
from tests.signed_log import SignedLog


@pytest.fixture
def log() -> SignedLog:
    return SignedLog.generate().grow(4)


@pytest.fixture
def keys() -> tuple[Cosigner, Verifier]:
    secret, public = generate_witness_key("witness.test")
    return Cosigner.from_key_string(secret), Verifier.from_key_string(public)


def cosign(log: SignedLog, note: str, cosigner: Cosigner, state_file: Path) -> str:
    """One run of the witness, as a fresh process would do it: state read from the file."""
    return cosign_checkpoint(note, log.consistency, log_verifier=log.verifier, cosigner=cosigner, state=WitnessState(state_file))


def test_the_cosignature_verifies_and_the_checkpoint_is_recorded(log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path) -> None:
    cosigner, verifier = keys
    state = tmp_path / "witness.state.json"
    line = cosign(log, log.note(), cosigner, state)
    opened = open_note(add_signature_lines(log.note(), [line]), [log.verifier, verifier])
    assert set(opened.verified) == {log.verifier, verifier}
    assert WitnessState(state).last(log.origin, log.verifier) == log.checkpoint()


def test_the_witness_follows_a_growing_log(log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path) -> None:
    cosigner, _ = keys
    state = tmp_path / "witness.state.json"
    for _ in range(3):
        cosign(log, log.note(), cosigner, state)
        log.grow(3)
    assert WitnessState(state).last(log.origin, log.verifier).size == 10  # type: ignore[union-attr]


def test_after_a_restart_the_witness_refuses_a_fork_of_what_it_cosigned(
    log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path
) -> None:
    cosigner, _ = keys
    state = tmp_path / "witness.state.json"
    cosign(log, log.note(), cosigner, state)
    recorded = state.read_text(encoding="utf-8")
    rewritten = log.fork(at=2).grow(3)
    with pytest.raises(LogForkError) as caught:
        cosign_checkpoint(rewritten.note(), rewritten.consistency, log_verifier=log.verifier, cosigner=cosigner,
                          state=WitnessState(state))
    assert str(state) in str(caught.value) and "size 4" in str(caught.value) and "size 7" in str(caught.value)
    assert state.read_text(encoding="utf-8") == recorded
    same_size = log.fork(at=3)
    with pytest.raises(LogForkError, match="same size"):
        cosign_checkpoint(same_size.note(), same_size.consistency, log_verifier=log.verifier, cosigner=cosigner,
                          state=WitnessState(state))


def test_the_witness_never_cosigns_an_older_checkpoint(log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path) -> None:
    cosigner, _ = keys
    state = tmp_path / "witness.state.json"
    old = log.note()
    log.grow(1)
    cosign(log, log.note(), cosigner, state)
    with pytest.raises(LogRollbackError):
        cosign(log, old, cosigner, state)


def test_the_same_checkpoint_can_be_cosigned_again(log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path) -> None:
    cosigner, _ = keys
    state = tmp_path / "witness.state.json"
    cosign(log, log.note(), cosigner, state)
    cosign(log, log.note(), cosigner, state)  # a lost AddCosignature, retried


def test_the_checkpoint_is_on_disk_before_the_cosignature_is_returned(
    log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path
) -> None:
    cosigner, _ = keys
    state = tmp_path / "witness.state.json"
    on_disk: list[dict[str, object]] = []

    class Spy(Cosigner):
        def cosign(self, checkpoint_body: str, timestamp: int) -> str:
            on_disk.append(json.loads(state.read_text(encoding="utf-8")))
            return cosigner.cosign(checkpoint_body, timestamp)

    spy = Spy.__new__(Spy)
    spy.__dict__.update(cosigner.__dict__)
    cosign(log, log.note(), spy, state)
    assert on_disk == [{"version": 1, "logs": {log.origin: log.note()}}]


def test_a_checkpoint_the_log_key_did_not_sign_is_not_cosigned(log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path) -> None:
    cosigner, _ = keys
    impostor = SignedLog.generate(log.origin).grow(4, "impostor")
    with pytest.raises(LogSignatureError):
        cosign(log, impostor.note(), cosigner, tmp_path / "state.json")
    assert not (tmp_path / "state.json").exists()


def test_a_witness_keeps_one_checkpoint_per_log(keys: tuple[Cosigner, Verifier], tmp_path: Path) -> None:
    cosigner, _ = keys
    state = tmp_path / "witness.state.json"
    first, second = SignedLog.generate("one.test/log").grow(2), SignedLog.generate("two.test/log").grow(3)
    cosign(first, first.note(), cosigner, state)
    cosign(second, second.note(), cosigner, state)
    assert WitnessState(state).last("one.test/log", first.verifier) == first.checkpoint()
    assert WitnessState(state).last("two.test/log", second.verifier) == second.checkpoint()


@pytest.mark.parametrize("content", ["{", '{"version": 2, "logs": {}}', '{"version": 1, "logs": {"registry.test/log": "forged\\n"}}'])
def test_a_corrupt_state_file_is_refused_and_kept(log: SignedLog, keys: tuple[Cosigner, Verifier], tmp_path: Path, content: str) -> None:
    cosigner, _ = keys
    state = tmp_path / "witness.state.json"
    state.write_text(content, encoding="utf-8")
    with pytest.raises(LogStateError, match=str(state)):
        cosign(log, log.note(), cosigner, state)
    assert state.read_text(encoding="utf-8") == content
