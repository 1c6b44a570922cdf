"""What an entry proves: its event hashes to the leaf, the leaf is in the verified checkpoint, and the event
says what the registry's answer said. Each disagreement is a LogProofError naming it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from jpr_client.errors import LogProofError
from jpr_client.model import ChangeKind, Listing, ListingChange, ListingStatus, Match, MatchReason, Receipt, ReportStatus, Role, Severity
from jpr_client.transparency.entry import LogEvent, commitment
from jpr_client.transparency.merkle import build_proof, inclusion_ranges
from jpr_client.transparency.proofs import LogEntry, check_change, check_match, check_receipt, prove_entry
from tests.signed_log import SignedLog

AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
UNTIL = datetime(2029, 3, 1, 8, 0, tzinfo=UTC)
ENVELOPE = hashlib.sha256(b"envelope").digest()


def submitted(seq: int) -> LogEvent:
    return LogEvent(seq=seq, kind="report.submitted", occurred_at=AT, actor="member:platform-a", report_id="r-1", subject_id="S1",
                    listing_id="", detail={"envelope_sha256": ENVELOPE.hex()}, salt=os.urandom(32))


def listed(seq: int) -> LogEvent:
    snapshot = {"status": "ACTIVE", "listed_from": AT.isoformat(), "listed_until": UNTIL.isoformat(), "severity": "SERIOUS"}
    return LogEvent(seq=seq, kind="listing.created", occurred_at=AT, actor="admin:alice", report_id="r-1", subject_id="S1",
                    listing_id="L1", detail=snapshot, salt=os.urandom(32))


class EventLog(SignedLog):
    def entry(self, index: int, event: LogEvent) -> LogEntry:
        proof = build_proof(inclusion_ranges(index, self.size), lambda level, i: self.nodes[level, i])
        return LogEntry(index, self.leaves[index], event, self.size, tuple(proof))


@pytest.fixture
def events() -> tuple[EventLog, list[LogEvent]]:
    log = EventLog(SignedLog.generate().signer)
    made = [submitted(1), listed(2), submitted(3)]
    log.append(*(commitment(e) for e in made))
    return log, made


def receipt(event_seq: int = 1) -> Receipt:
    return Receipt("r-1", "S1", ReportStatus.SUBMITTED, AT, ENVELOPE, event_seq)


def test_an_honest_entry_proves_its_event(events: tuple[EventLog, list[LogEvent]]) -> None:
    log, made = events
    proof = prove_entry(log.entry(0, made[0]), log.checkpoint(), "event 1")
    assert proof.event == made[0] and proof.leaf_index == 0 and proof.checkpoint == log.checkpoint()
    check_receipt(proof, receipt())


def test_an_altered_event_does_not_hash_to_its_leaf(events: tuple[EventLog, list[LogEvent]]) -> None:
    log, made = events
    altered = replace(made[0], detail={"envelope_sha256": bytes(32).hex()})
    with pytest.raises(LogProofError, match="not the one its log recorded"):
        prove_entry(log.entry(0, altered), log.checkpoint(), "event 1")


def test_an_entry_at_another_index_or_against_another_root_is_refused(events: tuple[EventLog, list[LogEvent]]) -> None:
    log, made = events
    moved = replace(log.entry(0, made[0]), leaf_index=2)
    with pytest.raises(LogProofError, match="not included"):
        prove_entry(moved, log.checkpoint(), "event 1")
    other = SignedLog.generate().grow(3)
    with pytest.raises(LogProofError, match="not included"):
        prove_entry(log.entry(0, made[0]), other.checkpoint(), "event 1")
    with pytest.raises(LogProofError, match="tree size 3, not"):
        prove_entry(log.entry(0, made[0]), log.checkpoint(2), "event 1")


def test_an_entry_without_its_event_proves_nothing(events: tuple[EventLog, list[LogEvent]]) -> None:
    log, _ = events
    with pytest.raises(LogProofError, match="without its event"):
        prove_entry(replace(log.entry(0, submitted(1)), event=None), log.checkpoint(), "event 1")


def test_a_receipt_must_match_the_submission_the_log_recorded(events: tuple[EventLog, list[LogEvent]]) -> None:
    log, made = events
    proof = prove_entry(log.entry(0, made[0]), log.checkpoint(), "event 1")
    with pytest.raises(LogProofError, match="envelope SHA-256"):
        check_receipt(proof, replace(receipt(), envelope_sha256=bytes(32)))
    with pytest.raises(LogProofError, match="report id"):
        check_receipt(proof, replace(receipt(), report_id="r-2"))
    listing = prove_entry(log.entry(1, made[1]), log.checkpoint(), "event 2")
    with pytest.raises(LogProofError, match="kind"):
        check_receipt(listing, receipt(2))


def listing_change(status: ListingStatus = ListingStatus.ACTIVE, until: datetime = UNTIL) -> ListingChange:
    listing = Listing("L1", "S1", status, (Role.ANCHOR,), (), Severity.SERIOUS, AT, until, 1, ())
    return ListingChange("2", ChangeKind.CREATED, AT, listing, ())


def test_a_change_must_show_the_listing_as_the_log_recorded_it(events: tuple[EventLog, list[LogEvent]]) -> None:
    log, made = events
    proof = prove_entry(log.entry(1, made[1]), log.checkpoint(), "event 2")
    check_change(proof, listing_change())
    with pytest.raises(LogProofError, match="status"):
        check_change(proof, listing_change(ListingStatus.LIFTED))
    with pytest.raises(LogProofError, match="listed until"):
        check_change(proof, listing_change(until=datetime(2031, 1, 1, tzinfo=UTC)))
    with pytest.raises(LogProofError, match="seq"):
        check_change(proof, replace(listing_change(), cursor="3"))


def match(reason: MatchReason = MatchReason.ACTIVE_LISTING, severity: Severity = Severity.SERIOUS) -> Match:
    return Match("S1", reason, True, (), (Role.ANCHOR,), (), severity, AT, UNTIL, 1, listing_id="L1")


def test_a_match_must_rest_on_the_listings_logged_state(events: tuple[EventLog, list[LogEvent]]) -> None:
    log, made = events
    proof = prove_entry(log.entry(1, made[1]), log.checkpoint(), "event 2")
    check_match(proof, match())
    with pytest.raises(LogProofError, match="severity"):
        check_match(proof, match(severity=Severity.SEVERE))
    with pytest.raises(LogProofError, match="status"):
        check_match(proof, match(MatchReason.NOTICE_PERIOD))
    with pytest.raises(LogProofError, match="rests on no listing"):
        check_match(proof, match(MatchReason.REPORT_UNDER_REVIEW))
