"""Domain values to protobuf messages (the servicers' only translation table)."""

from __future__ import annotations

import json
from typing import Any

from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from jpr_client.model import Listing, ListingChange, LookupResult, Match, OpinionReceipt, Receipt, Report, Verdict
from jpr_client.protocol import datetime_to_timestamp
from registry.convert import enum_to_proto
from registry.domain.audit import AccessAudit
from registry.domain.imports import ImportResult
from registry.domain.model import (
    Appeal,
    Certificate,
    Correction,
    HistoryEntry,
    ListingReport,
    Member,
    OpinionNote,
    ReviewItem,
    RevokedCertificate,
    SigningKey,
    SubjectRecord,
)



def receipt(value: Receipt) -> registry_pb2.ReportReceipt:
    return registry_pb2.ReportReceipt(
        report_id=value.report_id,
        subject_id=value.subject_id,
        status=enum_to_proto(value.status),
        received_at=datetime_to_timestamp(value.received_at),
        envelope_sha256=value.envelope_sha256,
        event_seq=value.event_seq,
    )


def report(value: Report) -> types_pb2.Report:
    return types_pb2.Report(
        report_id=value.report_id,
        reporter=value.reporter,
        status=enum_to_proto(value.status),
        subject_id=value.subject_id,
        role=enum_to_proto(value.role),
        category=enum_to_proto(value.category),
        severity=enum_to_proto(value.severity),
        created_at=datetime_to_timestamp(value.created_at),
        received_at=datetime_to_timestamp(value.received_at),
        decided_at=datetime_to_timestamp(value.decided_at),
        decided_by=value.decided_by,
        decision_reason=value.decision_reason,
        listing_id=value.listing_id,
        envelope=value.envelope,
        envelope_sha256=value.envelope_sha256,
    )


def listing(value: Listing) -> types_pb2.Listing:
    return types_pb2.Listing(**_listing_fields(value), report_ids=list(value.report_ids))


def _listing_fields(value: Listing) -> dict[str, Any]:
    """What a listing says, without who reported it."""
    return {
        "listing_id": value.listing_id,
        "subject_id": value.subject_id,
        "status": enum_to_proto(value.status),
        "roles": [enum_to_proto(r) for r in value.roles],
        "categories": [enum_to_proto(c) for c in value.categories],
        "severity": enum_to_proto(value.severity),
        "listed_from": datetime_to_timestamp(value.listed_from),
        "listed_until": datetime_to_timestamp(value.listed_until),
        "reporting_platforms": value.reporting_platforms,
    }


def listing_report(value: ListingReport) -> admin_pb2.ListingReport:
    return admin_pb2.ListingReport(
        report_id=value.report_id,
        reporter=value.reporter,
        display_name=value.display_name,
        summary=value.summary,
        platform_action=value.platform_action,
    )


# Most applicants of a batch: one message, copied into the response, instead of one built per applicant.
_CLEAR = registry_pb2.LookupResult(verdict=enum_to_proto(Verdict.CLEAR))


def lookup_batch_response(values: list[LookupResult]) -> registry_pb2.LookupBatchResponse:
    response = registry_pb2.LookupBatchResponse()
    response.results.extend([lookup_result(value) if value.matches else _CLEAR for value in values])
    return response


def lookup_result(value: LookupResult) -> registry_pb2.LookupResult:
    return registry_pb2.LookupResult(
        verdict=enum_to_proto(value.verdict),
        matches=[match(m) for m in value.matches],
    )


def match(value: Match) -> registry_pb2.Match:
    return registry_pb2.Match(
        subject_id=value.subject_id,
        reason=enum_to_proto(value.reason),
        strong_match=value.strong_match,
        matched_types=[enum_to_proto(t) for t in value.matched_types],
        roles=[enum_to_proto(r) for r in value.roles],
        categories=[enum_to_proto(c) for c in value.categories],
        severity=enum_to_proto(value.severity),
        listed_from=datetime_to_timestamp(value.listed_from),
        listed_until=datetime_to_timestamp(value.listed_until),
        reporting_platforms=value.reporting_platforms,
        appeal_pending=value.appeal_pending,
        listing_id=value.listing_id,
        confirmations=value.confirmations,
        disputes=value.disputes,
    )


def signing_key(value: SigningKey) -> admin_pb2.SigningKey:
    return admin_pb2.SigningKey(
        key_id=value.key_id,
        public_key=value.public_key,
        valid_from=datetime_to_timestamp(value.valid_from),
        revoked_at=datetime_to_timestamp(value.revoked_at),
        valid_until=datetime_to_timestamp(value.valid_until),
    )


def member(value: Member) -> admin_pb2.Member:
    return admin_pb2.Member(
        name=value.name,
        status=enum_to_proto(value.status),
        created_at=datetime_to_timestamp(value.created_at),
        keys=[signing_key(k) for k in value.keys],
        onboarding_per_day=value.onboarding_per_day or 0,
        certificates=[certificate(c) for c in value.certificates],
    )


def certificate(value: Certificate) -> admin_pb2.Certificate:
    return admin_pb2.Certificate(
        certificate_sha256=value.sha256,
        role=value.role,
        name=value.name,
        not_before=datetime_to_timestamp(value.not_before),
        not_after=datetime_to_timestamp(value.not_after),
        registered_at=datetime_to_timestamp(value.registered_at),
        registered_by=value.registered_by,
        revoked_at=datetime_to_timestamp(value.revoked_at),
    )


