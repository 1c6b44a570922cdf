"""Published test vectors: the RFC 9497 OPRF ones and JPR's own, from vectors.json.

Each vector is checked both ways: recomputed from its inputs (the whole chain,
as a client and the registry would run it) and step by step from its stored
intermediate values (as a client in another language would debug it). The
same values are published in docs/protocol.md; a test keeps the two
files in sync.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.crypto import dsse, oprf

HERE = Path(__file__).parent
VECTORS: dict[str, Any] = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))
DOC = HERE.parents[2] / "docs" / "protocol.md"

RFC = VECTORS["rfc9497_oprf"]
TOKENS = VECTORS["jpr_tokens"]
SIGNATURE = VECTORS["jpr_signature"]


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def test_rfc9497_secret_key_derives_from_seed_and_key_info() -> None:
    secret, _ = oprf.derive_key_pair(_hex(RFC["seed"]), _hex(RFC["key_info"]))
    assert secret.hex() == RFC["secret_key"]


@pytest.mark.parametrize("vector", RFC["vectors"], ids=lambda v: f"input-{v['input'][:8]}")
def test_rfc9497_vector_is_reproduced_by_blind_evaluate_and_finalize(vector: dict[str, str]) -> None:
    key, input, blind = _hex(RFC["secret_key"]), _hex(vector["input"]), _hex(vector["blind"])
    assert oprf.blind(input, blind) == (blind, _hex(vector["blinded_element"]))
    assert oprf.blind_evaluate(key, _hex(vector["blinded_element"])).hex() == vector["evaluation_element"]
    assert oprf.finalize(input, blind, _hex(vector["evaluation_element"])).hex() == vector["output"]
    assert oprf.evaluate(key, input).hex() == vector["output"]


def test_jpr_token_key_derives_from_its_stated_seed_and_key_info() -> None:
    secret, public = oprf.derive_key_pair(_hex(TOKENS["seed"]), _hex(TOKENS["key_info"]))
    assert (secret.hex(), public.hex()) == (TOKENS["secret_key"], TOKENS["public_key"])


@pytest.mark.parametrize("vector", TOKENS["vectors"], ids=lambda v: v["id_type"])
def test_jpr_token_vector_is_recomputed_from_type_and_value(vector: dict[str, str]) -> None:
    key, _ = oprf.derive_key_pair(_hex(TOKENS["seed"]), _hex(TOKENS["key_info"]))
    input = oprf.token_input(vector["id_type"], vector["normalized_value"])
    _, blinded = oprf.blind(input, _hex(TOKENS["blind"]))
    evaluated = oprf.blind_evaluate(key, blinded)
    token = oprf.finalize(input, _hex(TOKENS["blind"]), evaluated)
    assert (input.hex(), blinded.hex(), evaluated.hex(), token.hex()) == (
        vector["input"],
        vector["blinded_element"],
        vector["evaluated_element"],
        vector["output"],
    )


@pytest.mark.parametrize("vector", TOKENS["vectors"], ids=lambda v: v["id_type"])
def test_jpr_token_vector_checks_step_by_step_from_stored_values(vector: dict[str, str]) -> None:
    key, input, blind = _hex(TOKENS["secret_key"]), _hex(vector["input"]), _hex(TOKENS["blind"])
    assert input.decode("utf-8") == f"jpr:v1:{vector['id_type']}:{vector['normalized_value']}"
    assert oprf.blind_evaluate(key, _hex(vector["blinded_element"])).hex() == vector["evaluated_element"]
    assert oprf.finalize(input, blind, _hex(vector["evaluated_element"])).hex() == vector["output"]
    assert oprf.evaluate(key, input).hex() == vector["output"]


def test_jpr_signature_vector_is_recomputed_from_key_and_payload() -> None:
    private, payload = _hex(SIGNATURE["private_key"]), _hex(SIGNATURE["payload"])
    public = dsse.public_key(private)
    assert public.hex() == SIGNATURE["public_key"]
    assert dsse.key_id(public) == SIGNATURE["key_id"]
    assert dsse.pae(SIGNATURE["payload_type"], payload).hex() == SIGNATURE["pae"]
    assert dsse.sign(private, SIGNATURE["payload_type"], payload).hex() == SIGNATURE["signature"]
    assert dsse.sign_envelope(private, SIGNATURE["payload_type"], payload).decode() == SIGNATURE["envelope"]


def test_jpr_signature_vector_verifies_from_the_stored_envelope() -> None:
    envelope = dsse.parse_envelope(SIGNATURE["envelope"].encode())
    (signature,) = envelope.signatures
    assert (envelope.payload_type, envelope.payload.hex()) == (SIGNATURE["payload_type"], SIGNATURE["payload"])
    assert (signature.keyid, signature.sig.hex()) == (SIGNATURE["key_id"], SIGNATURE["signature"])
    assert dsse.verify(_hex(SIGNATURE["public_key"]), envelope.payload_type, envelope.payload, signature.sig)
    assert dsse.encode_envelope(envelope).decode() == SIGNATURE["envelope"]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_every_vector_value_is_published_in_protocol_vectors_md() -> None:
    published = DOC.read_text(encoding="utf-8")
    missing = [value for value in _strings(VECTORS) if value not in published]
    assert not missing, f"values in vectors.json but not in {DOC.name}: {missing}"
