"""A witness: cosigns a log's checkpoint only after checking it extends the last one it cosigned.

C2SP tlog-cosignature: a witness's cosignature says "I verified this checkpoint is consistent with every
checkpoint of this log I cosigned before". Clients requiring k of n witnesses then know the registry
showed them the history those witnesses saw. The promise only holds if a witness never cosigns two
inconsistent checkpoints, across restarts too: so the checkpoint is written to the state file, durably,
before the cosignature leaves `cosign_checkpoint`. A crash after the write and before the cosignature is
sent loses one cosignature; never the other way round.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from jpr_client.durable import locked, replace_file
from jpr_client.errors import LogSignatureError, LogStateError
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.cosignature import Cosigner
from jpr_client.transparency.monitor import ConsistencyProofs, check_extends, open_checkpoint
from jpr_client.transparency.note import Verifier

STATE_VERSION = 1


class WitnessState:
    """The last checkpoint a witness cosigned, per log origin, in a JSON file that keeps the signed notes.

    Example:
        >>> state = WitnessState(Path("witness.state.json"))  # doctest: +SKIP
        >>> state.last("jpr.example/log", credentials.log_verifier)  # doctest: +SKIP
        Checkpoint(origin='jpr.example/log', size=1042, ...)
    """

    def __init__(self, state_file: Path) -> None:
        self.state_file = Path(state_file)

    def last(self, origin: str, log_verifier: Verifier) -> Checkpoint | None:
        """The last checkpoint of `origin` cosigned, re-verified under the log key; None before the first."""
        note = self._notes().get(origin)
        if note is None:
            return None
        try:
            checkpoint, _ = open_checkpoint(note, log_verifier)
        except LogSignatureError as error:  # the file was altered, or the key is another log's
            raise LogStateError(
                f"the witness state file {self.state_file} holds a checkpoint of {origin!r} that the log key "
                f"{log_verifier.name!r} did not sign ({error}); it is corrupt or was written for another key. It is kept as it is"
            ) from None
        if checkpoint.origin != origin:
            raise LogStateError(f"the witness state file {self.state_file} files a checkpoint of {checkpoint.origin!r} under {origin!r}")
        return checkpoint

    def record(self, origin: str, note: str) -> None:
        """Keep `note` as the last cosigned checkpoint of `origin`, durably (fsync, rename, fsync)."""
        notes = self._notes()
        notes[origin] = note
        replace_file(self.state_file, json.dumps({"version": STATE_VERSION, "logs": notes}, indent=2, sort_keys=True) + "\n")

    def _notes(self) -> dict[str, str]:
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            raise LogStateError(f"cannot read the witness state file {self.state_file}: {error}") from None
        try:
            data = json.loads(text)
        except ValueError as error:
            raise LogStateError(f"the witness state file {self.state_file} is not JSON ({error}); it is kept as it is") from None
        logs = data.get("logs") if isinstance(data, dict) and data.get("version") == STATE_VERSION else None
        if not isinstance(logs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in logs.items()):
            raise LogStateError(f"the witness state file {self.state_file} is not a version {STATE_VERSION} JPR witness state file")
        return logs


def cosign_checkpoint(
    note: str,
    consistency_proof: ConsistencyProofs,
    *,
    log_verifier: Verifier,
    cosigner: Cosigner,
    state: WitnessState,
    timestamp: int | None = None,
) -> str:
    """The witness's cosignature line for `note`, once it is verified and recorded as the last one cosigned.

    Raises LogSignatureError when the log key did not sign `note`, LogForkError or LogRollbackError when it
    does not extend the last checkpoint this witness cosigned for its origin (the witness then never signs
    it, whatever the registry sends later), LogStateError when the state file is unusable.

    Example:
        >>> line = cosign_checkpoint(note, proofs, log_verifier=credentials.log_verifier,  # doctest: +SKIP
        ...                          cosigner=Cosigner.from_key_string(key), state=WitnessState(Path("witness.state.json")))
    """
    checkpoint, opened = open_checkpoint(note, log_verifier)
    with locked(state.state_file):
        last = state.last(checkpoint.origin, log_verifier)
        if last is not None:
            check_extends(last, checkpoint, consistency_proof, f"the witness state file {state.state_file}")
        if last is None or last.size < checkpoint.size:
            state.record(checkpoint.origin, note)
    return cosigner.cosign(opened.text, int(time.time()) if timestamp is None else timestamp)
