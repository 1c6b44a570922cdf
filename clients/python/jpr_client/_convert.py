"""Protobuf messages to the SDK's values (`jpr_client.model`)."""

from __future__ import annotations

from jpr_client.api.jpr.v1 import registry_pb2, types_pb2
from jpr_client.model import (
    Category,
    ChangeKind,
    IdentifierType,
    Listing,
    ListingChange,
    ListingStatus,
    LookupResult,
    Match,
    MatchReason,
    Opinion,
    OpinionReceipt,
    Receipt,
    Report,
    ReportStatus,
    Role,
    Severity,
    Token,
    Verdict,
)
from jpr_client.protocol import PROTOCOL_ENUMS, timestamp_to_datetime



def receipt(message: registry_pb2.ReportReceipt) -> Receipt:
    return Receipt(
        report_id=message.report_id,
        subject_id=message.subject_id,
        status=PROTOCOL_ENUMS.from_proto(ReportStatus, message.status, "status"),
        received_at=timestamp_to_datetime(message.received_at),
        envelope_sha256=message.envelope_sha256,
        event_seq=message.event_seq,
    )


def report(message: types_pb2.Report) -> Report:
    return Report(
        report_id=message.report_id,
        reporter=message.reporter,
        status=PROTOCOL_ENUMS.from_proto(ReportStatus, message.status, "status"),
        subject_id=message.subject_id,
        role=PROTOCOL_ENUMS.from_proto(Role, message.role, "role"),
        category=PROTOCOL_ENUMS.from_proto(Category, message.category, "category"),
        severity=PROTOCOL_ENUMS.from_proto(Severity, message.severity, "severity"),
        created_at=timestamp_to_datetime(message.created_at),
        received_at=timestamp_to_datetime(message.received_at),
        decided_at=timestamp_to_datetime(message.decided_at) if message.HasField("decided_at") else None,
        decided_by=message.decided_by,
        decision_reason=message.decision_reason,
        listing_id=message.listing_id,
        envelope=message.envelope,
        envelope_sha256=message.envelope_sha256,
    )


def lookup_result(message: registry_pb2.LookupResult) -> LookupResult:
    return LookupResult(
        verdict=PROTOCOL_ENUMS.from_proto(Verdict, message.verdict, "verdict"),
        matches=tuple(_match(m) for m in message.matches),
    )


def _match(message: registry_pb2.Match) -> Match:
    return Match(
        subject_id=message.subject_id,
        reason=PROTOCOL_ENUMS.from_proto(MatchReason, message.reason, "reason"),
        strong_match=message.strong_match,
        matched_types=tuple(PROTOCOL_ENUMS.from_proto(IdentifierType, t, "matched_types") for t in message.matched_types),
        roles=tuple(PROTOCOL_ENUMS.from_proto(Role, r, "roles") for r in message.roles),
        categories=tuple(PROTOCOL_ENUMS.from_proto(Category, c, "categories") for c in message.categories),
        severity=PROTOCOL_ENUMS.from_proto(Severity, message.severity, "severity"),
        listed_from=timestamp_to_datetime(message.listed_from) if message.HasField("listed_from") else None,
        listed_until=timestamp_to_datetime(message.listed_until) if message.HasField("listed_until") else None,
        reporting_platforms=message.reporting_platforms,
        appeal_pending=message.appeal_pending,
        listing_id=message.listing_id,
        confirmations=message.confirmations,
        disputes=message.disputes,
    )


def listing_change(message: registry_pb2.ListingChange) -> ListingChange:
    return ListingChange(
        cursor=message.cursor,
        kind=PROTOCOL_ENUMS.from_proto(ChangeKind, message.kind, "kind"),
        occurred_at=timestamp_to_datetime(message.occurred_at),
        listing=Listing(
            listing_id=message.listing_id,
            subject_id=message.subject_id,
            status=PROTOCOL_ENUMS.from_proto(ListingStatus, message.status, "status"),
            roles=tuple(PROTOCOL_ENUMS.from_proto(Role, r, "roles") for r in message.roles),
            categories=tuple(PROTOCOL_ENUMS.from_proto(Category, c, "categories") for c in message.categories),
            severity=PROTOCOL_ENUMS.from_proto(Severity, message.severity, "severity"),
            listed_from=timestamp_to_datetime(message.listed_from),
            listed_until=timestamp_to_datetime(message.listed_until),
            reporting_platforms=message.reporting_platforms,
            report_ids=(),
        ),
        tokens=tuple(Token(type=PROTOCOL_ENUMS.from_proto(IdentifierType, t.type, "tokens.type"), value=t.token) for t in message.tokens),
    )


def opinion_receipt(message: registry_pb2.OpinionReceipt) -> OpinionReceipt:
    return OpinionReceipt(
        listing_id=message.listing_id,
        opinion=PROTOCOL_ENUMS.from_proto(Opinion, message.opinion, "opinion"),
        recorded_at=timestamp_to_datetime(message.recorded_at),
        confirmations=message.confirmations,
        disputes=message.disputes,
    )
