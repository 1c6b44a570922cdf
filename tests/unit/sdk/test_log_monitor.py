"""The SDK as a monitor of the transparency log: it keeps the newest checkpoint it verified in a file and
refuses forks, rollbacks, unsigned checkpoints and checkpoints without the witnesses it requires."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from jpr_client.errors import LogForkError, LogRollbackError, LogSignatureError, LogStateError, TransparencyError, WitnessQuorumError
from jpr_client.transparency.cosignature import Cosigner, generate_witness_key
from jpr_client.transparency.monitor import LogMonitor
from jpr_client.transparency.note import Verifier, add_signature_lines
from tests.signed_log import SignedLog


@pytest.fixture
def log() -> SignedLog:
    return SignedLog.generate().grow(5)


def witness(name: str) -> tuple[Cosigner, Verifier]:
    secret, public = generate_witness_key(name)
    return Cosigner.from_key_string(secret), Verifier.from_key_string(public)


def cosigned(log: SignedLog, size: int, *cosigners: Cosigner) -> str:
    note = log.note(size)
    return add_signature_lines(note, [c.cosign(log.checkpoint(size).body(), 1_700_000_000) for c in cosigners])


def test_the_first_checkpoint_is_kept_and_a_grown_log_is_accepted_with_its_consistency_proof(log: SignedLog, tmp_path: Path) -> None:
    state = tmp_path / "jpr-log.state"
    monitor = LogMonitor(state, log.verifier)
    assert monitor.update(log.note(), log.consistency).checkpoint.size == 5
    assert state.read_text(encoding="utf-8") == log.note()
    asked: list[tuple[int, int]] = []
    log.grow(6)

    def proofs(first: int, second: int) -> list[bytes]:
        asked.append((first, second))
        return log.consistency(first, second)

    assert monitor.update(log.note(), proofs).checkpoint.root_hash == log.checkpoint().root_hash
    assert asked == [(5, 11)] and state.read_text(encoding="utf-8") == log.note()
    assert os.stat(state).st_mode & 0o777 == 0o600


def test_the_same_checkpoint_again_needs_no_proof_and_leaves_the_file_alone(log: SignedLog, tmp_path: Path) -> None:
    monitor = LogMonitor(tmp_path / "state", log.verifier)
    monitor.update(log.note(), log.consistency)
    before = os.stat(tmp_path / "state").st_mtime_ns

    def no_proof(first: int, second: int) -> list[bytes]:
        raise AssertionError("no consistency proof is needed for the same tree")

    monitor.update(log.note(), no_proof)
    assert os.stat(tmp_path / "state").st_mtime_ns == before


def test_a_rewritten_history_signed_by_the_log_key_is_a_fork_and_the_state_stays(log: SignedLog, tmp_path: Path) -> None:
    state = tmp_path / "jpr-log.state"
    LogMonitor(state, log.verifier).update(log.note(), log.consistency)
    honest = state.read_text(encoding="utf-8")
    rewritten = log.fork(at=3).grow(4)  # leaf 3 onwards replaced, then grown: the key holder re-signed it
    with pytest.raises(LogForkError) as caught:
        LogMonitor(state, log.verifier).update(rewritten.note(), rewritten.consistency)
    message = str(caught.value)
    assert "size 5" in message and "size 9" in message and str(state) in message
    assert base64.b64encode(log.checkpoint().root_hash).decode() in message
    assert state.read_text(encoding="utf-8") == honest


def test_the_same_size_with_another_root_is_a_fork(log: SignedLog, tmp_path: Path) -> None:
    monitor = LogMonitor(tmp_path / "state", log.verifier)
    monitor.update(log.note(), log.consistency)
    other = log.fork(at=4)
    with pytest.raises(LogForkError, match="same size and another root"):
        monitor.update(other.note(), other.consistency)


def test_a_consistency_proof_that_does_not_verify_is_a_fork(log: SignedLog, tmp_path: Path) -> None:
    monitor = LogMonitor(tmp_path / "state", log.verifier)
    monitor.update(log.note(), log.consistency)
    log.grow(3)
    with pytest.raises(LogForkError, match="not consistent"):
        monitor.update(log.note(), lambda first, second: [bytes(32)] * len(log.consistency(first, second)))


def test_an_older_checkpoint_than_the_one_kept_is_a_rollback_across_restarts(log: SignedLog, tmp_path: Path) -> None:
    state = tmp_path / "state"
    old_note = log.note()
    log.grow(2)
    LogMonitor(state, log.verifier).update(log.note(), log.consistency)
    with pytest.raises(LogRollbackError) as caught:
        LogMonitor(state, log.verifier).update(old_note, log.consistency)  # a new process, the same file
    assert "size 5" in str(caught.value) and "size 7" in str(caught.value)
    assert isinstance(caught.value, TransparencyError)


def test_a_checkpoint_not_signed_by_the_pinned_log_key_is_refused(log: SignedLog, tmp_path: Path) -> None:
    impostor = SignedLog.generate(log.origin).grow(5, "impostor")
    monitor = LogMonitor(tmp_path / "state", log.verifier)
    with pytest.raises(LogSignatureError, match=log.verifier.name):
        monitor.update(impostor.note(), impostor.consistency)
    assert not (tmp_path / "state").exists()
    tampered = log.note().replace("\n5\n", "\n6\n", 1)
    with pytest.raises(LogSignatureError):
        monitor.update(tampered, log.consistency)


def test_a_corrupt_state_file_is_a_typed_error_and_is_not_replaced(log: SignedLog, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("not a checkpoint\n", encoding="utf-8")
    with pytest.raises(LogStateError, match=str(state)):
        LogMonitor(state, log.verifier)
    assert state.read_text(encoding="utf-8") == "not a checkpoint\n"


def test_a_state_file_of_another_registrys_log_is_a_typed_error(log: SignedLog, tmp_path: Path) -> None:
    other = SignedLog.generate("other.test/log").grow(2)
    state = tmp_path / "state"
    LogMonitor(state, other.verifier).update(other.note(), other.consistency)
    with pytest.raises(LogStateError, match="another registry"):
        LogMonitor(state, log.verifier)


def test_two_monitors_sharing_a_file_check_against_the_newest_either_saw(log: SignedLog, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first, second = LogMonitor(state, log.verifier), LogMonitor(state, log.verifier)
    first.update(log.note(), log.consistency)
    log.grow(4)
    first.update(log.note(), log.consistency)
    with pytest.raises(LogRollbackError):
        second.update(log.note(5), log.consistency)  # second never saw size 9 itself; the file did


def test_k_of_n_witnesses_are_required(log: SignedLog, tmp_path: Path) -> None:
    (a, a_key), (_, b_key), (c, c_key) = witness("witness-a"), witness("witness-b"), witness("witness-c")
    monitor = LogMonitor(tmp_path / "state", log.verifier, [a_key, b_key, c_key], min_witnesses=2)
    with pytest.raises(WitnessQuorumError, match="1 of the witnesses required") as caught:
        monitor.update(cosigned(log, 5, a), log.consistency)
    assert "witness-a" in str(caught.value) and "fewer than 2" in str(caught.value)
    assert monitor.latest is None
    stranger, _ = witness("witness-d")
    with pytest.raises(WitnessQuorumError):
        monitor.update(cosigned(log, 5, a, stranger), log.consistency)
    assert monitor.update(cosigned(log, 5, a, c), log.consistency).witnesses == ("witness-a", "witness-c")


def test_a_forged_cosignature_costs_that_witness_its_vote_not_the_note(log: SignedLog, tmp_path: Path) -> None:
    (a, a_key), (b, b_key) = witness("witness-a"), witness("witness-b")
    other = SignedLog.generate(log.origin).grow(5, "other")
    forged = b.cosign(other.checkpoint().body(), 1_700_000_000)  # b's cosignature of another tree
    note = add_signature_lines(cosigned(log, 5, a), [forged])
    monitor = LogMonitor(None, log.verifier, [a_key, b_key], min_witnesses=1)
    assert monitor.update(note, log.consistency).witnesses == ("witness-a",)
    with pytest.raises(WitnessQuorumError):
        LogMonitor(None, log.verifier, [a_key, b_key], min_witnesses=2).update(note, log.consistency)


def test_a_quorum_larger_than_the_witnesses_named_is_refused_at_once(log: SignedLog) -> None:
    _, a_key = witness("witness-a")
    with pytest.raises(ValueError, match="min_witnesses is 2"):
        LogMonitor(None, log.verifier, [a_key], min_witnesses=2)


def test_without_a_state_file_the_monitor_still_checks_within_its_life(log: SignedLog) -> None:
    monitor = LogMonitor(None, log.verifier)
    monitor.update(log.note(), log.consistency)
    forked = log.fork(at=2)
    with pytest.raises(LogForkError, match="memory"):
        monitor.update(forked.note(), forked.consistency)
