"""A small log for tests, built with the SDK's own primitives: leaves, stored nodes, signed checkpoints,
consistency proofs. The tests of the monitor and the witness play the registry with it, honest or not."""

from __future__ import annotations

from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.merkle import Appender, build_proof, consistency_ranges, leaf_hash
from jpr_client.transparency.note import Signer, Verifier, generate_signer_key, sign_note

ORIGIN = "registry.test/log"


class SignedLog:
    """An append-only tree whose checkpoints `signer` signs; `fork()` copies it to rewrite its history."""

    def __init__(self, signer: Signer, origin: str = ORIGIN) -> None:
        self.signer = signer
        self.origin = origin
        self.leaves: list[bytes] = []
        self._appender = Appender()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self._roots: list[bytes] = [self._appender.root()]

    @classmethod
    def generate(cls, origin: str = ORIGIN) -> SignedLog:
        secret, _ = generate_signer_key(origin)
        return cls(Signer.from_key_string(secret), origin)

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier()

    @property
    def size(self) -> int:
        return len(self.leaves)

    def append(self, *data: bytes) -> SignedLog:
        for item in data:
            self.leaves.append(item)
            self.nodes.update({(level, index): h for level, index, h in self._appender.append(leaf_hash(item))})
            self._roots.append(self._appender.root())
        return self

    def grow(self, count: int, tag: str = "event") -> SignedLog:
        return self.append(*(f"{tag} {self.size + i}".encode() for i in range(count)))

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        size = self.size if size is None else size
        return Checkpoint(self.origin, size, self._roots[size], ())

    def note(self, size: int | None = None, signer: Signer | None = None) -> str:
        return sign_note(self.checkpoint(size).body(), [signer or self.signer])

    def consistency(self, first: int, second: int) -> list[bytes]:
        return build_proof(consistency_ranges(first, second), lambda level, index: self.nodes[level, index])

    def fork(self, at: int, tag: str = "rewritten") -> SignedLog:
        """The same log up to `at` leaves, then other leaves: what a registry rewriting history serves."""
        other = SignedLog(self.signer, self.origin).append(*self.leaves[:at])
        return other.grow(self.size - at, tag)
