"""What a log entry proves about a receipt, a change or a match, checked against a verified checkpoint.

An entry proves an event only when three things hold: the event and its salt hash to the leaf's
commitment, the leaf is included in a checkpoint the monitor verified, and the event says what the
registry's answer said (the receipt's report and envelope, the change's or match's listing). Each
failure is a LogProofError naming the one that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jpr_client.errors import LogProofError
from jpr_client.model import ListingChange, ListingStatus, Match, MatchReason, Receipt, Severity
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.entry import LogEvent, commitment
from jpr_client.transparency.merkle import ProofError, leaf_hash, verify_inclusion
from jpr_client.transparency.monitor import describe

# The listing status a match's reason implies: a DENY or REVIEW rests on the listing being in it.
_STATUS_OF_MATCH = {
    MatchReason.ACTIVE_LISTING: ListingStatus.ACTIVE,
    MatchReason.QUARANTINED: ListingStatus.ACTIVE,
    MatchReason.NOTICE_PERIOD: ListingStatus.PENDING_NOTICE,
}


@dataclass(frozen=True)
class LogEntry:
    """One leaf as the registry answered GetLogEntry: not yet verified."""

    leaf_index: int
    commitment: bytes
    event: LogEvent | None  # None when the caller may not read the event
    tree_size: int
    inclusion_proof: tuple[bytes, ...]


@dataclass(frozen=True)
class LogProof:
    """An event proven to be leaf `leaf_index` of the log in `checkpoint`, a checkpoint the monitor verified.

    Keep it with the receipt or the decision it backs: anyone holding the log's public key can check it again.

    Example:
        >>> proof = client.prove_receipt(receipt)  # doctest: +SKIP
        >>> proof.event.kind, proof.leaf_index, proof.checkpoint.size  # doctest: +SKIP
        ('report.submitted', 1041, 1042)
    """

    event: LogEvent
    leaf_index: int
    commitment: bytes
    checkpoint: Checkpoint
    inclusion_proof: tuple[bytes, ...]


def prove_entry(entry: LogEntry, checkpoint: Checkpoint, what: str) -> LogProof:
    """The proof `entry` gives of its event against `checkpoint`; LogProofError naming `what` otherwise.

    Example:
        >>> prove_entry(entry, monitor.latest.checkpoint, "event 17").leaf_index  # doctest: +SKIP
        16
    """
    if entry.event is None:
        raise LogProofError(f"{what}: the registry sent the leaf without its event, so nothing about the event is proven")
    if entry.tree_size != checkpoint.size:
        raise LogProofError(f"{what}: the inclusion proof is for tree size {entry.tree_size}, not the verified checkpoint's {checkpoint.size}")
    try:
        recomputed = commitment(entry.event)
    except ValueError as error:
        raise LogProofError(f"{what}: the event's commitment cannot be computed ({error})") from None
    if recomputed != entry.commitment:
        raise LogProofError(
            f"{what}: the event (seq {entry.event.seq}, {entry.event.kind}) and its salt hash to {recomputed.hex()}, "
            f"not to the leaf's commitment {entry.commitment.hex()}: the registry's event is not the one its log recorded"
        )
    try:
        verify_inclusion(leaf_hash(recomputed), entry.leaf_index, checkpoint.size, entry.inclusion_proof, checkpoint.root_hash)
    except ProofError as error:
        raise LogProofError(
            f"{what}: leaf {entry.leaf_index} is not included in the verified checkpoint ({describe(checkpoint)}): {error}"
        ) from None
    return LogProof(entry.event, entry.leaf_index, recomputed, checkpoint, entry.inclusion_proof)


def check_receipt(proof: LogProof, receipt: Receipt) -> None:
    """Raise LogProofError unless the proven event is the submission this receipt acknowledges."""
    event, what = proof.event, f"the receipt of report {receipt.report_id}"
    _expect(what, "kind", event.kind, "report.submitted")
    _expect(what, "report id", event.report_id, receipt.report_id)
    _expect(what, "seq", event.seq, receipt.event_seq)
    _expect(what, "envelope SHA-256", event.detail.get("envelope_sha256"), receipt.envelope_sha256.hex())


def check_change(proof: LogProof, change: ListingChange) -> None:
    """Raise LogProofError unless the proven event is this change of the feed, with the listing as the feed showed it."""
    event, what = proof.event, f"change {change.cursor} of listing {change.listing.listing_id}"
    _expect(what, "seq", str(event.seq), change.cursor)
    _expect(what, "kind", event.kind, f"listing.{change.kind.value.lower()}")
    _expect(what, "listing", event.listing_id, change.listing.listing_id)
    _check_snapshot(what, event, change.listing.status, change.listing.listed_until, change.listing.severity)


def check_match(proof: LogProof, match: Match) -> None:
    """Raise LogProofError unless the proven event is the newest state of the matched listing, as the match says it."""
    what = f"the match on listing {match.listing_id}"
    _expect(what, "kind", proof.event.kind.split(".")[0], "listing")
    _expect(what, "listing", proof.event.listing_id, match.listing_id)
    status = _STATUS_OF_MATCH.get(match.reason)
    if status is None:
        raise LogProofError(f"{what}: a match for {match.reason.name} rests on no listing, so the log has nothing to prove")
    _check_snapshot(what, proof.event, status, match.listed_until, match.severity)


def _check_snapshot(what: str, event: LogEvent, status: ListingStatus, listed_until: datetime | None, severity: Severity) -> None:
    """The listing's state the event recorded (docs/protocol.md, "Transparency log") against the one shown."""
    detail = event.detail
    if "status" not in detail:
        raise LogProofError(f"{what}: event {event.seq} ({event.kind}) records no snapshot of the listing to compare with")
    _expect(what, "status", detail.get("status"), status.value)
    _expect(what, "severity", detail.get("severity"), severity.value)
    recorded = _instant(detail.get("listed_until"))
    if listed_until is None or recorded is None or recorded != listed_until:
        _expect(what, "listed until", detail.get("listed_until"), listed_until.isoformat() if listed_until else None)


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _expect(what: str, field: str, logged: object, shown: object) -> None:
    if logged != shown:
        raise LogProofError(f"{what}: the log's event has {field} {logged!r}, the registry's answer {shown!r}")
