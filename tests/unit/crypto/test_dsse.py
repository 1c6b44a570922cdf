"""DSSE envelopes: PAE, Ed25519 signing, and the strict JSON parser."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from jpr_client.crypto import dsse

# RFC 8032 section 7.1, TEST 1: a public test key, never an operational one.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_EMPTY_MESSAGE_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

PAYLOAD_TYPE = dsse.REPORT_PAYLOAD_TYPE
PAYLOAD = b"\x0a\x03abc\xff\x00"
SIG_B64 = base64.b64encode(bytes(64)).decode()


def test_pae_matches_the_dsse_specification_example() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert dsse.pae("t/€", "€".encode()) == "DSSEv1 5 t/€ 3 €".encode()
    assert dsse.pae("x", b"") == b"DSSEv1 1 x 0 "


def test_sign_is_rfc8032_ed25519_over_the_pae_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 8032 TEST 1 signs the empty message, which no PAE is: make PAE yield it, then
    # `sign` must produce the RFC's signature byte for byte and `verify` must accept it.
    monkeypatch.setattr(dsse, "pae", lambda payload_type, payload: b"")
    assert dsse.sign(RFC8032_SECRET, PAYLOAD_TYPE, PAYLOAD) == RFC8032_EMPTY_MESSAGE_SIG
    assert dsse.verify(RFC8032_PUBLIC, PAYLOAD_TYPE, PAYLOAD, RFC8032_EMPTY_MESSAGE_SIG)


def test_public_key_of_the_rfc8032_seed_is_the_rfc_public_key() -> None:
    assert dsse.public_key(RFC8032_SECRET) == RFC8032_PUBLIC


def test_key_id_is_the_first_half_of_the_public_keys_sha256() -> None:
    assert dsse.key_id(RFC8032_PUBLIC) == "ed25519:21fe31dfa154a261626bf854046fd227"


def test_generated_signing_keys_are_fresh_32_byte_seeds() -> None:
    first, second = dsse.generate_signing_key(), dsse.generate_signing_key()
    assert len(first) == len(second) == 32
    assert first != second


def test_signing_with_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="Ed25519 private key is 31 bytes"):
        dsse.sign(bytes(31), PAYLOAD_TYPE, PAYLOAD)


def test_a_signature_verifies_only_for_its_key_type_and_payload() -> None:
    key = dsse.generate_signing_key()
    public = dsse.public_key(key)
    sig = dsse.sign(key, PAYLOAD_TYPE, PAYLOAD)
    assert dsse.verify(public, PAYLOAD_TYPE, PAYLOAD, sig)
    assert not dsse.verify(public, PAYLOAD_TYPE, PAYLOAD + b"!", sig)
    assert not dsse.verify(public, "application/other", PAYLOAD, sig)
    assert not dsse.verify(dsse.public_key(dsse.generate_signing_key()), PAYLOAD_TYPE, PAYLOAD, sig)


@pytest.mark.parametrize(("public_length", "sig_length"), [(31, 64), (33, 64), (32, 63), (32, 0)])
def test_verify_says_false_for_keys_and_signatures_of_the_wrong_length(public_length: int, sig_length: int) -> None:
    assert not dsse.verify(bytes(public_length), PAYLOAD_TYPE, PAYLOAD, bytes(sig_length))


def test_a_signed_envelope_parses_back_and_verifies() -> None:
    key = dsse.generate_signing_key()
    envelope = dsse.parse_envelope(dsse.sign_envelope(key, PAYLOAD_TYPE, PAYLOAD))
    assert envelope.payload_type == PAYLOAD_TYPE
    assert envelope.payload == PAYLOAD
    (signature,) = envelope.signatures
    assert signature.keyid == dsse.key_id(dsse.public_key(key))
    assert dsse.verify(dsse.public_key(key), envelope.payload_type, envelope.payload, signature.sig)


def test_encode_then_parse_round_trips_every_field() -> None:
    envelope = dsse.Envelope(
        payload_type="application/vnd.example+json",
        payload=b"",
        signatures=(dsse.Signature("k1", bytes(64)), dsse.Signature("k2", b"\xff" * 64)),
    )
    assert dsse.parse_envelope(dsse.encode_envelope(envelope)) == envelope


def test_encoded_envelopes_are_compact_json_with_the_dsse_keys() -> None:
    encoded = dsse.encode_envelope(dsse.Envelope("t", b"hi", (dsse.Signature("k", bytes(64)),)))
    assert encoded == (b'{"payload":"aGk=","payloadType":"t","signatures":[{"keyid":"k","sig":"' + SIG_B64.encode() + b'"}]}')


def _envelope(**fields: Any) -> bytes:
    document: dict[str, Any] = {
        "payload": base64.b64encode(PAYLOAD).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": "k", "sig": SIG_B64}],
    }
    for name, value in fields.items():
        if value is _MISSING:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document).encode()


def _signature(**fields: Any) -> list[Any]:
    entry: dict[str, Any] = {"keyid": "k", "sig": SIG_B64}
    for name, value in fields.items():
        if value is _MISSING:
            del entry[name]
        else:
            entry[name] = value
    return [entry]


_MISSING = object()

REJECTIONS: list[tuple[str, bytes, str]] = [
    ("too-large", b" " * (dsse.MAX_ENVELOPE_BYTES + 1), "envelope is 65537 bytes; at most 65536"),
    ("not-utf8", b'{"payload": "\xff"}', "envelope is not UTF-8"),
    ("not-json", b'{"payload": ', "envelope is not JSON"),
    ("array", b"[]", "envelope must be a JSON object, not an array"),
    ("duplicate-key", b'{"payload": "", "payload": ""}', "envelope repeats the key 'payload'"),
    ("nan", b'{"payload": NaN}', "envelope contains NaN"),
    ("nested-arrays", b"[" * 1000 + b"]" * 1000, "envelope nests arrays or objects too deeply"),
    ("nested-objects", b'{"a":' * 10_000 + b"0" + b"}" * 10_000, "envelope nests arrays or objects too deeply"),
    ("long-integer", b"7" * 5000, "envelope must be a JSON object, not a number"),
    ("long-integer-type", _envelope(payloadType=0).replace(b": 0", b": " + b"7" * 5000), "payloadType must be a JSON string, not a number"),
    ("long-unknown-field", _envelope(**{"x" * 60_000: 1}), r"unknown field 'xxxx*'\.\.\. \(60,000 characters\); the fields"),
    ("unknown-field", _envelope(extra=1), "envelope has unknown field 'extra'"),
    ("payload-missing", _envelope(payload=_MISSING), "payload is missing"),
    ("payload-number", _envelope(payload=1), "payload must be a JSON string, not a number"),
    ("payload-url-safe", _envelope(payload="-_-_"), "payload is not standard base64"),
    ("payload-unpadded", _envelope(payload="aGk"), "payload is not standard base64"),
    ("payload-newline", _envelope(payload="aGk=\n"), "payload is not standard base64"),
    ("payload-non-ascii", _envelope(payload="é"), "payload is not standard base64"),
    ("payload-non-canonical", _envelope(payload="aGl="), "payload is not canonical base64"),
    ("type-missing", _envelope(payloadType=_MISSING), "payloadType is missing"),
    ("type-null", _envelope(payloadType=None), "payloadType must be a JSON string, not null"),
    ("type-empty", _envelope(payloadType=""), "payloadType is empty"),
    ("signatures-missing", _envelope(signatures=_MISSING), "envelope has no signatures field"),
    ("signatures-object", _envelope(signatures={}), "signatures must be a JSON array, not an object"),
    ("signatures-empty", _envelope(signatures=[]), "signatures is empty"),
    ("signature-string", _envelope(signatures=["sig"]), r"signatures\[0\] must be a JSON object, not a string"),
    ("signature-unknown", _envelope(signatures=_signature(cert="x")), r"signatures\[0\] has unknown field 'cert'"),
    ("keyid-missing", _envelope(signatures=_signature(keyid=_MISSING)), r"signatures\[0\]\.keyid is missing"),
    ("keyid-bool", _envelope(signatures=_signature(keyid=True)), r"signatures\[0\]\.keyid must be a JSON string, not a boolean"),
    ("keyid-empty", _envelope(signatures=_signature(keyid="")), r"signatures\[0\]\.keyid is empty"),
    ("keyid-lone-surrogate", _envelope(signatures=_signature(keyid="\udc00")), r"signatures\[0\]\.keyid holds a lone surrogate"),
    ("type-lone-surrogate", _envelope(payloadType="a\ud800"), r"payloadType holds a lone surrogate"),
    ("sig-missing", _envelope(signatures=_signature(sig=_MISSING)), r"signatures\[0\]\.sig is missing"),
    ("sig-list", _envelope(signatures=_signature(sig=[])), r"signatures\[0\]\.sig must be a JSON string, not an array"),
    ("sig-not-base64", _envelope(signatures=_signature(sig="!!")), r"signatures\[0\]\.sig is not standard base64"),
    ("sig-short", _envelope(signatures=_signature(sig="AAAA")), r"signatures\[0\]\.sig is 3 bytes; an Ed25519 signature is 64"),
    (
        "second-signature",
        _envelope(signatures=_signature() + [{"keyid": "k", "sig": ""}]),
        r"signatures\[1\]\.sig is 0 bytes",
    ),
]


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in REJECTIONS], ids=[i for i, _, _ in REJECTIONS])
def test_parse_envelope_refuses_each_malformed_field_with_its_own_message(data: bytes, message: str) -> None:
    with pytest.raises(dsse.EnvelopeError, match=message):
        dsse.parse_envelope(data)


def test_parse_envelope_accepts_an_envelope_of_exactly_the_size_limit() -> None:
    data = _envelope()
    padded = data[:-1] + b" " * (dsse.MAX_ENVELOPE_BYTES - len(data)) + data[-1:]
    assert len(padded) == dsse.MAX_ENVELOPE_BYTES
    assert dsse.parse_envelope(padded).payload == PAYLOAD


def test_envelope_errors_are_value_errors() -> None:
    assert issubclass(dsse.EnvelopeError, ValueError)
