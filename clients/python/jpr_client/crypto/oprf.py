"""RFC 9497 verifiable OPRF, suite ristretto255-SHA512, VOPRF mode (0x01).

Identifiers become tokens through this OPRF so that the registry never sees a
raw identifier and a platform never holds the key: nobody can test a guessed
phone number offline. In VOPRF mode the registry also proves, with one batched
DLEQ proof per call (RFC 9497 section 2.2), that it evaluated every element
under the key whose public half members pin: a registry answering under any
other key is caught by the client instead of silently giving other tokens.

The group arithmetic is libsodium's ristretto255 (via `rbcl`); hashing to the
group and to scalars follows RFC 9380 `expand_message_xmd` with SHA-512, as
RFC 9497 section 4.1 requires.

Elements and scalars travel as their 32-byte canonical encodings (scalars
little-endian, reduced modulo the group order), exactly as in the RFC's test
vectors, so clients in any language can interoperate byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence

import rbcl

from jpr_client.crypto.h2c import UNIFORM_SIZE, expand_message_xmd, i2osp

__all__ = [
    "ELEMENT_SIZE",
    "OUTPUT_SIZE",
    "PROOF_SIZE",
    "SCALAR_SIZE",
    "OprfError",
    "blind",
    "blind_evaluate",
    "derive_key_pair",
    "evaluate",
    "finalize",
    "generate_key",
    "generate_proof",
    "public_key",
    "token_input",
    "verify_proof",
]

ELEMENT_SIZE = 32
SCALAR_SIZE = 32
OUTPUT_SIZE = 64
PROOF_SIZE = 2 * SCALAR_SIZE  # c || s

# RFC 9497 section 3.1: contextString = "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier.
_MODE_VOPRF = 0x01
_CONTEXT = b"OPRFV1-" + bytes([_MODE_VOPRF]) + b"-ristretto255-SHA512"
_HASH_TO_GROUP_DST = b"HashToGroup-" + _CONTEXT
_HASH_TO_SCALAR_DST = b"HashToScalar-" + _CONTEXT
_DERIVE_KEY_PAIR_DST = b"DeriveKeyPair" + _CONTEXT
_SEED_DST = b"Seed-" + _CONTEXT

_MAX_INPUT = 0xFFFF  # Finalize prefixes the input with a 2-byte length
_MAX_BATCH = 0xFFFF  # the composite transcript numbers elements in 2 bytes
_ELEMENT_LENGTH = i2osp(ELEMENT_SIZE, 2)

_IDENTITY = bytes(ELEMENT_SIZE)
_ZERO_SCALAR = bytes(SCALAR_SIZE)
_SCALAR_PAD = bytes(SCALAR_SIZE)
_TOKEN_PREFIX = "jpr:v1:"
_GENERATOR: bytes = rbcl.crypto_scalarmult_ristretto255_base(b"\x01" + bytes(SCALAR_SIZE - 1))


def _remove_unpacked_libsodium() -> None:
    """Delete the copy of libsodium that importing rbcl writes to $TMPDIR and never removes.

    Without this every process (each `jpr` command) leaves a 2.7 MB file behind.
    The library is loaded by then and stays mapped after the file is gone (Linux,
    macOS). Only a file in the temporary directory is removed, never one that a
    future rbcl might load from its own package; and nothing here fails the import.
    """
    unpacked = getattr(sys.modules.get("rbcl._sodium"), "lib_path", None)
    if not isinstance(unpacked, str) or os.path.dirname(unpacked) != tempfile.gettempdir():
        return
    with contextlib.suppress(OSError):
        os.unlink(unpacked)


_remove_unpacked_libsodium()


class OprfError(ValueError):
    """An element, scalar or input the OPRF must refuse; the message says which and why."""


def generate_key() -> bytes:
    """A fresh random OPRF key: a non-zero scalar, 32 bytes little-endian, reduced.

    libsodium draws uniformly from [1, order - 1], so the key is usable as is.
    """
    key: bytes = rbcl.crypto_core_ristretto255_scalar_random()
    return key


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    """RFC 9497 DeriveKeyPair: (secret scalar, public element) from a seed.

    Deterministic, so the RFC's test vectors and JPR's own vectors can pin a key.
    The counter loop only matters in the negligible case of a zero scalar.
    """
    if len(seed) != SCALAR_SIZE:
        raise OprfError(f"seed is {len(seed)} bytes; DeriveKeyPair needs {SCALAR_SIZE}")
    if len(info) > _MAX_INPUT:
        raise OprfError(f"info is {len(info)} bytes; at most {_MAX_INPUT} are allowed")
    derive_input = seed + i2osp(len(info), 2) + info
    for counter in range(256):
        secret = _hash_to_scalar(derive_input + i2osp(counter, 1), _DERIVE_KEY_PAIR_DST)
        if secret != _ZERO_SCALAR:
            public: bytes = rbcl.crypto_scalarmult_ristretto255_base(secret)
            return secret, public
    raise OprfError("DeriveKeyPair found no non-zero scalar in 256 attempts")  # pragma: no cover


def blind(input: bytes, blind: bytes | None = None) -> tuple[bytes, bytes]:
    """RFC 9497 Blind: (blind scalar, blinded element) for a client input.

    The blinded element is all the registry ever sees of the input. Pass `blind`
    only to reproduce test vectors; a reused blind links the requests it is used in.
    """
    if blind is None:
        blind = generate_key()
    else:
        _check_scalar(blind, "blind")
    input_element = _hash_to_group(_check_input(input))
    return blind, _scalar_mult(blind, input_element)


def blind_evaluate(key: bytes, blinded_element: bytes) -> bytes:
    """RFC 9497 BlindEvaluate: the evaluated element `key * blinded_element`.

    This is the registry's hot path (batches of thousands), so the success path
    is a key check, a length check and one scalar multiplication: libsodium's
    multiplication itself refuses non-canonical encodings and an identity
    result, and only then do we spend time finding out which problem it was.
    """
    _check_scalar(key, "key")
    if len(blinded_element) != ELEMENT_SIZE:
        raise OprfError(_wrong_length("blinded element", blinded_element))
    try:
        evaluated: bytes = rbcl.crypto_scalarmult_ristretto255(key, blinded_element)
    except RuntimeError:
        raise OprfError(_element_problem("blinded element", blinded_element)) from None
    return evaluated


def finalize(input: bytes, blind: bytes, evaluated_element: bytes) -> bytes:
    """RFC 9497 Finalize: the 64-byte PRF output (the JPR token) for `input`.

    Unblinds the registry's answer and hashes it with the input, so the output
    equals `evaluate(key, input)` without the client ever holding the key.
    """
    _check_input(input)
    _check_scalar(blind, "blind")
    _check_element(evaluated_element, "evaluated element")
    inverse: bytes = rbcl.crypto_core_ristretto255_scalar_invert(blind)
    unblinded = _scalar_mult(inverse, evaluated_element)
    return _output_hash(input, unblinded)


def evaluate(key: bytes, input: bytes) -> bytes:
    """RFC 9497 Evaluate: the PRF output computed directly with the key.

    For the key holder only (tests, re-keying tools): the same output as the
    blind / blind_evaluate / finalize round trip.
    """
    _check_scalar(key, "key")
    input_element = _hash_to_group(_check_input(input))
    return _output_hash(input, _scalar_mult(key, input_element))


def public_key(key: bytes) -> bytes:
    """The public half of an OPRF key, `key * G`: the element every member pins."""
    _check_scalar(key, "key")
    public: bytes = rbcl.crypto_scalarmult_ristretto255_base(key)
    return public


def generate_proof(
    key: bytes,
    public_key: bytes,
    blinded_elements: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    *,
    random_scalar: bytes | None = None,
) -> bytes:
    """RFC 9497 GenerateProof(k, G, pkS, C, D): one batched DLEQ proof, `c || s` (64 bytes).

    Proves that every evaluated element is `key` times its blinded element and
    that `public_key` is `key * G`, without revealing `key`. The registry knows
    the key, so it uses ComputeCompositesFast (one multiplication per element).
    `random_scalar` is for reproducing test vectors only: a reused one reveals the key.
    """
    composite = _weighted_sum(_composite_weights(public_key, blinded_elements, evaluated_elements), blinded_elements)
    evaluated_composite = _scalar_mult(key, composite)
    if random_scalar is None:
        random_scalar = generate_key()
    else:
        _check_scalar(random_scalar, "proof random scalar")
    t2: bytes = rbcl.crypto_scalarmult_ristretto255_base(random_scalar)
    t3 = _scalar_mult(random_scalar, composite)
    challenge = _challenge(public_key, composite, evaluated_composite, t2, t3)
    response: bytes = rbcl.crypto_core_ristretto255_scalar_sub(
        random_scalar, rbcl.crypto_core_ristretto255_scalar_mul(challenge, key)
    )
    return challenge + response


def verify_proof(
    public_key: bytes, blinded_elements: Sequence[bytes], evaluated_elements: Sequence[bytes], proof: bytes
) -> bool:
    """RFC 9497 VerifyProof(G, pkS, C, D, proof): whether one key `k` with `k * G == public_key`
    gives every evaluated element from its blinded element.

    Uses ComputeComposites, as a client must (it does not know the key). Raises
    OprfError for a malformed proof or element, returns False for a proof that
    does not hold.
    """
    challenge, response = _proof_scalars(proof)
    _check_element(public_key, "public key")
    weights = list(_composite_weights(public_key, blinded_elements, evaluated_elements))
    composite = _weighted_sum(weights, blinded_elements)
    evaluated_composite = _weighted_sum(weights, evaluated_elements)
    t2 = _linear_combination(response, _GENERATOR, challenge, public_key)
    t3 = _linear_combination(response, composite, challenge, evaluated_composite)
    expected = _challenge(public_key, composite, evaluated_composite, t2, t3)
    return hmac.compare_digest(expected, challenge)


def token_input(id_type: str, normalized_value: str) -> bytes:
    """The OPRF input for an identifier: UTF-8 of "jpr:v1:<type>:<normalized value>".

    The one place that builds these bytes: the version and type prefix keep a
    phone number and an e-mail address with equal text from sharing a token.
    """
    return (_TOKEN_PREFIX + id_type + ":" + normalized_value).encode("utf-8")


def _output_hash(input: bytes, element: bytes) -> bytes:
    """Hash(I2OSP(len(input), 2) || input || I2OSP(len(element), 2) || element || "Finalize")."""
    digest = hashlib.sha512()
    digest.update(i2osp(len(input), 2) + input)
    digest.update(i2osp(len(element), 2) + element)
    digest.update(b"Finalize")
    return digest.digest()


def _composite_weights(
    public_key: bytes, blinded_elements: Sequence[bytes], evaluated_elements: Sequence[bytes]
) -> Iterator[bytes]:
    """The scalars d_i of RFC 9497 ComputeComposites, each bound to the key and to its pair (C_i, D_i)."""
    count = len(blinded_elements)
    if count != len(evaluated_elements):
        raise OprfError(f"{count} blinded elements but {len(evaluated_elements)} evaluated elements")
    if not 0 < count <= _MAX_BATCH:
        raise OprfError(f"a proof covers 1 to {_MAX_BATCH} elements, not {count}")
    seed = hashlib.sha512(_ELEMENT_LENGTH + public_key + i2osp(len(_SEED_DST), 2) + _SEED_DST).digest()
    prefix = i2osp(len(seed), 2) + seed
    for index, (blinded, evaluated) in enumerate(zip(blinded_elements, evaluated_elements, strict=True)):
        transcript = prefix + i2osp(index, 2) + _ELEMENT_LENGTH + blinded + _ELEMENT_LENGTH + evaluated + b"Composite"
        yield _hash_to_scalar(transcript, _HASH_TO_SCALAR_DST)


def _weighted_sum(weights: Iterable[bytes], elements: Sequence[bytes]) -> bytes:
    """Sum of weight_i * element_i (elements already checked to be 32 bytes)."""
    total = b""
    for weight, element in zip(weights, elements, strict=True):
        term = _scalar_mult(weight, element)
        total = rbcl.crypto_core_ristretto255_add(total, term) if total else term
    return total


def _linear_combination(a: bytes, p: bytes, b: bytes, q: bytes) -> bytes:
    """`a * p + b * q` for a proof's scalars, which may be zero."""
    left = rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero(a, p)
    right = rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero(b, q)
    total: bytes = rbcl.crypto_core_ristretto255_add(left, right)
    return total


