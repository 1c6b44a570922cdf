"""C2SP signed notes (c2sp.org/signed-note): text signed by named keys, as Go's golang.org/x/mod/sumdb/note does it.

A checkpoint is a note; the log signs it with an Ed25519 key (signature type
0x01) and witnesses add cosignatures (type 0x04, c2sp.org/tlog-cosignature) as
further signature lines. Opening a note follows Go's `note.Open`: signatures
from unknown keys are kept but ignored, a signature from a known key that does
not verify rejects the whole note, and at least one known key must have signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from jpr_client.quoting import quoted

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "NoteError",
    "OpenedNote",
    "Signer",
    "Verifier",
    "add_signature_lines",
    "cosignature_v1_message",
    "generate_signer_key",
    "key_hash",
    "open_note",
    "sign_note",
]

ALG_ED25519 = 0x01
"""Signature type 0x01: Ed25519 over the note text (signed-note, "Ed25519 signatures")."""
ALG_COSIGNATURE_V1 = 0x04
"""Signature type 0x04: timestamped Ed25519 checkpoint cosignatures (c2sp.org/tlog-cosignature)."""

MAX_SIGNATURES = 100  # Go's note.Open refuses more; the spec asks verifiers to accept at least 16
MAX_NOTE_BYTES = 1_000_000  # the checkpoint size limit of filippo.io/torchwood; a note is far smaller
_MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: "It MUST NOT exceed 2^63 - 1"
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_PREFIX = "PRIVATE+KEY+"


class NoteError(ValueError):
    """A note, key or signature is malformed, or a note does not carry a valid signature from a known key."""


def _is_valid_name(name: str) -> bool:
    """signed-note: key names are non-empty and contain no Unicode spaces and no plus (Go's isValidName)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise NoteError(f"key name {quoted(name)} is not valid: it must be non-empty, with no spaces and no '+'")


def key_hash(name: str, alg_and_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || signature type || public key)[:4] (signed-note, "Signatures").

    >>> key_hash("PeterNeumann", base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")).hex()
    'c74f20a3'
    """
    return hashlib.sha256(name.encode() + b"\n" + alg_and_key).digest()[:4]


def _raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 section 4) with padding; `what` names the field, never quoting secrets."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not standard base64") from None


def _public_key(raw: bytes, what: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise NoteError(f"{what} is not an Ed25519 public key") from None


def cosignature_v1_message(checkpoint_body: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature signs: "cosignature/v1\\ntime <ts>\\n" + the checkpoint body.

    tlog-cosignature, "Ed25519 signed message": the whole note body, extension
    lines included; the timestamp in decimal without leading zeros.
    """
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"a cosignature timestamp is between 0 and 2^63 - 1 seconds, not {timestamp}")
    return f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint_body.encode()


class Verifier:
    """A known public key: verifies the signatures on notes whose lines carry its name and key hash.

    >>> v = Verifier.from_key_string("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    >>> (v.name, v.key_hash.hex(), v.alg)
    ('PeterNeumann', 'c74f20a3', 1)
    """

    def __init__(self, name: str, public_key: Ed25519PublicKey, alg: int = ALG_ED25519) -> None:
        _check_name(name)
        if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError(f"signature type 0x{alg:02x} is not supported: JPR uses 0x01 (Ed25519) and 0x04 (cosignature/v1)")
        self.name = name
        self.alg = alg
        self.public_key = public_key
        self.key_hash = key_hash(name, bytes([alg]) + _raw_public_key(public_key))

    @classmethod
    def from_key_string(cls, vkey: str) -> Verifier:
        """Parse a vkey, `name+hex(key ID)+base64(signature type || public key)` (signed-note, "Verifier keys")."""
        name, _, rest = vkey.partition("+")
        hash_hex, _, key64 = rest.partition("+")
        if len(hash_hex) != 8 or hash_hex != hash_hex.lower() or any(c not in "0123456789abcdef" for c in hash_hex):
            raise NoteError(f"verifier key {quoted(vkey)} is not name+hash+key: the hash is 8 lower-case hex digits")
        _check_name(name)
        material = _b64decode(key64, f"the key part of verifier key {quoted(vkey)}")
        if len(material) != 33:
            raise NoteError(f"verifier key {quoted(vkey)} holds {len(material)} bytes; a signature type byte and an Ed25519 key are 33")
        verifier = cls(name, _public_key(material[1:], f"verifier key {quoted(vkey)}"), material[0])
        if verifier.key_hash.hex() != hash_hex:
            raise NoteError(f"verifier key {quoted(vkey)} has key hash {hash_hex}, but its name and key hash to {verifier.key_hash.hex()}")
        return verifier

    def key_string(self) -> str:
        """This key as a vkey, the form to configure and publish."""
        material = base64.b64encode(bytes([self.alg]) + _raw_public_key(self.public_key)).decode()
        return f"{self.name}+{self.key_hash.hex()}+{material}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` (after the key ID) is this key's over the note text `message`.

        For a cosignature/v1 key, `signature` is the 8-byte timestamp and the
        Ed25519 signature, and `message` the checkpoint body.
        """
        if self.alg == ALG_COSIGNATURE_V1:
            if len(signature) != 72:
                return False
            try:
                message = cosignature_v1_message(message.decode(), int.from_bytes(signature[:8], "big"))
            except (UnicodeDecodeError, NoteError):
                return False
            signature = signature[8:]
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.key_string()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and other.key_string() == self.key_string()

    def __hash__(self) -> int:
        return hash(self.key_string())


def _private_key_string(name: str, alg: int, key: Ed25519PrivateKey) -> str:
    """Go's signer key form, PRIVATE+KEY+name+hex(key ID)+base64(type || 32-byte seed)."""
    _check_name(name)
    hashed = key_hash(name, bytes([alg]) + _raw_public_key(key.public_key()))
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"{_PRIVATE_PREFIX}{name}+{hashed.hex()}+{base64.b64encode(bytes([alg]) + seed).decode()}"


def _parse_private_key_string(text: str, alg: int) -> tuple[str, Ed25519PrivateKey]:
    """The name and key of a signer key string of signature type `alg`; the key hash must match the key."""
    if not text.startswith(_PRIVATE_PREFIX):
        raise NoteError("a signer key starts with PRIVATE+KEY+ (the key itself is not repeated here)")
    name, _, rest = text[len(_PRIVATE_PREFIX):].partition("+")
    hash_hex, _, key64 = rest.partition("+")
    _check_name(name)
    material = _b64decode(key64, f"the key part of the signer key of {quoted(name)}")
    if len(material) != 33 or material[0] != alg:
        raise NoteError(f"the signer key of {quoted(name)} is not a signature type 0x{alg:02x} Ed25519 key "
                        "(one type byte and a 32-byte seed)")
    key = Ed25519PrivateKey.from_private_bytes(material[1:])
    if key_hash(name, bytes([alg]) + _raw_public_key(key.public_key())).hex() != hash_hex:
        raise NoteError(f"the signer key of {quoted(name)} has key hash {quoted(hash_hex)}, which is not the hash of its name and key")
    return name, key


class _NamedKey:
    """An Ed25519 private key under a key name, for one signature type: what Signer and Cosigner share."""

    ALG: ClassVar[int]

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._verifier = Verifier(name, private_key.public_key(), self.ALG)
        self._private_key = private_key
        self.name = name
        self.key_hash = self._verifier.key_hash

    @classmethod
    def from_key_string(cls, key: str) -> Self:
        """The key of a `PRIVATE+KEY+name+hash+base64(type || seed)` string, as Go's note.GenerateKey writes it."""
        return cls(*_parse_private_key_string(key, cls.ALG))

    @classmethod
    def _generate(cls, name: str) -> tuple[str, str]:
        key = cls(name, Ed25519PrivateKey.generate())
        return key.private_key_string(), key.verifier().key_string()

    def private_key_string(self) -> str:
        """This key in the PRIVATE+KEY+... form `from_key_string` reads: a secret, for the key's owner to store."""
        return _private_key_string(self.name, self.ALG, self._private_key)

    def verifier(self) -> Verifier:
        """The public half, to give to those who check the signatures."""
        return self._verifier

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, key hash {self.key_hash.hex()})"


