"""DSSE envelopes signed with Ed25519: how platforms sign reports.

DSSE (github.com/secure-systems-lab/dsse) signs the pre-authentication
encoding PAE(type, body) rather than a re-serialized structure, so the
registry can verify the exact payload bytes before parsing them and keep the
envelope verbatim: anyone can re-verify later who said what.

The JSON form is parsed strictly (one encoding of base64, no duplicate or
unknown keys, a size limit) because the stored bytes are evidence, and a
lenient parser would let two different byte strings mean the same report.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jpr_client.quoting import quoted

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "REPORT_PAYLOAD_TYPE",
    "RETRACTION_PAYLOAD_TYPE",
    "Envelope",
    "EnvelopeError",
    "Signature",
    "encode_envelope",
    "generate_signing_key",
    "key_id",
    "pae",
    "parse_envelope",
    "public_key",
    "sign",
    "sign_envelope",
    "verify",
]

REPORT_PAYLOAD_TYPE = "application/vnd.jpr.report.v1+protobuf"
RETRACTION_PAYLOAD_TYPE = "application/vnd.jpr.retraction.v1+protobuf"
MAX_ENVELOPE_BYTES = 65536

KEY_SIZE = 32
SIGNATURE_SIZE = 64
_KEY_ID_PREFIX = "ed25519:"
_KEY_ID_DIGEST_BYTES = 16
_FIELDS = ("payload", "payloadType", "signatures")
_SIGNATURE_FIELDS = ("keyid", "sig")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: an unauthenticated key hint and 64 Ed25519 bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope: the payload bytes exactly as signed."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


class EnvelopeError(ValueError):
    """An envelope the registry refuses; the message names the offending field."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, the bytes that are actually signed.

    "DSSEv1" SP len(type) SP type SP len(body) SP body, with lengths in ASCII
    decimal of byte counts: the length prefixes make the encoding unambiguous.
    This is the one place in JPR that builds PAE bytes.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def generate_signing_key() -> bytes:
    """A fresh Ed25519 private key as its raw 32-byte seed (platforms keep it)."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def public_key(private_key: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a private seed (what the association registers)."""
    return _private_key(private_key).public_key().public_bytes_raw()


def key_id(public_key: bytes) -> str:
    """The key's id: "ed25519:" + hex of the first 16 bytes of SHA-256(public key).

    Derived from the key itself, so a platform and the registry agree on it
    without coordination and a keyid cannot point at a different key.
    """
    digest = hashlib.sha256(public_key).digest()[:_KEY_ID_DIGEST_BYTES]
    return _KEY_ID_PREFIX + digest.hex()


def sign(private_key: bytes, payload_type: str, payload: bytes) -> bytes:
    """The 64-byte Ed25519 signature over PAE(payload_type, payload)."""
    return _private_key(private_key).sign(pae(payload_type, payload))


def sign_envelope(private_key: bytes, payload_type: str, payload: bytes) -> bytes:
    """A complete encoded envelope with one signature whose keyid is `key_id` of the key."""
    signature = Signature(keyid=key_id(public_key(private_key)), sig=sign(private_key, payload_type, payload))
    return encode_envelope(Envelope(payload_type=payload_type, payload=payload, signatures=(signature,)))


def verify(public_key: bytes, payload_type: str, payload: bytes, sig: bytes) -> bool:
    """True when `sig` is a valid Ed25519 signature over PAE(payload_type, payload).

    A key or signature of the wrong length is simply not a valid signature.
    """
    if len(public_key) != KEY_SIZE or len(sig) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, pae(payload_type, payload))
    except (InvalidSignature, ValueError):
        return False
    return True


