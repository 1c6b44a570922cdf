"""The OPRF's behaviour beyond the published vectors (those are in test_vectors.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from jpr_client.crypto import oprf

# RFC 9496 section 4.4: the canonical encoding of the ristretto255 generator.
GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
IDENTITY = bytes(32)
# s = 1 is odd, i.e. "negative", which a canonical ristretto255 encoding never is.
NEGATIVE = bytes([1]) + bytes(31)
# All ones: a field element above 2^255 - 19, so not canonical.
NOT_REDUCED = b"\xff" * 32
# The group order L (RFC 9496), little-endian: zero modulo L but not in reduced form.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
ORDER = GROUP_ORDER.to_bytes(32, "little")

INPUT = oprf.token_input("phone", "+8613800138000")


@pytest.fixture(scope="module")
def key() -> bytes:
    return oprf.generate_key()


def test_importing_the_oprf_leaves_no_copy_of_libsodium_in_the_temporary_directory(key: bytes) -> None:
    unpacked = sys.modules["rbcl._sodium"].lib_path
    assert not os.path.exists(unpacked)
    assert oprf.evaluate(key, INPUT) == oprf.evaluate(key, INPUT)  # the library still works without its file


def test_a_libsodium_outside_the_temporary_directory_is_never_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = tmp_path / "libsodium.so"
    packaged.write_bytes(b"\x7fELF")
    monkeypatch.setattr(sys.modules["rbcl._sodium"], "lib_path", str(packaged))
    oprf._remove_unpacked_libsodium()
    assert packaged.exists()
    monkeypatch.delattr(sys.modules["rbcl._sodium"], "lib_path")
    oprf._remove_unpacked_libsodium()  # a binding that writes no copy: nothing to do, nothing fails


def test_blind_evaluate_then_finalize_equals_evaluate_with_the_key(key: bytes) -> None:
    blind, blinded = oprf.blind(INPUT)
    evaluated = oprf.blind_evaluate(key, blinded)
    assert oprf.finalize(INPUT, blind, evaluated) == oprf.evaluate(key, INPUT)


def test_fresh_blinds_hide_the_input_but_give_the_same_token(key: bytes) -> None:
    first_blind, first = oprf.blind(INPUT)
    second_blind, second = oprf.blind(INPUT)
    assert first != second
    first_token = oprf.finalize(INPUT, first_blind, oprf.blind_evaluate(key, first))
    second_token = oprf.finalize(INPUT, second_blind, oprf.blind_evaluate(key, second))
    assert first_token == second_token
    assert len(first_token) == oprf.OUTPUT_SIZE


def test_tokens_differ_between_keys_and_between_inputs(key: bytes) -> None:
    other_key = oprf.generate_key()
    assert oprf.evaluate(key, INPUT) != oprf.evaluate(other_key, INPUT)
    assert oprf.evaluate(key, INPUT) != oprf.evaluate(key, oprf.token_input("phone", "+8613800138001"))


def test_generated_keys_are_random_nonzero_reduced_scalars() -> None:
    keys = {oprf.generate_key() for _ in range(8)}
    assert len(keys) == 8
    for key in keys:
        assert len(key) == oprf.SCALAR_SIZE
        assert 0 < int.from_bytes(key, "little") < GROUP_ORDER


def test_derived_public_key_is_the_secret_times_the_generator() -> None:
    secret, public = oprf.derive_key_pair(bytes(32), b"info")
    assert oprf.blind_evaluate(secret, GENERATOR) == public


def test_derive_key_pair_is_deterministic_and_depends_on_info() -> None:
    seed = bytes(range(32))
    assert oprf.derive_key_pair(seed, b"a") == oprf.derive_key_pair(seed, b"a")
    assert oprf.derive_key_pair(seed, b"a") != oprf.derive_key_pair(seed, b"b")


def test_derive_key_pair_refuses_a_seed_that_is_not_32_bytes() -> None:
    with pytest.raises(oprf.OprfError, match="seed is 16 bytes"):
        oprf.derive_key_pair(bytes(16), b"")


def test_token_input_is_utf8_of_version_type_and_value() -> None:
    assert oprf.token_input("cn_ric", "11010519491231002X") == b"jpr:v1:cn_ric:11010519491231002X"
    assert oprf.token_input("platform_account", "taobao:店铺1") == "jpr:v1:platform_account:taobao:店铺1".encode()


def test_same_value_under_different_types_gives_different_tokens(key: bytes) -> None:
    assert oprf.evaluate(key, oprf.token_input("phone", "x")) != oprf.evaluate(key, oprf.token_input("email", "x"))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_blind_evaluate_refuses_an_element_of_the_wrong_length(key: bytes, length: int) -> None:
    with pytest.raises(oprf.OprfError, match=f"blinded element is {length} bytes; a ristretto255 element is 32 bytes"):
        oprf.blind_evaluate(key, bytes(length))


@pytest.mark.parametrize("element", [NEGATIVE, NOT_REDUCED], ids=["negative", "not-reduced"])
def test_blind_evaluate_refuses_an_invalid_encoding(key: bytes, element: bytes) -> None:
    with pytest.raises(oprf.OprfError, match="blinded element is not a valid ristretto255 encoding"):
        oprf.blind_evaluate(key, element)


def test_blind_evaluate_refuses_the_identity_element(key: bytes) -> None:
    with pytest.raises(oprf.OprfError, match="blinded element is the identity element"):
        oprf.blind_evaluate(key, IDENTITY)


@pytest.mark.parametrize(
    ("bad_key", "message"),
    [
        (bytes(16), "key is 16 bytes; a ristretto255 scalar is 32 bytes"),
        (bytes(32), "key is the zero scalar"),
        (ORDER, "key is not a canonical scalar"),
        (NOT_REDUCED, "key is not a canonical scalar"),
    ],
    ids=["short", "zero", "order", "all-ones"],
)
def test_blind_evaluate_refuses_a_bad_key(bad_key: bytes, message: str) -> None:
    with pytest.raises(oprf.OprfError, match=message):
        oprf.blind_evaluate(bad_key, GENERATOR)


@pytest.mark.parametrize(
    ("element", "message"),
    [
        (bytes(31), "evaluated element is 31 bytes"),
        (IDENTITY, "evaluated element is the identity element"),
        (NEGATIVE, "evaluated element is not a valid ristretto255 encoding"),
    ],
    ids=["short", "identity", "invalid"],
)
def test_finalize_refuses_a_bad_evaluated_element(element: bytes, message: str) -> None:
    blind, _ = oprf.blind(INPUT)
    with pytest.raises(oprf.OprfError, match=message):
        oprf.finalize(INPUT, blind, element)


@pytest.mark.parametrize(
    ("bad_blind", "message"),
    [(bytes(32), "blind is the zero scalar"), (bytes(33), "blind is 33 bytes"), (ORDER, "blind is not a canonical")],
    ids=["zero", "long", "order"],
)
def test_a_bad_blind_is_refused_when_blinding_and_finalizing(bad_blind: bytes, message: str) -> None:
    with pytest.raises(oprf.OprfError, match=message):
        oprf.blind(INPUT, bad_blind)
    with pytest.raises(oprf.OprfError, match=message):
        oprf.finalize(INPUT, bad_blind, GENERATOR)


def test_inputs_longer_than_a_two_byte_length_are_refused(key: bytes) -> None:
    too_long = bytes(0x10000)
    with pytest.raises(oprf.OprfError, match="input is 65536 bytes; at most 65535"):
        oprf.blind(too_long)
    with pytest.raises(oprf.OprfError, match="input is 65536 bytes"):
        oprf.evaluate(key, too_long)


def test_oprf_errors_are_value_errors() -> None:
    assert issubclass(oprf.OprfError, ValueError)


def _evaluated_batch(key: bytes, count: int) -> tuple[list[bytes], list[bytes]]:
    blinded = [oprf.blind(oprf.token_input("phone", f"+86138001380{n:02d}"))[1] for n in range(count)]
    return blinded, [oprf.blind_evaluate(key, element) for element in blinded]


def test_a_batch_proof_holds_for_the_key_that_evaluated_and_not_for_another(key: bytes) -> None:
    blinded, evaluated = _evaluated_batch(key, 5)
    proof = oprf.generate_proof(key, oprf.public_key(key), blinded, evaluated)
    assert len(proof) == oprf.PROOF_SIZE
    assert oprf.verify_proof(oprf.public_key(key), blinded, evaluated, proof)
    assert not oprf.verify_proof(oprf.public_key(oprf.generate_key()), blinded, evaluated, proof)


def test_a_proof_does_not_cover_one_element_evaluated_under_another_key(key: bytes) -> None:
    blinded, evaluated = _evaluated_batch(key, 3)
    evaluated[1] = oprf.blind_evaluate(oprf.generate_key(), blinded[1])
    proof = oprf.generate_proof(key, oprf.public_key(key), blinded, evaluated)  # an honest prover cannot make one hold
    assert not oprf.verify_proof(oprf.public_key(key), blinded, evaluated, proof)


def test_proofs_use_a_fresh_random_scalar_each_time(key: bytes) -> None:
    blinded, evaluated = _evaluated_batch(key, 1)
    public = oprf.public_key(key)
    assert oprf.generate_proof(key, public, blinded, evaluated) != oprf.generate_proof(key, public, blinded, evaluated)


@pytest.mark.parametrize(
    ("proof", "message"),
    [(bytes(63), "proof is 63 bytes; a proof is 64 bytes"), (b"\xff" * 64, "proof challenge c is not a canonical scalar")],
)
def test_a_malformed_proof_is_refused_with_the_reason(key: bytes, proof: bytes, message: str) -> None:
    blinded, evaluated = _evaluated_batch(key, 1)
    with pytest.raises(oprf.OprfError, match=message):
        oprf.verify_proof(oprf.public_key(key), blinded, evaluated, proof)


def test_a_proof_needs_as_many_evaluated_as_blinded_elements(key: bytes) -> None:
    blinded, evaluated = _evaluated_batch(key, 2)
    with pytest.raises(oprf.OprfError, match="2 blinded elements but 1 evaluated elements"):
        oprf.generate_proof(key, oprf.public_key(key), blinded, evaluated[:1])