class Signer(_NamedKey):
    """A note signer with an Ed25519 key (signature type 0x01), such as the log's checkpoint key."""

    ALG = ALG_ED25519

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of the note text `message` (the line adds the key ID)."""
        return self._private_key.sign(message)


def generate_signer_key(name: str) -> tuple[str, str]:
    """A new Ed25519 note key as (signer key, verifier key) strings; keep the first secret.

    >>> skey, vkey = generate_signer_key("log.example/jpr")
    >>> Signer.from_key_string(skey).verifier().key_string() == vkey
    True
    """
    return Signer._generate(name)


def _signature_line(name: str, key_id: bytes, signature: bytes) -> str:
    return f"{_SIGNATURE_PREFIX}{name} {base64.b64encode(key_id + signature).decode()}\n"


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """The signed note: `text` (ending in a newline), a blank line, one signature line per signer.

    >>> signer = Signer("example.com/log", Ed25519PrivateKey.generate())
    >>> open_note(sign_note("hello\\n", [signer]), [signer.verifier()]).text
    'hello\\n'
    """
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    lines = [_signature_line(s.name, s.key_hash, s.sign(text.encode())) for s in signers]
    return text + "\n" + "".join(lines)


def _check_text(note: str) -> None:
    """signed-note: valid UTF-8 (a str is) with no ASCII control characters but newline, within the size limit."""
    try:
        size = len(note.encode())
    except UnicodeEncodeError:
        raise NoteError("the note is not valid UTF-8 (it holds a lone surrogate)") from None
    if size > MAX_NOTE_BYTES:
        raise NoteError(f"the note is {size:,} bytes; the limit is {MAX_NOTE_BYTES:,}")
    for position, character in enumerate(note):
        if character < " " and character != "\n":
            raise NoteError(f"the note holds control character {character!r} at {position}; only newline is allowed")


@dataclass(frozen=True)
class _SignatureLine:
    line: str  # with its newline, as in the note
    name: str
    key_id: bytes
    signature: bytes


def _split(note: str) -> tuple[str, list[_SignatureLine]]:
    """The text and the parsed signature lines of a note; NoteError when it is not well formed."""
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n") or split + 2 == len(note):
        raise NoteError("a signed note is text ending in a newline, a blank line, then signature lines ending in newlines")
    text, block = note[:split + 1], note[split + 2:]
    lines = [line + "\n" for line in block[:-1].split("\n")]  # not splitlines: U+2028 is no line break here
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has {len(lines)} signature lines; the limit is {MAX_SIGNATURES}")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> _SignatureLine:
    body = line.removesuffix("\n")
    if not body.startswith(_SIGNATURE_PREFIX) or body == line:
        raise NoteError(f"signature line {quoted(body)} is not '\u2014 <name> <base64>' ending in a newline")
    name, space, encoded = body[len(_SIGNATURE_PREFIX):].partition(" ")
    _check_name(name)
    raw = _b64decode(encoded, f"the signature of {quoted(name)}") if space else b""
    if len(raw) < 5:
        raise NoteError(f"the signature of {quoted(name)} is not a 4-byte key ID followed by a signature")
    return _SignatureLine(line, name, raw[:4], raw[4:])


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked: its text, the known keys that signed it, and all its signature lines.

    `signature_lines` keeps every line (with its newline), unknown ones too,
    so a note can be passed on with its cosignatures intact.
    """

    text: str
    verified: tuple[Verifier, ...]
    signature_lines: tuple[str, ...]