def encode_envelope(envelope: Envelope) -> bytes:
    """Compact JSON in the DSSE envelope form, standard base64 with padding."""
    document = {
        "payload": _b64encode(envelope.payload),
        "payloadType": envelope.payload_type,
        "signatures": [{"keyid": s.keyid, "sig": _b64encode(s.sig)} for s in envelope.signatures],
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_envelope(data: bytes) -> Envelope:
    """Parse and check a JSON DSSE envelope; the signatures are not verified here.

    Every problem raises `EnvelopeError` with a message naming the field, so a
    platform engineer can fix the producer without reading our source.
    """
    document = _load_object(data)
    return Envelope(
        payload_type=_payload_type(document),
        payload=_b64decode(_string_field(document, "payload", "payload"), "payload"),
        signatures=_signatures(document),
    )


def _load_object(data: bytes) -> Mapping[str, Any]:
    """Size limit, UTF-8, JSON, an object with exactly the DSSE fields."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"envelope is {len(data)} bytes; at most {MAX_ENVELOPE_BYTES} are allowed")
    if data.startswith(_UTF8_BOM):
        # RFC 8259 section 8.1: JSON is sent without a BOM. Skipping it would give one report two encodings.
        raise EnvelopeError("envelope starts with a UTF-8 byte order mark (EF BB BF); send the JSON without one (RFC 8259 section 8.1)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EnvelopeError(f"envelope is not UTF-8 (invalid byte at offset {error.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_int=_number)
    except json.JSONDecodeError as error:
        raise EnvelopeError(f"envelope is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        # The decoder recurses once per nested array or object; a DSSE envelope nests three deep.
        raise EnvelopeError("envelope nests arrays or objects too deeply; a DSSE envelope nests three levels") from None
    if not isinstance(document, dict):
        raise EnvelopeError(f"envelope must be a JSON object, not {_json_type(document)}")
    _check_fields(document, _FIELDS, "envelope")
    return document


def _payload_type(document: Mapping[str, Any]) -> str:
    payload_type = _string_field(document, "payloadType", "payloadType")
    if not payload_type:
        raise EnvelopeError("payloadType is empty")
    return payload_type


def _signatures(document: Mapping[str, Any]) -> tuple[Signature, ...]:
    if "signatures" not in document:
        raise EnvelopeError("envelope has no signatures field")
    entries = document["signatures"]
    if not isinstance(entries, list):
        raise EnvelopeError(f"signatures must be a JSON array, not {_json_type(entries)}")
    if not entries:
        raise EnvelopeError("signatures is empty; a signed envelope needs at least one signature")
    return tuple(_signature(entry, f"signatures[{index}]") for index, entry in enumerate(entries))


def _signature(entry: object, where: str) -> Signature:
    if not isinstance(entry, dict):
        raise EnvelopeError(f"{where} must be a JSON object, not {_json_type(entry)}")
    _check_fields(entry, _SIGNATURE_FIELDS, where)
    keyid = _string_field(entry, "keyid", f"{where}.keyid")
    if not keyid:
        raise EnvelopeError(f"{where}.keyid is empty")
    sig = _b64decode(_string_field(entry, "sig", f"{where}.sig"), f"{where}.sig")
    if len(sig) != SIGNATURE_SIZE:
        raise EnvelopeError(f"{where}.sig is {len(sig)} bytes; an Ed25519 signature is {SIGNATURE_SIZE} bytes")
    return Signature(keyid=keyid, sig=sig)


def _check_fields(document: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Unknown keys are refused: they would be unsigned data stored as if it were evidence."""
    for name in document:
        if name not in allowed:
            raise EnvelopeError(f"{where} has unknown field {quoted(name)}; the fields are {', '.join(allowed)}")


def _string_field(document: Mapping[str, Any], name: str, where: str) -> str:
    if name not in document:
        raise EnvelopeError(f"{where} is missing")
    value = document[name]
    if not isinstance(value, str):
        raise EnvelopeError(f"{where} must be a JSON string, not {_json_type(value)}")
    if not value.isascii() and not _is_utf8(value):
        raise EnvelopeError(f"{where} holds a lone surrogate escape (\\ud800-\\udfff), which is not text")
    return value


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _b64decode(text: str, where: str) -> bytes:
    """Standard base64 with padding, and only its canonical form.

    Re-encoding and comparing rejects non-zero padding bits, which `b64decode`
    would otherwise accept: one payload, one encoding.
    """
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{where} is not standard base64 (RFC 4648 section 4, with padding)") from None
    if _b64encode(decoded) != text:
        raise EnvelopeError(f"{where} is not canonical base64 (the unused bits of the last character must be zero)")
    return decoded


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _private_key(private_key: bytes) -> Ed25519PrivateKey:
    if len(private_key) != KEY_SIZE:
        raise ValueError(f"Ed25519 private key is {len(private_key)} bytes; expected the {KEY_SIZE}-byte seed")
    return Ed25519PrivateKey.from_private_bytes(private_key)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON allows repeated keys; two readers could then see two payloads."""
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise EnvelopeError(f"envelope repeats the key {quoted(name)}")
        document[name] = value
    return document


def _number(digits: str) -> float:
    """No DSSE field is a number, so a number needs no exact value: only the type it is refused for.

    `int` refuses more than 4,300 digits (and takes quadratic time up to there); `float` takes any
    count, so a long integer gets the same answer as any misplaced number.
    """
    return float(digits)


def _no_constant(name: str) -> None:
    raise EnvelopeError(f"envelope contains {name}, which is not JSON")


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
