"""docs/vectors/log.json, JPR's own transparency-log vectors: every value recomputed from the inputs with the SDK.

What a client in another language checks (docs/protocol.md section 11): the canonical event,
the commitment and leaf hash of each event, the root at every size, every inclusion and
consistency proof, the checkpoint note under the log key and the witness's cosignature.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jpr_client.transparency import merkle
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.cosignature import verify_cosignature
from jpr_client.transparency.entry import LogEvent, canonical_event, commitment
from jpr_client.transparency.note import NoteError, Verifier, open_note

ROOT = Path(__file__).resolve().parents[3]
VECTORS: dict[str, Any] = json.loads((ROOT / "docs" / "vectors" / "log.json").read_text(encoding="utf-8"))


def event(vector: dict[str, Any]) -> LogEvent:
    fields = dict(vector["event"], occurred_at=datetime.fromisoformat(vector["event"]["occurred_at"]))
    return LogEvent(**fields, salt=bytes.fromhex(vector["salt"]))


@pytest.mark.parametrize("vector", VECTORS["events"], ids=lambda v: f"leaf{v['leaf_index']}-{v['event']['kind']}")
def test_each_event_gives_its_canonical_bytes_commitment_and_leaf_hash(vector: dict[str, Any]) -> None:
    logged = event(vector)
    assert canonical_event(logged).decode() == vector["canonical_event"]
    assert commitment(logged).hex() == vector["commitment"]
    assert merkle.leaf_hash(commitment(logged)).hex() == vector["leaf_hash"]


def test_the_leaf_order_is_the_commit_order_not_the_seq_order() -> None:
    seqs = [v["event"]["seq"] for v in sorted(VECTORS["events"], key=lambda v: v["leaf_index"])]
    assert seqs != sorted(seqs)  # the vectors cover an event committed after one with a higher seq


def _leaves() -> list[bytes]:
    return [bytes.fromhex(v["leaf_hash"]) for v in sorted(VECTORS["events"], key=lambda v: v["leaf_index"])]


def test_the_root_at_every_size() -> None:
    leaves = _leaves()
    assert {str(size): merkle.root(leaves[:size]).hex() for size in range(len(leaves) + 1)} == VECTORS["roots"]


@pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}")
def test_every_inclusion_proof_verifies_and_a_changed_one_does_not(vector: dict[str, Any]) -> None:
    leaves, size, index = _leaves(), vector["tree_size"], vector["leaf_index"]
    proof = [bytes.fromhex(h) for h in vector["proof"]]
    root = bytes.fromhex(VECTORS["roots"][str(size)])
    merkle.verify_inclusion(leaves[index], index, size, proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(leaves[(index + 1) % len(leaves)] if size > 1 else bytes(32), index, size, proof, root)


@pytest.mark.parametrize("vector", VECTORS["consistency_proofs"], ids=lambda v: f"{v['first']}-to-{v['second']}")
def test_every_consistency_proof_verifies(vector: dict[str, Any]) -> None:
    first, second = vector["first"], vector["second"]
    proof = [bytes.fromhex(h) for h in vector["proof"]]
    roots = VECTORS["roots"]
    merkle.verify_consistency(first, second, proof, bytes.fromhex(roots[str(first)]), bytes.fromhex(roots[str(second)]))
    if first < second:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(first, second, proof, bytes.fromhex(roots[str(first - 1)]), bytes.fromhex(roots[str(second)]))


def test_the_checkpoint_note_verifies_under_the_log_key_and_names_the_last_root() -> None:
    vector = VECTORS["checkpoint"]
    log_key = Verifier.from_key_string(VECTORS["log_key"]["verifier_key"])
    opened = open_note(vector["note"], [log_key])
    assert opened.verified == (log_key,) and opened.text == vector["body"]
    checkpoint = Checkpoint.parse(opened.text)
    assert (checkpoint.origin, checkpoint.size) == (vector["origin"], vector["tree_size"])
    assert checkpoint.root_hash.hex() == VECTORS["roots"][str(vector["tree_size"])]
    with pytest.raises(NoteError):
        open_note(vector["note"].replace(vector["body"].split("\n")[1], str(vector["tree_size"] + 1), 1), [log_key])


def test_the_witness_cosignature_verifies_with_its_time() -> None:
    vector = VECTORS["witness"]
    witness = Verifier.from_key_string(vector["verifier_key"])
    assert verify_cosignature(witness, VECTORS["checkpoint"]["body"], vector["cosignature_line"]) == vector["timestamp"]


def test_the_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("log_vectors", ROOT / "scripts" / "log_vectors.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (ROOT / "docs" / "vectors" / "log.json").read_text(encoding="utf-8") == generator.text()