def open_note(note: str, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Check the note's signatures against the known `verifiers` (signed-note, "Signatures"; Go's note.Open).

    Unknown keys (name or key ID not known) are ignored; a known key's
    signature must verify, else NoteError; at least one known key must have
    signed. A repeated line from the same key counts once.
    """
    text, lines = _split(note)
    known: dict[tuple[str, bytes], set[Verifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_hash), set()).add(verifier)
    verified: list[Verifier] = []
    for line in lines:
        candidates = known.get((line.name, line.key_id), set())
        if len(candidates) > 1:
            raise NoteError(f"two different verifier keys are named {quoted(line.name)} with key hash {line.key_id.hex()}; "
                            "configure only one")
        if not candidates:
            continue
        (verifier,) = candidates
        if verifier in verified:
            continue
        if not verifier.verify(text.encode(), line.signature):
            raise NoteError(f"the signature of known key {quoted(line.name)} ({line.key_id.hex()}) does not verify: "
                            "the note was altered or signed by another key; reject it")
        verified.append(verifier)
    if not verified:
        signed_by = ", ".join(f"{line.name}+{line.key_id.hex()}" for line in lines)
        raise NoteError(f"no signature on the note is from a known key (it is signed by {quoted(signed_by)}); "
                        "check the configured verifier keys")
    return OpenedNote(text, tuple(verified), tuple(line.line for line in lines))


def add_signature_lines(note: str, lines: Sequence[str]) -> str:
    """The signed `note` with the signature `lines` (each ending in a newline) appended, skipping ones it has.

    How a log adds witnesses' cosignatures to its checkpoint; nothing is
    verified here (open_note does that).
    """
    _, existing = _split(note)
    have = {line.line for line in existing}
    added = [parsed.line for parsed in map(_parse_signature_line, lines) if parsed.line not in have]
    if len(existing) + len(set(added)) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return note + "".join(dict.fromkeys(added))

