"""RFC 9380 `expand_message_xmd` with SHA-512, the hashing under RFC 9497's suite.

Kept apart from the OPRF so that the OPRF module holds the protocol (blinding,
evaluation, proofs) and this one the byte-level hashing both sides share.
"""

from __future__ import annotations

import hashlib

__all__ = ["UNIFORM_SIZE", "expand_message_xmd", "i2osp"]

# SHA-512: b_in_bytes = 64 (digest), s_in_bytes = 128 (block) in RFC 9380 terms.
_DIGEST_SIZE = 64
_BLOCK_SIZE = 128
UNIFORM_SIZE = 64  # bytes fed to the ristretto255 map and to scalar reduction


def expand_message_xmd(message: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 expand_message_xmd with SHA-512."""
    blocks = -(-length // _DIGEST_SIZE)
    if blocks > 255 or length > 0xFFFF or len(dst) > 255:
        raise ValueError(f"expand_message_xmd cannot produce {length} bytes with a {len(dst)}-byte DST")
    dst_prime = dst + i2osp(len(dst), 1)
    first = hashlib.sha512(bytes(_BLOCK_SIZE) + message + i2osp(length, 2) + b"\x00" + dst_prime).digest()
    block = hashlib.sha512(first + b"\x01" + dst_prime).digest()
    uniform = [block]
    for index in range(2, blocks + 1):
        block = hashlib.sha512(_xor(first, block) + i2osp(index, 1) + dst_prime).digest()
        uniform.append(block)
    return b"".join(uniform)[:length]


def i2osp(value: int, length: int) -> bytes:
    """RFC 8017 I2OSP: `value` as `length` big-endian bytes."""
    return value.to_bytes(length, "big")


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))
