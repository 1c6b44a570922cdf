"""The SDK's side of the TransparencyLog service: checkpoints through the monitor, proofs against them, cosigning.

`RegistryClient` delegates its log calls here. Every proof is checked against a checkpoint the
monitor verified (signed by the pinned log key, consistent with every one seen before), never against
whatever the registry says the root is.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from jpr_client.api.jpr.v1 import log_pb2, log_pb2_grpc
from jpr_client.credentials import Credentials
from jpr_client.errors import LogProofError, RPCError
from jpr_client.protocol import timestamp_to_datetime
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.cosignature import Cosigner
from jpr_client.transparency.entry import LogEvent
from jpr_client.transparency.config import MonitorConfig
from jpr_client.transparency.monitor import LogMonitor, SignedCheckpoint, open_checkpoint
from jpr_client.transparency.note import Verifier, add_signature_lines
from jpr_client.transparency.proofs import LogEntry, LogProof, prove_entry
from jpr_client.transparency.witness import WitnessState, cosign_checkpoint

# method name, stub method, request -> response, with the client's deadline; errors as RPCError
Call = Callable[[str, Callable[..., Any], Any], Any]
_POLL = 0.5  # seconds between checkpoints asked for while waiting; the registry signs one every ~2 s


class LogReader:
    """Checkpoints, consistency proofs and log entries of one registry, checked by one `LogMonitor`."""

    def __init__(self, channel: grpc.Channel, credentials: Credentials, config: MonitorConfig, call: Call) -> None:
        self._stub = log_pb2_grpc.TransparencyLogStub(channel)
        self._credentials = credentials
        self._config = config
        self._call = call
        self._monitor: LogMonitor | None = None

    @property
    def monitor(self) -> LogMonitor:
        """Built on first use: credentials without a log key still serve every other call."""
        if self._monitor is None:
            witnesses = [Verifier.from_key_string(key) for key in self._config.witnesses]
            state = Path(self._config.state_file) if self._config.state_file is not None else None
            self._monitor = LogMonitor(state, self._credentials.log_verifier, witnesses, self._config.min_witnesses)
        return self._monitor

    def checkpoint(self) -> SignedCheckpoint:
        """The newest checkpoint (cosigned by enough required witnesses), verified and kept by the monitor."""
        monitor = self.monitor
        request = log_pb2.GetCheckpointRequest(witnesses=[w.name for w in monitor.witnesses], min_cosignatures=monitor.min_witnesses)
        response = self._call("GetCheckpoint", self._stub.GetCheckpoint, request)
        return monitor.update(response.note, self.consistency_proof)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        request = log_pb2.GetConsistencyProofRequest(first=first, second=second)
        response = self._call("GetConsistencyProof", self._stub.GetConsistencyProof, request)
        if (response.first, response.second) != (first, second):
            raise LogProofError(f"asked for a consistency proof from size {first} to {second}, the registry sent one "
                                f"from {response.first} to {response.second}")
        return list(response.proof)

    def prove(self, what: str, **entry: Any) -> LogProof:
        """The log entry `entry` names (event_seq=, listing_id=), proven against a verified checkpoint.

        The registry proves an entry against its newest checkpoint; the monitor verifies that checkpoint
        first (or, when witnesses are required, the entry is proven against the newest one they cosigned).
        An event just recorded is in no checkpoint yet: this waits for one, at most `MonitorConfig.proof_wait`.
        """
        deadline = time.monotonic() + self._config.proof_wait
        while True:
            try:
                newest = self._call("GetLogEntry", self._stub.GetLogEntry, log_pb2.GetLogEntryRequest(**entry))
            except RPCError as error:
                if error.status is not grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() >= deadline:
                    raise
            else:
                signed = self.monitor.latest
                if signed is None or signed.checkpoint.size != newest.tree_size:
                    signed = self.checkpoint()
                size = signed.checkpoint.size
                if newest.leaf_index < size:
                    request = log_pb2.GetLogEntryRequest(tree_size=size, **entry)
                    response = newest if newest.tree_size == size else self._call("GetLogEntry", self._stub.GetLogEntry, request)
                    return prove_entry(log_entry(response), signed.checkpoint, what)
                if time.monotonic() >= deadline:
                    raise LogProofError(
                        f"{what}: leaf {newest.leaf_index} is in no checkpoint the monitor accepts yet (the newest verified has size "
                        f"{size}) after {self._config.proof_wait:g} s: the required witnesses have not cosigned one covering it; retry later"
                    )
            time.sleep(_POLL)

    def witness(self, cosigner: Cosigner, state_file: str | os.PathLike[str]) -> Checkpoint:
        """Cosign the registry's newest checkpoint once it extends the last one this witness cosigned; send it."""
        response = self._call("GetCheckpoint", self._stub.GetCheckpoint, log_pb2.GetCheckpointRequest())
        log_verifier = self._credentials.log_verifier
        line = cosign_checkpoint(response.note, self.consistency_proof, log_verifier=log_verifier, cosigner=cosigner,
                                 state=WitnessState(Path(state_file)))
        request = log_pb2.AddCosignatureRequest(note=add_signature_lines(response.note, [line]))
        self._call("AddCosignature", self._stub.AddCosignature, request)
        return open_checkpoint(response.note, log_verifier)[0]


def log_entry(message: log_pb2.LogEntry) -> LogEntry:
    """The registry's answer as the SDK's value; the event's detail parsed from its canonical JSON."""
    event = None
    if message.HasField("event"):
        e = message.event
        try:
            detail = json.loads(e.detail_json) if e.detail_json else {}
        except ValueError as error:
            raise LogProofError(f"event {e.seq}: detail_json is not JSON ({error})") from None
        if not isinstance(detail, dict):
            raise LogProofError(f"event {e.seq}: detail_json is not a JSON object")
        event = LogEvent(seq=e.seq, kind=e.kind, occurred_at=timestamp_to_datetime(e.occurred_at, "event.occurred_at"),
                         actor=e.actor, report_id=e.report_id, subject_id=e.subject_id, listing_id=e.listing_id,
                         detail=detail, salt=e.salt)
    return LogEntry(message.leaf_index, message.commitment, event, message.tree_size, tuple(message.inclusion_proof))
