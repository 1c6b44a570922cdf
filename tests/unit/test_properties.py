"""Property tests: whatever the input, normalizers and envelope decoding end in a value or a documented error."""

from __future__ import annotations

import ast
import base64
import json
import operator
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpr_client import IdentifierType, InvalidIdentifier, normalize
from jpr_client.crypto import dsse
from jpr_client.quoting import QUOTED_CHARACTERS, quoted
from registry.domain.errors import InvalidArgument
from registry.domain.payload import parse_payload, parse_retraction, validate_payload
from registry.store.changes import parse_cursor

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_MESSAGE = 500

# Text that looks like identifiers as often as like noise: digits, letters, separators, full-width forms.
identifier_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789Xx -+()．＋０１２３４５６７８９", max_size=40),
    st.from_regex(r"\+?[0-9 ()-]{5,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9.-]{1,20}\.[A-Za-z]{2,6}", fullmatch=True),
    st.from_regex(r"[a-z0-9-]{2,12}:[A-Za-z0-9_.-]{1,20}", fullmatch=True),
)

# E-mail domains from the characters where IDNA 2003, IDNA 2008 and UTS #46 part ways.
domain_text = st.text(alphabet="abxn-_.。．｡ßSςσΣü\u200c\u200d\u094d\u05d00", min_size=1, max_size=20)
HOST_NAME_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


@FAST
@given(kind=st.sampled_from(list(IdentifierType)), text=identifier_text)
def test_normalizers_return_a_stable_value_or_invalid_identifier(kind: IdentifierType, text: str) -> None:
    try:
        identifier = normalize(kind, text)
    except InvalidIdentifier as error:
        assert kind.value in str(error)  # the error names the type
        return
    assert identifier.type is kind and identifier.value
    assert normalize(kind, identifier.value) == identifier  # normalizing twice changes nothing


@FAST
@given(domain=domain_text)
def test_an_accepted_email_domain_is_host_name_labels_in_ascii_without_a_trailing_dot(domain: str) -> None:
    try:
        value = normalize(IdentifierType.EMAIL, "x@" + domain).value
    except InvalidIdentifier:
        return
    labels = value.removeprefix("x@").split(".")
    assert all(HOST_NAME_LABEL.fullmatch(label) and len(label) <= 63 for label in labels), value
    assert normalize(IdentifierType.EMAIL, value).value == value


# JSON text past the decoder's limits, which json.dumps cannot write from Python values:
# nesting deeper than its recursion allows, integers longer than int() takes.
decoder_limits = st.one_of(
    st.integers(1000, 15_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1000, 5_000).map(lambda depth: '{"a":' * depth + "0" + "}" * depth),
    st.integers(4301, 20_000).map(lambda digits: "7" * digits),
)


def long_text(up_to: int = 60_000) -> st.SearchStrategy[str]:
    """One character repeated, far longer than any valid value: a message quoting it must bound it."""
    return st.builds(operator.mul, st.characters(), st.integers(100, up_to))


# As JSON a character takes up to 12 bytes ("\ud83d\ude00"): 5,000 of them fit an envelope.
long_member = long_text(up_to=5_000)
_RAW = "\x00raw JSON\x00"


def envelopes() -> st.SearchStrategy[bytes]:
    field = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30), long_member, st.lists(st.integers(), max_size=3))
    signature = st.fixed_dictionaries({"keyid": st.one_of(st.text(max_size=20), field), "sig": st.one_of(st.text(max_size=90), field)})
    document = st.fixed_dictionaries(
        {
            "payloadType": st.one_of(st.sampled_from([dsse.REPORT_PAYLOAD_TYPE, dsse.RETRACTION_PAYLOAD_TYPE]), field),
            "payload": st.one_of(st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()), field),
            "signatures": st.one_of(st.lists(signature, max_size=3), field),
        }
    )
    member = st.one_of(st.sampled_from(["payloadType", "payload", "signatures"]), st.text(max_size=10), long_member)
    past_limits = st.builds(_with_raw, document, member, decoder_limits)
    encoded = document.map(lambda d: json.dumps(d).encode())
    return st.one_of(st.binary(max_size=300), encoded, past_limits, decoder_limits.map(str.encode))


def _with_raw(document: dict[str, object], member: str, raw: str) -> bytes:
    """The document's JSON with `member` holding the JSON text `raw`."""
    return json.dumps({**document, member: _RAW}).replace(json.dumps(_RAW), raw).encode()


@FAST
@given(data=envelopes())
def test_envelope_decoding_returns_an_envelope_or_envelope_error(data: bytes) -> None:
    try:
        envelope = dsse.parse_envelope(data)
    except dsse.EnvelopeError as error:
        assert len(str(error)) < MAX_MESSAGE  # it travels in a gRPC trailer
        return
    assert len(envelope.signatures) >= 1 and envelope.payload_type


# Digits of every script, ASCII among them: str.isdigit() and int() take them all, a cursor only ASCII.
digits = st.characters(categories=["Nd", "No"])


@FAST
@given(cursor=st.one_of(st.text(digits, max_size=20), st.text(max_size=20), st.integers(0, 10**18 - 1).map(str), long_text()))
def test_a_cursor_is_zero_or_ascii_digits_and_anything_else_invalid_argument(cursor: str) -> None:
    try:
        seq = parse_cursor(cursor)
    except InvalidArgument as error:
        assert len(str(error)) < MAX_MESSAGE
        assert cursor != "" and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18)
        return
    assert seq == (int(cursor) if cursor else 0) and (cursor == "" or cursor.isascii() and cursor.isdigit())


@FAST
@given(text=st.one_of(st.text(), long_text()))
def test_a_quotation_is_the_whole_text_when_short_and_a_bounded_prefix_otherwise(text: str) -> None:
    quotation = quoted(text)
    assert len(quotation) <= QUOTED_CHARACTERS + len("''... (60,000 characters)")
    if len(repr(text)) <= QUOTED_CHARACTERS + 2:
        assert quotation == repr(text)
    else:
        shown = quotation[: quotation.rindex("... (")]
        assert text.startswith(ast.literal_eval(shown)) and f"({len(text):,} characters)" in quotation


def _string_field(number: int, text: str) -> bytes:
    """Field `number` as protobuf wire format: a length-delimited string."""
    data = text.encode("utf-8", "surrogatepass")
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


# Unknown field 15 as a group, nested: protobuf decoders recurse once per level.
nested_groups = st.integers(90, 20_000).map(lambda depth: b"\x7b" * depth + b"\x7c" * depth)
# A long report id, reporter or registry name (fields 1, 2 and 3 of both payloads).
long_strings = st.builds(_string_field, st.sampled_from([1, 2, 3]), long_text(up_to=20_000))


@FAST
@given(data=st.one_of(st.binary(max_size=400), nested_groups, long_strings))
def test_payload_decoding_returns_a_message_or_invalid_argument(data: bytes) -> None:
    for parse in (parse_payload, parse_retraction):
        try:
            message = parse(data)
            if parse is parse_payload:
                validate_payload(message)  # type: ignore[arg-type]
        except InvalidArgument as error:
            assert len(str(error)) < MAX_MESSAGE
