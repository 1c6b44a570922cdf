"""cosignature/v1: the message, line layout and key ID of c2sp.org/tlog-cosignature, checked independently of the code."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jpr_client.transparency.cosignature import Cosigner, cosignature_v1_message, generate_witness_key, verify_cosignature
from jpr_client.transparency.note import NoteError, Signer, Verifier, add_signature_lines, open_note, sign_note

VECTORS: dict[str, Any] = json.loads((Path(__file__).parents[3] / "docs" / "vectors" / "cosignature.json").read_text(encoding="utf-8"))
JPR = VECTORS["jpr"]
SEED = bytes.fromhex(JPR["seed_TEST_ONLY"])
WITNESS = Cosigner(JPR["witness_name"], Ed25519PrivateKey.from_private_bytes(SEED))
VERIFIER = Verifier.from_key_string(JPR["verifier_key"])


def test_the_spec_example_line_is_key_id_timestamp_and_signature() -> None:
    example = VECTORS["spec_example"]
    line = next(line for line in example["note"].splitlines() if line.startswith("\u2014 " + example["witness_name"] + " "))
    raw = base64.b64decode(line.split(" ")[2])
    assert len(raw) == 4 + 8 + 64
    assert raw[:4].hex() == example["key_id"] and int.from_bytes(raw[4:12], "big") == example["timestamp"]
    body = example["note"].split("\n\n")[0] + "\n"
    assert cosignature_v1_message(body, example["timestamp"]).decode() == example["signed_message"]


def test_the_test_key_derives_the_published_key_id_by_the_spec_formula() -> None:
    public = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
    assert hashlib.sha256(JPR["witness_name"].encode() + b"\n\x04" + public).digest()[:4].hex() == JPR["key_id"]
    assert WITNESS.key_hash.hex() == JPR["key_id"] and VERIFIER.alg == 0x04
    assert WITNESS.verifier() == VERIFIER
    assert Cosigner.from_key_string(JPR["private_key_string_TEST_ONLY"]).verifier() == VERIFIER


@pytest.mark.parametrize("vector", JPR["cosignatures"], ids=lambda vector: str(vector["name"]))
def test_cosignatures_are_the_vectors_and_verify_as_the_spec_says(vector: dict[str, Any]) -> None:
    line = WITNESS.cosign(vector["checkpoint_body"], vector["timestamp"])
    assert line == vector["signature_line"]
    raw = bytes.fromhex(vector["signature_bytes"])
    assert base64.b64decode(line.split(" ")[2]) == raw
    assert vector["signed_message"] == f"cosignature/v1\ntime {vector['timestamp']}\n" + vector["checkpoint_body"]
    Ed25519PrivateKey.from_private_bytes(SEED).public_key().verify(raw[12:], vector["signed_message"].encode())
    assert verify_cosignature(VERIFIER, vector["checkpoint_body"], line) == vector["timestamp"]
    assert verify_cosignature(VERIFIER, vector["checkpoint_body"], raw[4:]) == vector["timestamp"]


def test_a_cosignature_covers_the_extension_lines() -> None:
    plain, extended = JPR["cosignatures"]
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(VERIFIER, plain["checkpoint_body"], extended["signature_line"])


def test_a_changed_timestamp_or_checkpoint_does_not_verify() -> None:
    vector = JPR["cosignatures"][0]
    raw = bytearray(bytes.fromhex(vector["signature_bytes"])[4:])
    raw[7] ^= 1
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(VERIFIER, vector["checkpoint_body"], bytes(raw))
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(VERIFIER, vector["checkpoint_body"].replace("20852163", "20852164"), vector["signature_line"])
    with pytest.raises(NoteError, match="not 71 bytes"):
        verify_cosignature(VERIFIER, vector["checkpoint_body"], bytes(raw[:-1]))


def test_a_line_by_another_witness_or_a_plain_key_is_refused() -> None:
    vector = JPR["cosignatures"][0]
    other = Cosigner("witness.jpr.test/w2", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="not by witness"):
        verify_cosignature(other.verifier(), vector["checkpoint_body"], vector["signature_line"])
    plain = Signer(JPR["witness_name"], Ed25519PrivateKey.from_private_bytes(SEED)).verifier()
    assert plain.key_hash != VERIFIER.key_hash  # one key, two types, two IDs
    with pytest.raises(NoteError, match="not a cosignature/v1"):
        verify_cosignature(plain, vector["checkpoint_body"], vector["signature_line"])


def test_timestamps_beyond_2_63_are_refused() -> None:
    with pytest.raises(NoteError, match="2\\^63"):
        WITNESS.cosign(JPR["cosignatures"][0]["checkpoint_body"], 2**63)


def test_a_log_adds_generated_witness_cosignatures_and_a_client_opens_them() -> None:
    key, vkey = generate_witness_key("witness.jpr.test/w3")
    witness = Cosigner.from_key_string(key)
    log = Signer("log.jpr.test", Ed25519PrivateKey.generate())
    body = JPR["cosignatures"][0]["checkpoint_body"]
    note = add_signature_lines(sign_note(body, [log]), [witness.cosign(body, 1700000000)])
    opened = open_note(note, [log.verifier(), Verifier.from_key_string(vkey)])
    assert opened.verified == (log.verifier(), witness.verifier())
    assert verify_cosignature(witness.verifier(), opened.text, opened.signature_lines[1]) == 1700000000
    with pytest.raises(NoteError, match="not a signature type 0x01"):
        Signer.from_key_string(key)  # a witness key is not a note signer key
