"""C2SP cosignatures, version cosignature/v1 (c2sp.org/tlog-cosignature): a witness's timestamped Ed25519 signature.

A witness that has checked a checkpoint is consistent with everything it saw
before signs "cosignature/v1\\ntime <ts>\\n" + the checkpoint's note text; the
signature line carries the key ID, the 8-byte big-endian timestamp and the
Ed25519 signature, and is added to the checkpoint's note like any other line
(`add_signature_lines`). The key ID uses signature type 0x04, so the same key
could never be mistaken for a plain note signer.
"""

from __future__ import annotations

from jpr_client.quoting import quoted
from jpr_client.transparency.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    Verifier,
    _NamedKey,
    _parse_signature_line,
    _signature_line,
    cosignature_v1_message,
)

__all__ = ["Cosigner", "cosignature_v1_message", "generate_witness_key", "verify_cosignature"]


class Cosigner(_NamedKey):
    """A witness key (signature type 0x04): signs cosignature/v1 lines for checkpoints it has verified.

    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> witness = Cosigner("witness.example/w1", Ed25519PrivateKey.generate())
    >>> body = "log.example/jpr\\n0\\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\\n"
    >>> verify_cosignature(witness.verifier(), body, witness.cosign(body, 1700000000))
    1700000000
    """

    ALG = ALG_COSIGNATURE_V1

    def cosign(self, checkpoint_body: str, timestamp: int) -> str:
        """The signature line "— name base64(key ID || timestamp || signature)\\n" for the checkpoint's note text."""
        signature = self._private_key.sign(cosignature_v1_message(checkpoint_body, timestamp))
        return _signature_line(self.name, self.key_hash, timestamp.to_bytes(8, "big") + signature)


def generate_witness_key(name: str) -> tuple[str, str]:
    """A new witness key as (private key string, verifier key string); keep the first secret.

    >>> key, vkey = generate_witness_key("witness.example/w1")
    >>> Cosigner.from_key_string(key).verifier().key_string() == vkey
    True
    """
    return Cosigner._generate(name)


def verify_cosignature(verifier: Verifier, checkpoint_body: str, signature_line_or_bytes: str | bytes) -> int:
    """The timestamp of a valid cosignature by `verifier` on the checkpoint; NoteError when it is not one.

    `signature_line_or_bytes` is a signature line as it appears in the note, or
    the decoded signature bytes after the key ID (timestamp || Ed25519 signature).
    """
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise NoteError(f"verifier key {quoted(verifier.key_string())} is signature type 0x{verifier.alg:02x}, "
                        "not a cosignature/v1 (0x04) witness key")
    if isinstance(signature_line_or_bytes, str):
        line = _parse_signature_line(signature_line_or_bytes if signature_line_or_bytes.endswith("\n") else signature_line_or_bytes + "\n")
        if (line.name, line.key_id) != (verifier.name, verifier.key_hash):
            raise NoteError(f"the cosignature is by {quoted(line.name)} with key ID {line.key_id.hex()}, "
                            f"not by witness {quoted(verifier.name)} ({verifier.key_hash.hex()})")
        signature = line.signature
    else:
        signature = signature_line_or_bytes
    if len(signature) != 72:
        raise NoteError(f"a cosignature/v1 signature is an 8-byte timestamp and a 64-byte Ed25519 signature, not {len(signature)} bytes")
    timestamp = int.from_bytes(signature[:8], "big")
    if not verifier.verify(checkpoint_body.encode(), signature):
        raise NoteError(f"the cosignature of witness {quoted(verifier.name)} at time {timestamp} does not verify for this checkpoint")
    return timestamp