def access_audit(value: AccessAudit) -> admin_pb2.AuditAccessResponse:
    return admin_pb2.AuditAccessResponse(
        since=datetime_to_timestamp(value.since),
        until=datetime_to_timestamp(value.until),
        members=[
            admin_pb2.MemberAccess(
                member=m.totals.member,
                onboarding_per_day=m.onboarding_per_day or 0,
                calls=m.totals.calls,
                refused=m.totals.refused,
                lookup_calls=m.totals.lookup_calls,
                applicants=m.totals.applicants,
                matched=m.totals.matched,
                tokenized=m.totals.tokenized,
                match_rate=m.match_rate,
                peer_match_rate=m.peer_match_rate,
                flags=[enum_to_proto(flag) for flag, _ in m.flags],
                explanations=[explanation for _, explanation in m.flags],
            )
            for m in value.members
        ],
    )


def appeal(value: Appeal) -> admin_pb2.Appeal:
    return admin_pb2.Appeal(
        appeal_id=value.appeal_id,
        listing_id=value.listing_id,
        status=enum_to_proto(value.status),
        reason=value.reason,
        filed_at=datetime_to_timestamp(value.filed_at),
        filed_by=value.filed_by,
        decided_at=datetime_to_timestamp(value.decided_at),
        decided_by=value.decided_by,
        decision_reason=value.decision_reason,
    )


def listing_change(value: ListingChange) -> registry_pb2.ListingChange:
    return registry_pb2.ListingChange(
        cursor=value.cursor,
        kind=enum_to_proto(value.kind),
        occurred_at=datetime_to_timestamp(value.occurred_at),
        **_listing_fields(value.listing),
        tokens=[types_pb2.IdentifierToken(type=enum_to_proto(t.type), token=t.value) for t in value.tokens],
    )


def opinion_receipt(value: OpinionReceipt) -> registry_pb2.OpinionReceipt:
    return registry_pb2.OpinionReceipt(
        listing_id=value.listing_id,
        opinion=enum_to_proto(value.opinion),
        recorded_at=datetime_to_timestamp(value.recorded_at),
        confirmations=value.confirmations,
        disputes=value.disputes,
    )


def review_item(value: ReviewItem) -> admin_pb2.ReviewItem:
    return admin_pb2.ReviewItem(
        listing=listing(value.listing),
        confirmations=value.confirmations,
        disputes=value.disputes,
        appeal_pending=value.appeal_pending,
        opinions=[opinion_note(n) for n in value.opinions],
        appeal_id=value.appeal_id,
        quarantine=None if value.quarantine is None else admin_pb2.Quarantine(
            quarantined_at=datetime_to_timestamp(value.quarantine.quarantined_at), matches=value.quarantine.matches,
            platforms=value.quarantine.platforms, window_minutes=value.quarantine.window_minutes,
            own_hourly=value.quarantine.own_hourly, median_hourly=value.quarantine.median_hourly,
            explanation=value.quarantine.explanation,
        ),
    )


def opinion_note(value: OpinionNote) -> admin_pb2.OpinionNote:
    return admin_pb2.OpinionNote(
        member=value.member,
        opinion=enum_to_proto(value.opinion),
        reason=value.reason,
        recorded_at=datetime_to_timestamp(value.recorded_at),
        listing_id=value.listing_id,
    )


def correction(value: Correction) -> admin_pb2.Correction:
    return admin_pb2.Correction(
        subject_id=value.subject_id,
        new_subject_id=value.new_subject_id,
        report_ids=list(value.report_ids),
        listing_ids=list(value.listing_ids),
        reason=value.reason,
        corrected_at=datetime_to_timestamp(value.corrected_at),
    )


def subject_record(value: SubjectRecord) -> admin_pb2.SubjectRecord:
    return admin_pb2.SubjectRecord(
        subject_id=value.subject_id,
        created_at=datetime_to_timestamp(value.created_at),
        merged_into=value.merged_into,
        merged_subjects=list(value.merged_subjects),
        identifiers=[
            admin_pb2.SubjectIdentifier(type=enum_to_proto(i.type), token_prefix=i.token_prefix, attached_at=datetime_to_timestamp(i.attached_at))
            for i in value.identifiers
        ],
        reports=[report(r) for r in value.reports],
        listings=[listing(l) for l in value.listings],
        appeals=[appeal(a) for a in value.appeals],
        opinions=[opinion_note(n) for n in value.opinions],
        matches=[
            admin_pb2.SubjectMatch(
                member=m.member, first_at=datetime_to_timestamp(m.first_at), last_at=datetime_to_timestamp(m.last_at), lookups=m.lookups
            )
            for m in value.matches
        ],
        history=[history_entry(h) for h in value.history],
    )


def history_entry(value: HistoryEntry) -> admin_pb2.HistoryEntry:
    return admin_pb2.HistoryEntry(
        seq=value.seq, kind=value.kind, actor=value.actor, occurred_at=datetime_to_timestamp(value.occurred_at),
        report_id=value.report_id, subject_id=value.subject_id, listing_id=value.listing_id,
        detail_json=json.dumps(value.detail, sort_keys=True, ensure_ascii=False),
    )


def revoked_certificate(value: RevokedCertificate) -> admin_pb2.RevokedCertificate:
    return admin_pb2.RevokedCertificate(
        certificate_sha256=value.sha256,
        revoked_at=datetime_to_timestamp(value.revoked_at),
        revoked_by=value.revoked_by,
        reason=value.reason,
    )


def import_result(value: ImportResult) -> admin_pb2.ImportResult:
    return admin_pb2.ImportResult(
        report_id=value.report_id,
        outcome=enum_to_proto(value.outcome),
        status=value.status,
        message=value.message,
        subject_id=value.subject_id,
        listing_id=value.listing_id,
    )
