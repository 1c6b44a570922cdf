"""`LogMonitor`: the last checkpoint a member verified, and the check that every newer one extends it.

Go's checksum database client (golang.org/x/mod/sumdb) works this way: it keeps the latest signed
tree note it verified and accepts a newer one only with a proof that the older tree is a prefix of
it. A registry that rewrote a single event, or that shows one member another history than the
others, then cannot get a member to accept both: the member sees a fork (the same size with two
roots, or no consistency proof) or a rollback (an older tree than one it already verified). With
witnesses required, the registry cannot even show a member a history nobody else has checked.

The state is the signed note itself, verbatim (as Go keeps it): the file proves its own content,
so a corrupted or foreign file is detected on load and refused instead of being replaced.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jpr_client.durable import locked, replace_file
from jpr_client.errors import LogForkError, LogRollbackError, LogSignatureError, LogStateError, WitnessQuorumError
from jpr_client.transparency.checkpoint import Checkpoint, CheckpointError
from jpr_client.transparency.config import check_quorum
from jpr_client.transparency.merkle import ProofError, verify_consistency
from jpr_client.transparency.note import NoteError, OpenedNote, Verifier, open_note

# first size, second size -> the registry's RFC 9162 consistency proof between them
ConsistencyProofs = Callable[[int, int], list[bytes]]


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose note the log key signed, the note itself, and the witnesses that cosigned it."""

    checkpoint: Checkpoint
    note: str
    witnesses: tuple[str, ...] = ()  # names of the required witnesses whose cosignature verified


def describe(checkpoint: Checkpoint) -> str:
    """A checkpoint as a person compares it with a note: its size and its root in the note's base64.

    Example:
        >>> describe(Checkpoint("jpr.example/log", 2, bytes(32), ()))  # doctest: +SKIP
        'size 2, root AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='
    """
    return f"size {checkpoint.size}, root {base64.b64encode(checkpoint.root_hash).decode()}"


def open_checkpoint(note: str, log_verifier: Verifier) -> tuple[Checkpoint, OpenedNote]:
    """The checkpoint of a note the log key signed; LogSignatureError for anything else.

    Example:
        >>> checkpoint, opened = open_checkpoint(note, credentials.log_verifier)  # doctest: +SKIP
    """
    try:
        opened = open_note(note, [log_verifier])
    except NoteError as error:
        raise LogSignatureError(
            f"the checkpoint is not signed by the registry's log key {log_verifier.name!r} pinned in the credentials ({error}): "
            "it comes from another registry, or was altered on the way"
        ) from None
    try:
        return Checkpoint.parse(opened.text), opened
    except CheckpointError as error:
        raise LogSignatureError(f"the log key signed a note that is not a checkpoint ({error})") from None


def check_extends(stored: Checkpoint, received: Checkpoint, proofs: ConsistencyProofs, where: str) -> None:
    """Raise unless `received` is `stored` or a later state of the same log.

    `where` names what holds `stored` (a state file), for the message. Equal sizes need equal roots;
    a smaller size is a rollback; a larger one needs a consistency proof from `proofs`.

    Example:
        >>> check_extends(old, new, client_consistency_proof, "jpr-log.state")  # doctest: +SKIP
    """
    seen = f"the checkpoint verified before ({describe(stored)}, kept in {where})"
    if received.origin != stored.origin:
        raise LogForkError(f"the registry's checkpoint is for log {received.origin!r}, but {seen} is for {stored.origin!r}")
    if received.size < stored.size:
        raise LogRollbackError(
            f"the registry served an older checkpoint ({describe(received)}) than {seen}: it (or one of its replicas) "
            "serves a past state of the log, e.g. restored from a backup; tell the association"
        )
    if received.size == stored.size:
        if received.root_hash != stored.root_hash:
            raise LogForkError(_fork(received, seen, "has the same size and another root"))
        return
    if stored.size == 0:
        return  # every tree extends the empty one
    try:
        verify_consistency(stored.size, received.size, proofs(stored.size, received.size), stored.root_hash, received.root_hash)
    except ProofError as error:
        raise LogForkError(_fork(received, seen, f"is not consistent with it ({error})")) from None


def _fork(received: Checkpoint, seen: str, how: str) -> str:
    return (
        f"the registry's log forked: its checkpoint ({describe(received)}) {how}: {seen}. The registry rewrote its "
        "history or shows members different ones; keep the state file and this message as evidence and tell the association "
        "and the other members"
    )


