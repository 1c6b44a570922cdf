"""The transparency log as members, witnesses and admins see it: checkpoints, entries, proofs, cosignatures.

Who may read an event: an admin every one; a member the events it caused (actor
"member:NAME"), the report.* events of its own reports, and every listing.* event (the
changes feed shows those to every member). Anyone else gets the leaf, its commitment
and its proof, which reveal nothing of the event without its salt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from jpr_client.quoting import quoted
from jpr_client.transparency.checkpoint import Checkpoint, CheckpointError
from jpr_client.transparency.cosignature import verify_cosignature
from jpr_client.transparency.note import ALG_COSIGNATURE_V1, NoteError, Signer, Verifier, add_signature_lines, open_note, sign_note
from registry.crypto import pki
from registry.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from registry.domain.model import Caller
from registry.store.log import LogStore, StoredCheckpoint, StoredEntry, TreeHead
from registry.store.refs import parse_ref
from registry.store.witnesses import Witness, WitnessStore

_LINE_PREFIX = "\u2014 "


@dataclass(frozen=True)
class SignedCheckpoint:
    note: str  # the registry's signed note with the stored cosignatures appended
    size: int
    root_hash: bytes


@dataclass(frozen=True)
class ProvedEntry:
    leaf_index: int
    commitment: bytes
    entry: StoredEntry | None  # the event, when the caller may read it
    tree_size: int
    inclusion_proof: list[bytes]


@dataclass(frozen=True)
class EntrySelector:
    """Exactly one of these (GetLogEntryRequest's oneof)."""

    event_seq: int | None = None
    leaf_index: int | None = None
    listing_id: str | None = None


def may_read(caller: Caller, entry: StoredEntry) -> bool:
    if caller.role == pki.ROLE_ADMIN:
        return True
    kind = entry.event.kind
    return (
        entry.event.actor == f"member:{caller.name}"
        or kind.startswith("listing.")
        or (kind.startswith("report.") and entry.reporter == caller.name)
    )


class TransparencyService:
    def __init__(self, log: LogStore, witnesses: WitnessStore, signer: Signer, *, clock: Callable[[], datetime]) -> None:
        self._log = log
        self._witnesses = witnesses
        self._signer = signer
        self._verifier = signer.verifier()
        self._clock = clock

    @property
    def public_key(self) -> str:
        """The log key's verifier key string, as members pin it."""
        return self._verifier.key_string()

    @property
    def origin(self) -> str:
        """The checkpoints' origin line: the log key's name."""
        return self._signer.name

    def advance(self) -> StoredCheckpoint | None:
        """Integrate the leaves committed so far, then (only then) sign a checkpoint of the new size."""
        self._log.integrate()
        return self._log.sign_pending(self._sign, self._clock())

    def _sign(self, head: TreeHead) -> str:
        return sign_note(Checkpoint(self.origin, head.size, head.root_hash).body(), [self._signer])

    def checkpoint(self, witnesses: Sequence[str] = (), min_cosignatures: int = 0, tree_size: int = 0) -> SignedCheckpoint:
        if min_cosignatures > len(set(witnesses)):
            raise InvalidArgument(f"min_cosignatures is {min_cosignatures} but only {len(set(witnesses))} distinct witnesses are named; "
                                  "name at least as many witnesses as the cosignatures required")
        if min_cosignatures and not tree_size:
            size = self._witnesses.newest_cosigned(sorted(set(witnesses)), min_cosignatures)
            if size is None:
                raise NotFound(f"no checkpoint is cosigned by {min_cosignatures} of the witnesses {quoted(', '.join(witnesses))} yet")
            tree_size = size
        stored = self._log.checkpoint(tree_size)
        lines = [line for name, line in self._witnesses.cosignatures(stored.size) if not witnesses or name in witnesses]
        if min_cosignatures and len(lines) < min_cosignatures:
            raise NotFound(f"the checkpoint of tree size {stored.size} has {len(lines)} of the {min_cosignatures} cosignatures required "
                           f"from {quoted(', '.join(witnesses))}")
        return SignedCheckpoint(add_signature_lines(stored.note, lines) if lines else stored.note, stored.size, stored.root_hash)

    def entry(self, caller: Caller, which: EntrySelector, tree_size: int = 0) -> ProvedEntry:
        try:
            size = self._proof_size(tree_size, "tree_size")
        except NotFound:  # no checkpoint signed yet (a new registry): every entry is newer than the newest (protocol 11: retry)
            if tree_size:
                raise
            size = 0
        if which.event_seq is not None:
            stored = self._log.entry_by_seq(which.event_seq)
        elif which.leaf_index is not None:
            if which.leaf_index >= size:
                raise self._not_covered(f"leaf {which.leaf_index}", which.leaf_index, size, bool(tree_size))
            stored = self._log.entry_by_leaf(which.leaf_index)
        elif which.listing_id is not None:
            stored = self._log.entry_by_listing(parse_ref("L", which.listing_id), which.listing_id)
        else:
            raise InvalidArgument("GetLogEntry needs one of event_seq, leaf_index or listing_id")
        if stored.leaf_index >= size:
            raise self._not_covered(f"event seq {stored.event.seq} (leaf {stored.leaf_index})", stored.leaf_index, size, bool(tree_size))
        return ProvedEntry(
            stored.leaf_index, stored.commitment, stored if may_read(caller, stored) else None, size,
            self._log.inclusion_proof(stored.leaf_index, size),
        )

    def consistency(self, first: int, second: int) -> tuple[int, int, list[bytes]]:
        second = self._proof_size(second, "second")
        if first > second:
            raise InvalidArgument(f"a consistency proof goes from an older tree to a newer one: first ({first}) is larger than second ({second})")
        return first, second, self._log.consistency_proof(first, second)

    def _proof_size(self, asked: int, field: str) -> int:
        """The tree size a proof is for: `asked`, or the newest checkpoint's; never beyond it."""
        newest = self._log.checkpoint().size
        if asked > newest:
            raise InvalidArgument(f"{field} {asked} is beyond the newest checkpoint (tree size {newest}); "
                                  "GetCheckpoint gives the newest size a proof can be asked for")
        return asked or newest

    @staticmethod
    def _not_covered(what: str, index: int, size: int, asked: bool) -> Exception:
        if asked:
            return InvalidArgument(f"{what} is not in the tree of size {size}; ask for a tree_size above {index}, or 0 for the newest")
        return FailedPrecondition(f"{what} is not covered by the newest checkpoint (tree size {size}) yet; "
                                  "the registry signs one every few seconds: retry shortly")

    def add_cosignature(self, note: str) -> SignedCheckpoint:
        """Store the cosignature/v1 lines of current witnesses on a checkpoint the registry signed."""
        try:
            opened = open_note(note, [self._verifier])
            checkpoint = Checkpoint.parse(opened.text)
        except (NoteError, CheckpointError) as error:
            raise InvalidArgument(f"the note is not a checkpoint this registry signed: {error}") from None
        stored = self._log.checkpoint(checkpoint.size)
        if stored.root_hash != checkpoint.root_hash or checkpoint.origin != self.origin:
            raise InvalidArgument(f"the note's checkpoint of tree size {checkpoint.size} is not the one this registry signed")
        added = 0
        for line in opened.signature_lines:
            witness = self._witnesses.current(line.removeprefix(_LINE_PREFIX).split(" ", 1)[0])
            if witness is None:
                continue  # the registry's own line, or a key that is no witness here
            try:
                verify_cosignature(Verifier.from_key_string(witness.verifier_key), opened.text, line)
            except NoteError as error:
                raise InvalidArgument(f"the cosignature of witness {quoted(witness.name)} does not verify: {error}") from None
            self._witnesses.add_cosignature(checkpoint.size, witness.name, line, self._clock())
            added += 1
        if not added:
            raise InvalidArgument("the note carries no cosignature of a current witness; AddWitness registers a witness's "
                                  "cosignature/v1 verifier key, and ListWitnesses shows the current ones")
        return self.checkpoint(tree_size=checkpoint.size)

    def add_witness(self, verifier_key: str, reason: str, actor: str) -> Witness:
        try:
            verifier = Verifier.from_key_string(verifier_key)
        except (NoteError, ValueError) as error:
            raise InvalidArgument(f"verifier_key is not a signed-note verifier key: {error}") from None
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise InvalidArgument(f"witness keys are cosignature/v1 keys (algorithm 0x04, tlog-cosignature); this one is 0x{verifier.alg:02x}")
        if verifier.name == self.origin:
            raise InvalidArgument(f"{quoted(verifier.name)} is the log's own key name; a witness needs a name of its own")
        return self._witnesses.add(verifier.name, verifier_key, reason=reason, actor=actor, now=self._clock())

    def remove_witness(self, name: str, reason: str, actor: str) -> Witness:
        return self._witnesses.remove(name, reason=reason, actor=actor, now=self._clock())

    def witnesses(self) -> list[Witness]:
        return self._witnesses.every()

