"""Published test vectors: the RFC 9497 OPRF ones and JPR's own, from docs/vectors/.

Each vector is checked both ways: recomputed from its inputs (the whole chain,
as a client and the registry would run it) and step by step from its stored
intermediate values (as a client in another language would debug it). The
same values are published in docs/protocol.md section 9; a test keeps the
two in sync.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jpr_client.crypto import dsse, oprf

KIT = Path(__file__).parents[3] / "docs" / "vectors"
VECTORS: dict[str, Any] = json.loads((KIT / "tokens.json").read_text(encoding="utf-8"))
ENVELOPES: dict[str, Any] = json.loads((KIT / "envelopes.json").read_text(encoding="utf-8"))
DOC = KIT.parent / "protocol.md"

RFC = VECTORS["rfc9497"]
TOKENS = VECTORS["jpr"]
(SIGNATURE,) = [{**ENVELOPES["key"], **v} for v in ENVELOPES["signed"] if v["name"] == "minimal"]


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def _hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def test_rfc9497_voprf_key_pair_derives_from_seed_and_key_info() -> None:
    secret, public = oprf.derive_key_pair(_hex(RFC["seed"]), _hex(RFC["key_info"]))
    assert (secret.hex(), public.hex()) == (RFC["secret_key"], RFC["public_key"])


@pytest.mark.parametrize("vector", RFC["vectors"], ids=lambda v: f"batch-{len(v['inputs'])}-input-{v['inputs'][-1][:8]}")
def test_rfc9497_voprf_vector_is_reproduced_by_blind_evaluate_prove_verify_and_finalize(vector: dict[str, Any]) -> None:
    key, public = _hex(RFC["secret_key"]), _hex(RFC["public_key"])
    inputs, blinds = _hexes(vector["inputs"]), _hexes(vector["blinds"])
    blinded = [oprf.blind(data, blind)[1] for data, blind in zip(inputs, blinds, strict=True)]
    assert [element.hex() for element in blinded] == vector["blinded"]
    evaluated = [oprf.blind_evaluate(key, element) for element in blinded]
    assert [element.hex() for element in evaluated] == vector["evaluated"]
    proof = oprf.generate_proof(key, public, blinded, evaluated, random_scalar=_hex(vector["proof_random_scalar"]))
    assert proof.hex() == vector["proof"]
    assert oprf.verify_proof(public, blinded, evaluated, _hex(vector["proof"]))
    outputs = [oprf.finalize(*step) for step in zip(inputs, blinds, evaluated, strict=True)]
    assert [output.hex() for output in outputs] == vector["outputs"]
    assert [oprf.evaluate(key, data).hex() for data in inputs] == vector["outputs"]


def test_rfc9497_vectors_include_a_batch_of_two_under_one_proof() -> None:
    assert sorted(len(v["inputs"]) for v in RFC["vectors"]) == [1, 1, 2]


def test_jpr_token_key_derives_from_its_stated_seed_and_key_info() -> None:
    secret, public = oprf.derive_key_pair(_hex(TOKENS["seed"]), _hex(TOKENS["key_info"]))
    assert (secret.hex(), public.hex()) == (TOKENS["secret_key"], TOKENS["public_key"])


@pytest.mark.parametrize("vector", TOKENS["vectors"], ids=lambda v: v["type"])
def test_jpr_token_vector_is_recomputed_from_type_and_value(vector: dict[str, str]) -> None:
    key, public = oprf.derive_key_pair(_hex(TOKENS["seed"]), _hex(TOKENS["key_info"]))
    input = oprf.token_input(vector["type"], vector["value"])
    _, blinded = oprf.blind(input, _hex(vector["blind"]))
    evaluated = oprf.blind_evaluate(key, blinded)
    proof = oprf.generate_proof(key, public, [blinded], [evaluated], random_scalar=_hex(TOKENS["proof_random_scalar"]))
    token = oprf.finalize(input, _hex(vector["blind"]), evaluated)
    assert (input.hex(), blinded.hex(), evaluated.hex(), proof.hex(), token.hex()) == (
        vector["input"],
        vector["blinded"],
        vector["evaluated"],
        vector["proof"],
        vector["token"],
    )


@pytest.mark.parametrize("vector", TOKENS["vectors"], ids=lambda v: v["type"])
def test_jpr_token_vector_checks_step_by_step_from_stored_values(vector: dict[str, str]) -> None:
    key, public, input, blind = _hex(TOKENS["secret_key"]), _hex(TOKENS["public_key"]), _hex(vector["input"]), _hex(vector["blind"])
    blinded, evaluated = _hex(vector["blinded"]), _hex(vector["evaluated"])
    assert input.decode("utf-8") == f"jpr:v1:{vector['type']}:{vector['value']}"
    assert oprf.blind_evaluate(key, blinded) == evaluated
    assert oprf.verify_proof(public, [blinded], [evaluated], _hex(vector["proof"]))
    assert oprf.finalize(input, blind, evaluated).hex() == vector["token"]
    assert oprf.evaluate(key, input).hex() == vector["token"]


def test_jpr_batch_proof_covers_every_token_vector_in_one_call() -> None:
    key, public = _hex(TOKENS["secret_key"]), _hex(TOKENS["public_key"])
    blinded = [_hex(v["blinded"]) for v in TOKENS["vectors"]]
    evaluated = [_hex(v["evaluated"]) for v in TOKENS["vectors"]]
    proof = oprf.generate_proof(key, public, blinded, evaluated, random_scalar=_hex(TOKENS["proof_random_scalar"]))
    assert proof.hex() == TOKENS["batch_proof"]
    assert oprf.verify_proof(public, blinded, evaluated, proof)
    assert not oprf.verify_proof(public, blinded[::-1], evaluated[::-1], proof)  # the proof binds the order


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


def test_every_token_and_signature_vector_value_is_published_in_protocol_md() -> None:
    published = DOC.read_text(encoding="utf-8")
    signature = {name: SIGNATURE[name] for name in ("private_key", "public_key", "key_id", "payload_type", "payload", "pae", "signature", "envelope")}
    values = [*_strings(VECTORS["rfc9497"]["vectors"]), *_strings(TOKENS), *_strings(signature)]
    missing = [value for value in values if value not in published]
    assert not missing, f"values in docs/vectors but not in {DOC.name}: {missing}"