def _challenge(public_key: bytes, composite: bytes, evaluated_composite: bytes, t2: bytes, t3: bytes) -> bytes:
    """The Fiat-Shamir challenge c of RFC 9497 GenerateProof and VerifyProof."""
    transcript = b"".join(_ELEMENT_LENGTH + e for e in (public_key, composite, evaluated_composite, t2, t3))
    return _hash_to_scalar(transcript + b"Challenge", _HASH_TO_SCALAR_DST)


def _proof_scalars(proof: bytes) -> tuple[bytes, bytes]:
    """(c, s) from a serialized proof; each must be a canonical scalar (zero is allowed)."""
    if len(proof) != PROOF_SIZE:
        raise OprfError(f"proof is {len(proof)} bytes; a proof is {PROOF_SIZE} bytes (c || s)")
    challenge, response = proof[:SCALAR_SIZE], proof[SCALAR_SIZE:]
    for scalar, name in ((challenge, "proof challenge c"), (response, "proof response s")):
        if rbcl.crypto_core_ristretto255_scalar_reduce(scalar + _SCALAR_PAD) != scalar:
            raise OprfError(f"{name} is not a canonical scalar (it must be reduced modulo the group order)")
    return challenge, response


def _hash_to_group(message: bytes) -> bytes:
    """RFC 9380 hash_to_ristretto255 with the suite's HashToGroup DST.

    The map never yields the identity for inputs anyone can find (it would be a
    SHA-512 preimage), but RFC 9497 says to check, and the check is one compare.
    """
    uniform = expand_message_xmd(message, _HASH_TO_GROUP_DST, UNIFORM_SIZE)
    element: bytes = rbcl.crypto_core_ristretto255_from_hash(uniform)
    if element == _IDENTITY:
        raise OprfError("input hashes to the identity element")  # pragma: no cover
    return element


