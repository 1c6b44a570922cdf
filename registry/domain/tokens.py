"""Tokenization: the registry's side of the verifiable OPRF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jpr_client.crypto import oprf
from registry.domain.errors import InvalidArgument

MAX_ELEMENTS = 10_000


@dataclass(frozen=True)
class Evaluation:
    """Evaluated elements, in request order, and the one DLEQ proof (c || s) that covers them all."""

    evaluated_elements: list[bytes]
    proof: bytes


class Tokenizer:
    """Evaluates blinded elements under the registry's OPRF key, which never leaves it,
    and proves each batch against the public key members pin."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.public_key = oprf.public_key(key)

    def evaluate(self, blinded: Sequence[bytes]) -> Evaluation:
        if not blinded:
            raise InvalidArgument("blinded_elements is empty; send at least one blinded element")
        if len(blinded) > MAX_ELEMENTS:
            raise InvalidArgument(f"{len(blinded)} blinded elements in one call; at most {MAX_ELEMENTS} are allowed")
        evaluated = []
        for index, element in enumerate(blinded):
            try:
                evaluated.append(oprf.blind_evaluate(self._key, element))
            except oprf.OprfError as error:
                raise InvalidArgument(f"blinded_elements[{index}]: {error}") from error
        return Evaluation(evaluated, oprf.generate_proof(self._key, self.public_key, blinded, evaluated))
