"""RFC 9497 OPRF, suite ristretto255-SHA512, base mode (0x00).

Identifiers become tokens through this OPRF so that the registry never sees a
raw identifier and a platform never holds the key: nobody can test a guessed
phone number offline. The group arithmetic is libsodium's ristretto255 (via
`rbcl`); hashing to the group and to scalars follows RFC 9380
`expand_message_xmd` with SHA-512, as RFC 9497 section 4.1 requires.

Elements and scalars travel as their 32-byte canonical encodings (scalars
little-endian, reduced modulo the group order), exactly as in the RFC's test
vectors, so clients in any language can interoperate byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile

import rbcl

__all__ = [
    "ELEMENT_SIZE",
    "OUTPUT_SIZE",
    "SCALAR_SIZE",
    "OprfError",
    "blind",
    "blind_evaluate",
    "derive_key_pair",
    "evaluate",
    "finalize",
    "generate_key",
    "token_input",
]

ELEMENT_SIZE = 32
SCALAR_SIZE = 32
OUTPUT_SIZE = 64

# RFC 9497 section 3.1: contextString = "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier.
_MODE_OPRF = 0x00
_CONTEXT = b"OPRFV1-" + bytes([_MODE_OPRF]) + b"-ristretto255-SHA512"
_HASH_TO_GROUP_DST = b"HashToGroup-" + _CONTEXT
_HASH_TO_SCALAR_DST = b"HashToScalar-" + _CONTEXT
_DERIVE_KEY_PAIR_DST = b"DeriveKeyPair" + _CONTEXT

# SHA-512: b_in_bytes = 64 (digest), s_in_bytes = 128 (block) in RFC 9380 terms.
_DIGEST_SIZE = 64
_BLOCK_SIZE = 128
_UNIFORM_SIZE = 64  # bytes fed to the ristretto255 map and to scalar reduction
_MAX_INPUT = 0xFFFF  # Finalize prefixes the input with a 2-byte length

_IDENTITY = bytes(ELEMENT_SIZE)
_ZERO_SCALAR = bytes(SCALAR_SIZE)
_SCALAR_PAD = bytes(SCALAR_SIZE)
_TOKEN_PREFIX = "jpr:v1:"


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
    derive_input = seed + _i2osp(len(info), 2) + info
    for counter in range(256):
        secret = _hash_to_scalar(derive_input + _i2osp(counter, 1), _DERIVE_KEY_PAIR_DST)
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


def token_input(id_type: str, normalized_value: str) -> bytes:
    """The OPRF input for an identifier: UTF-8 of "jpr:v1:<type>:<normalized value>".

    The one place that builds these bytes: the version and type prefix keep a
    phone number and an e-mail address with equal text from sharing a token.
    """
    return (_TOKEN_PREFIX + id_type + ":" + normalized_value).encode("utf-8")


def _output_hash(input: bytes, element: bytes) -> bytes:
    """Hash(I2OSP(len(input), 2) || input || I2OSP(len(element), 2) || element || "Finalize")."""
    digest = hashlib.sha512()
    digest.update(_i2osp(len(input), 2) + input)
    digest.update(_i2osp(len(element), 2) + element)
    digest.update(b"Finalize")
    return digest.digest()


def _hash_to_group(message: bytes) -> bytes:
    """RFC 9380 hash_to_ristretto255 with the suite's HashToGroup DST.

    The map never yields the identity for inputs anyone can find (it would be a
    SHA-512 preimage), but RFC 9497 says to check, and the check is one compare.
    """
    uniform = _expand_message_xmd(message, _HASH_TO_GROUP_DST, _UNIFORM_SIZE)
    element: bytes = rbcl.crypto_core_ristretto255_from_hash(uniform)
    if element == _IDENTITY:
        raise OprfError("input hashes to the identity element")  # pragma: no cover
    return element


def _hash_to_scalar(message: bytes, dst: bytes) -> bytes:
    """64 uniform bytes read as a little-endian integer, reduced modulo the group order."""
    uniform = _expand_message_xmd(message, dst, _UNIFORM_SIZE)
    scalar: bytes = rbcl.crypto_core_ristretto255_scalar_reduce(uniform)
    return scalar


def _expand_message_xmd(message: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 expand_message_xmd with SHA-512."""
    blocks = -(-length // _DIGEST_SIZE)
    if blocks > 255 or length > 0xFFFF or len(dst) > 255:
        raise OprfError(f"expand_message_xmd cannot produce {length} bytes with a {len(dst)}-byte DST")
    dst_prime = dst + _i2osp(len(dst), 1)
    first = hashlib.sha512(bytes(_BLOCK_SIZE) + message + _i2osp(length, 2) + b"\x00" + dst_prime).digest()
    block = hashlib.sha512(first + b"\x01" + dst_prime).digest()
    uniform = [block]
    for index in range(2, blocks + 1):
        block = hashlib.sha512(_xor(first, block) + _i2osp(index, 1) + dst_prime).digest()
        uniform.append(block)
    return b"".join(uniform)[:length]


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


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))
