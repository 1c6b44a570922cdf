"""C2SP checkpoints (c2sp.org/tlog-checkpoint): a log's signed tree head, as the text of a signed note.

Parsing is strict, because a checkpoint's text is what the log, its witnesses
and every monitor sign and compare byte for byte: two texts that meant the same
tree head would let a log present one to some and the other to others.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from jpr_client.quoting import quoted
from jpr_client.transparency.merkle import HASH_SIZE
from jpr_client.transparency.note import MAX_NOTE_BYTES, NoteError

__all__ = ["Checkpoint", "CheckpointError"]

_MAX_SIZE = 2**63 - 1  # Go's tlog and torchwood hold the tree size in an int64


class CheckpointError(NoteError):
    """A checkpoint's text or fields do not follow c2sp.org/tlog-checkpoint."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin line, the tree size and the RFC 9162 root hash, then optional extension lines.

    >>> c = Checkpoint("log.example/jpr", 2, bytes(32))
    >>> Checkpoint.parse(c.body()) == c
    True
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError(f"a checkpoint's origin is one non-empty line, not {quoted(self.origin)}")
        if not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointError(f"a checkpoint's tree size is between 0 and 2^63 - 1, not {self.size}")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"a checkpoint's root hash is {HASH_SIZE} bytes (SHA-256), not {len(self.root_hash)}")
        for line in self.extensions:
            if not line or "\n" in line:
                raise CheckpointError(f"a checkpoint's extension lines are single non-empty lines, not {quoted(line)}")

    def body(self) -> str:
        """The note text: origin, decimal size, base64 root hash, extension lines, each ending in a newline."""
        lines = (self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint whose note text is `text`; CheckpointError unless `Checkpoint.body()` would write it exactly.

        `text` is the note text (as `open_note` returns it), not the signed note.
        """
        if len(text.encode(errors="replace")) > MAX_NOTE_BYTES or not text.endswith("\n"):
            raise CheckpointError("a checkpoint is lines that each end with a newline, within the note size limit")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(f"a checkpoint has an origin, a size and a root hash line; this text has {len(lines)} lines")
        origin, size, root, *extensions = lines
        if not size.isascii() or not size.isdigit() or str(int(size)) != size:
            raise CheckpointError(f"a checkpoint's tree size is a decimal number without leading zeros, not {quoted(size)}")
        try:
            root_hash = base64.b64decode(root, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError(f"a checkpoint's root hash is standard base64, not {quoted(root)}") from None
        if base64.b64encode(root_hash).decode() != root:
            raise CheckpointError(f"the root hash {quoted(root)} is not in the one canonical base64 form")
        return cls(origin, int(size), root_hash, tuple(extensions))