def _hash_to_scalar(message: bytes, dst: bytes) -> bytes:
    """64 uniform bytes read as a little-endian integer, reduced modulo the group order."""
    uniform = expand_message_xmd(message, dst, UNIFORM_SIZE)
    scalar: bytes = rbcl.crypto_core_ristretto255_scalar_reduce(uniform)
    return scalar


def _scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """`scalar * element` for operands already checked, so failure is not expected."""
    try:
        product: bytes = rbcl.crypto_scalarmult_ristretto255(scalar, element)
    except RuntimeError:
        raise OprfError(_element_problem("element", element)) from None
    return product


def _check_input(input: bytes) -> bytes:
    """RFC 9497 encodes the input length in two bytes, so longer inputs cannot be finalized."""
    if len(input) > _MAX_INPUT:
        raise OprfError(f"input is {len(input)} bytes; at most {_MAX_INPUT} are allowed")
    return input


def _check_scalar(scalar: bytes, name: str) -> None:
    """A scalar must be 32 bytes, canonical (reduced) and non-zero.

    libsodium's multiplication silently drops the top bit of a scalar, so a
    non-canonical key would give wrong tokens instead of an error.
    """
    if len(scalar) != SCALAR_SIZE:
        raise OprfError(f"{name} is {len(scalar)} bytes; a ristretto255 scalar is {SCALAR_SIZE} bytes")
    if rbcl.crypto_core_ristretto255_scalar_reduce(scalar + _SCALAR_PAD) != scalar:
        raise OprfError(f"{name} is not a canonical scalar (it must be reduced modulo the group order)")
    if scalar == _ZERO_SCALAR:
        raise OprfError(f"{name} is the zero scalar")


def _check_element(element: bytes, name: str) -> None:
    """A received element must be a canonical ristretto255 encoding other than the identity."""
    if len(element) != ELEMENT_SIZE:
        raise OprfError(_wrong_length(name, element))
    if element == _IDENTITY or not rbcl.crypto_core_ristretto255_is_valid_point(element):
        raise OprfError(_element_problem(name, element))


def _element_problem(name: str, element: bytes) -> str:
    """Why libsodium refused a 32-byte element (libsodium accepts the identity as valid)."""
    if element == _IDENTITY:
        return f"{name} is the identity element"
    if not rbcl.crypto_core_ristretto255_is_valid_point(element):
        return f"{name} is not a valid ristretto255 encoding"
    return f"{name} times the scalar is the identity element"  # pragma: no cover


def _wrong_length(name: str, element: bytes) -> str:
    return f"{name} is {len(element)} bytes; a ristretto255 element is {ELEMENT_SIZE} bytes"
