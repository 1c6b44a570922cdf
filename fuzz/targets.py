"""One check per normalizer and per decoder, each taking the fuzzer's raw bytes.

A check returns when the code under test returned a sound value or raised its
documented error, and raises on anything else: an undocumented exception escapes
as it is, a broken property raises `PropertyViolated`. Nothing here imports
atheris, so `make test` replays kept crash inputs without it; `fuzz/run.py`
drives these checks under libFuzzer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from jpr_client import IdentifierType, InvalidIdentifier, normalize
from jpr_client.crypto import dsse
from registry.domain.errors import InvalidArgument
from registry.domain.payload import created_at, parse_payload, parse_retraction, validate_payload
from registry.store.changes import parse_cursor

__all__ = [
    "TARGETS",
    "PropertyViolated",
    "check_cursor",
    "check_envelope",
    "check_normalizer",
    "check_report_payload",
    "check_retraction_payload",
]


# A refusal's message travels in the grpc-message trailer: one quoting request text whole could
# exceed the metadata size limit and turn the documented status into a transport failure.
MAX_MESSAGE = 500


class PropertyViolated(AssertionError):
    """The code under test returned, but its result breaks a documented property."""


def check_normalizer(kind: IdentifierType, data: bytes) -> None:
    """A normalized identifier that normalizes to itself again, or InvalidIdentifier naming `kind`."""
    # Total and lossless: bytes that are not UTF-8 become lone surrogates, which a caller can pass too.
    text = data.decode("utf-8", "surrogateescape")
    try:
        identifier = normalize(kind, text)
    except InvalidIdentifier as error:
        _require(error.id_type is kind and kind.value in str(error), f"InvalidIdentifier does not name {kind.value}")
        return
    _require(identifier.type is kind and bool(identifier.value), "normalize returned an empty or mistyped identifier")
    _require(normalize(kind, identifier.value) == identifier, "normalizing the normalized value changed it")


def check_envelope(data: bytes) -> None:
    """An envelope with a payload type and well-formed signatures, or EnvelopeError."""
    try:
        envelope = dsse.parse_envelope(data)
    except dsse.EnvelopeError as error:
        _require_short(error)
        return
    _require(bool(envelope.payload_type), "parse_envelope accepted an empty payloadType")
    _require(bool(envelope.signatures), "parse_envelope accepted an envelope without signatures")
    for signature in envelope.signatures:
        _require(bool(signature.keyid), "parse_envelope accepted an empty keyid")
        _require(len(signature.sig) == dsse.SIGNATURE_SIZE, "parse_envelope accepted a signature of the wrong size")
    # What was accepted can be stored and sent on: it encodes, and encodes to the same envelope.
    _require(dsse.parse_envelope(dsse.encode_envelope(envelope)) == envelope, "an accepted envelope does not round-trip")


def check_report_payload(data: bytes) -> None:
    """A report payload decodes and validates, or InvalidArgument; as the registry calls them."""
    try:
        validate_payload(parse_payload(data))
    except InvalidArgument as error:
        _require_short(error)


def check_retraction_payload(data: bytes) -> None:
    """A retraction payload decodes with a valid created_at, or InvalidArgument."""
    try:
        created_at(parse_retraction(data))
    except InvalidArgument as error:
        _require_short(error)


def check_cursor(data: bytes) -> None:
    """A WatchChanges cursor is "" (0) or 1 to 18 ASCII digits and means their number; else InvalidArgument."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        seq = parse_cursor(text)
    except InvalidArgument as error:
        _require_short(error)
        _require(not (text.isascii() and text.isdigit() and len(text) <= 18), "parse_cursor refused a cursor it gave")
        return
    _require(text == "" or text.isascii() and text.isdigit(), "parse_cursor accepted more than ASCII digits")
    _require(seq == (int(text) if text else 0), "parse_cursor read another number than the digits spell")


def _require_short(error: Exception) -> None:
    _require(len(str(error)) < MAX_MESSAGE, f"a refusal of {len(str(error))} characters; quote request text with `quoted`")


def _require(condition: bool, message: str) -> None:
    # Not `assert`: a check must not vanish under `python -O`.
    if not condition:
        raise PropertyViolated(message)


TARGETS: dict[str, Callable[[bytes], None]] = {
    **{f"normalize_{kind.value}": partial(check_normalizer, kind) for kind in IdentifierType},
    "envelope": check_envelope,
    "cursor": check_cursor,
    "report_payload": check_report_payload,
    "retraction_payload": check_retraction_payload,
}