class LogMonitor:
    """Keeps the newest checkpoint the caller verified, in `state_file` (None: in memory only), and refuses any
    checkpoint that does not extend it.

    `witnesses` are verifiers of the witnesses' cosignature keys; a checkpoint needs cosignatures of at least
    `min_witnesses` of them. The first checkpoint is trusted on first use, as Go's client trusts its configured
    tree: start the file from a checkpoint compared with the association's published one when that matters.

    Example:
        >>> monitor = LogMonitor(Path("jpr-log.state"), credentials.log_verifier)  # doctest: +SKIP
        >>> monitor.update(response.note, lambda first, second: fetch_consistency_proof(first, second)).size  # doctest: +SKIP
        1042
    """

    def __init__(
        self, state_file: Path | None, log_verifier: Verifier, witnesses: Sequence[Verifier] = (), min_witnesses: int = 0
    ) -> None:
        check_quorum(min_witnesses, len(witnesses))
        if len({w.name for w in witnesses}) != len(witnesses):
            raise ValueError("witnesses: two verifier keys have the same name; name each witness once")
        self.state_file = Path(state_file) if state_file is not None else None
        self.log_verifier = log_verifier
        self.witnesses = tuple(witnesses)
        self.min_witnesses = min_witnesses
        self._latest: SignedCheckpoint | None = None
        if self.state_file is not None:
            self._latest = self._load()

    @property
    def latest(self) -> SignedCheckpoint | None:
        """The newest checkpoint verified (by this process, or by any sharing the state file when it last updated)."""
        return self._latest

    def verify(self, note: str) -> SignedCheckpoint:
        """The checkpoint of `note` if the log key signed it and enough required witnesses cosigned it (no state involved).

        Example:
            >>> monitor.verify(response.note).checkpoint.size  # doctest: +SKIP
            1042
        """
        checkpoint, _ = open_checkpoint(note, self.log_verifier)
        cosigned = tuple(w.name for w in self.witnesses if _cosigned(note, w))
        if len(cosigned) < self.min_witnesses:
            required = ", ".join(w.name for w in self.witnesses)
            raise WitnessQuorumError(
                f"the checkpoint ({describe(checkpoint)}) is cosigned by {len(cosigned)} of the witnesses required "
                f"({', '.join(cosigned) or 'none'}), fewer than {self.min_witnesses} of {required}: the witnesses have not "
                "checked it yet (retry in a while), or the registry shows this member a history they did not see"
            )
        return SignedCheckpoint(checkpoint, note, cosigned)

    def update(self, note: str, consistency_proof: ConsistencyProofs) -> SignedCheckpoint:
        """Verify `note`, check it extends the newest checkpoint verified, and keep it when newer.

        `consistency_proof(first, second)` fetches the registry's proof between two sizes; it is only called
        when the log grew. Raises LogSignatureError, WitnessQuorumError, LogForkError or LogRollbackError,
        leaving the state as it was.

        Example:
            >>> monitor.update(note, lambda a, b: list(stub.GetConsistencyProof(req(a, b)).proof))  # doctest: +SKIP
        """
        received = self.verify(note)
        if self.state_file is None:
            return self._advance(self._latest, received, consistency_proof, "memory only (no state file)")
        with locked(self.state_file):
            stored = self._load()  # another process sharing the file may have gone further
            self._latest = self._advance(stored, received, consistency_proof, str(self.state_file))
            if self._latest is not stored:
                replace_file(self.state_file, received.note)
        return self._latest

    def _advance(
        self, stored: SignedCheckpoint | None, received: SignedCheckpoint, proofs: ConsistencyProofs, where: str
    ) -> SignedCheckpoint:
        """The newest of `stored` and `received` once `received` is checked against `stored`."""
        if stored is None:
            self._latest = received
            return received
        check_extends(stored.checkpoint, received.checkpoint, proofs, where)
        if received.checkpoint.size == stored.checkpoint.size:
            return stored
        self._latest = received
        return received

    def _load(self) -> SignedCheckpoint | None:
        assert self.state_file is not None
        try:
            note = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise LogStateError(f"cannot read the log monitor's state file {self.state_file}: {error}") from None
        try:
            checkpoint, _ = open_checkpoint(note, self.log_verifier)
        except LogSignatureError as error:
            raise LogStateError(
                f"the log monitor's state file {self.state_file} does not hold a checkpoint of this registry's log "
                f"({error}); it is corrupt or another registry's. It is kept as it is: give each registry its own file, "
                "or move this one away after checking why it changed"
            ) from None
        return SignedCheckpoint(checkpoint, note)


def _cosigned(note: str, witness: Verifier) -> bool:
    """Whether `note` carries a valid cosignature of `witness` (a cosignature/v1 verifier) over its checkpoint.

    One witness at a time: a witness line that does not verify then costs that witness's vote, not the note.
    """
    try:
        open_note(note, [witness])
    except NoteError:
        return False
    return True
