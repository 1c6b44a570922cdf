"""Property tests: whatever the input, normalizers and envelope decoding end in a value or a documented error."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpr_client import IdentifierType, InvalidIdentifier, normalize
from registry.crypto import dsse
from registry.domain.errors import InvalidArgument
from registry.domain.payload import parse_payload, parse_retraction, validate_payload

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like identifiers as often as like noise: digits, letters, separators, full-width forms.
identifier_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789Xx -+()．＋０１２３４５６７８９", max_size=40),
    st.from_regex(r"\+?[0-9 ()-]{5,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9.-]{1,20}\.[A-Za-z]{2,6}", fullmatch=True),
    st.from_regex(r"[a-z0-9-]{2,12}:[A-Za-z0-9_.-]{1,20}", fullmatch=True),
)


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


def envelopes() -> st.SearchStrategy[bytes]:
    field = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30), st.lists(st.integers(), max_size=3))
    signature = st.fixed_dictionaries({"keyid": st.one_of(st.text(max_size=20), field), "sig": st.one_of(st.text(max_size=90), field)})
    document = st.fixed_dictionaries(
        {
            "payloadType": st.one_of(st.sampled_from([dsse.REPORT_PAYLOAD_TYPE, dsse.RETRACTION_PAYLOAD_TYPE]), field),
            "payload": st.one_of(st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()), field),
            "signatures": st.one_of(st.lists(signature, max_size=3), field),
        }
    )
    return st.one_of(st.binary(max_size=300), document.map(lambda d: json.dumps(d).encode()))


@FAST
@given(data=envelopes())
def test_envelope_decoding_returns_an_envelope_or_envelope_error(data: bytes) -> None:
    try:
        envelope = dsse.parse_envelope(data)
    except dsse.EnvelopeError:
        return
    assert len(envelope.signatures) >= 1 and envelope.payload_type


@FAST
@given(data=st.binary(max_size=400))
def test_payload_decoding_returns_a_message_or_invalid_argument(data: bytes) -> None:
    for parse in (parse_payload, parse_retraction):
        try:
            message = parse(data)
        except InvalidArgument:
            continue
        if parse is parse_payload:
            try:
                validate_payload(message)  # type: ignore[arg-type]
            except InvalidArgument:
                pass
