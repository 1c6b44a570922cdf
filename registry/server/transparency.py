"""`jpr.v1.TransparencyLog`: proto in, TransparencyService call, proto out (members and admins)."""

from __future__ import annotations

import grpc

from jpr_client.api.jpr.v1 import admin_pb2, log_pb2, log_pb2_grpc
from jpr_client.protocol import datetime_to_timestamp
from jpr_client.transparency.entry import LogEvent, canonical_json
from registry.domain.transparency import EntrySelector, SignedCheckpoint, TransparencyService
from registry.server.auth import current_caller
from registry.store.witnesses import Witness


class TransparencyLogServicer(log_pb2_grpc.TransparencyLogServicer):
    def __init__(self, transparency: TransparencyService) -> None:
        self._transparency = transparency

    def GetCheckpoint(self, request: log_pb2.GetCheckpointRequest, context: grpc.ServicerContext) -> log_pb2.Checkpoint:
        return checkpoint(self._transparency.checkpoint(list(request.witnesses), request.min_cosignatures, request.tree_size))

    def GetLogEntry(self, request: log_pb2.GetLogEntryRequest, context: grpc.ServicerContext) -> log_pb2.LogEntry:
        which = request.WhichOneof("entry")
        selector = EntrySelector(**{which: getattr(request, which)}) if which else EntrySelector()
        proved = self._transparency.entry(current_caller(), selector, request.tree_size)
        return log_pb2.LogEntry(
            leaf_index=proved.leaf_index, commitment=proved.commitment, tree_size=proved.tree_size,
            inclusion_proof=proved.inclusion_proof, event=None if proved.entry is None else log_event(proved.entry.event),
        )

    def GetConsistencyProof(self, request: log_pb2.GetConsistencyProofRequest, context: grpc.ServicerContext) -> log_pb2.ConsistencyProof:
        first, second, proof = self._transparency.consistency(request.first, request.second)
        return log_pb2.ConsistencyProof(first=first, second=second, proof=proof)

    def AddCosignature(self, request: log_pb2.AddCosignatureRequest, context: grpc.ServicerContext) -> log_pb2.Checkpoint:
        return checkpoint(self._transparency.add_cosignature(request.note))


def checkpoint(value: SignedCheckpoint) -> log_pb2.Checkpoint:
    return log_pb2.Checkpoint(note=value.note, tree_size=value.size, root_hash=value.root_hash)


def log_event(event: LogEvent) -> log_pb2.LogEvent:
    return log_pb2.LogEvent(
        seq=event.seq, kind=event.kind, occurred_at=datetime_to_timestamp(event.occurred_at), actor=event.actor,
        report_id=event.report_id, subject_id=event.subject_id, listing_id=event.listing_id,
        detail_json=canonical_json(dict(event.detail)).decode(), salt=event.salt,
    )


def witness(value: Witness) -> admin_pb2.Witness:
    removed_at = None if value.removed_at is None else datetime_to_timestamp(value.removed_at)
    return admin_pb2.Witness(name=value.name, verifier_key=value.verifier_key, added_at=datetime_to_timestamp(value.added_at),
                             removed_at=removed_at)
