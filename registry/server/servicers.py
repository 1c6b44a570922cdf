"""gRPC servicers: proto in, domain call, proto out. No SQL, no Session here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Literal

import grpc

from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc, registry_pb2, registry_pb2_grpc, types_pb2
from jpr_client.model import ListingStatus, Match, MatchReason, Opinion, ReportStatus
from jpr_client.protocol import datetime_to_timestamp
from registry.convert import enum_from_proto, timestamp_to_datetime
from registry.crypto import pki
from registry.domain.admin import AdminService
from registry.domain.audit import Thresholds
from registry.domain.changes import ChangeFeed
from registry.domain.errors import RegistryError
from registry.domain.feedback import FeedbackService, MatchRecorder
from registry.domain.flood import FloodGuard
from registry.domain.imports import ImportItem, ImportService
from registry.domain.limits import RateLimiter
from registry.domain.lookups import LookupService
from registry.domain.model import AppealStatus, EventFilter, LiftGrounds
from registry.domain.payload import token_values
from registry.domain.reports import ReportService
from registry.domain.tokens import Tokenizer
from registry.domain.transparency import TransparencyService
from registry.server import messages, transparency
from registry.server.auth import current_caller
from registry.store.changes import parse_cursor

log = logging.getLogger("jpr.access")

TOKENIZE, LOOKUPS = "elements", "applicants"  # what each limit counts



def denying(matches: Iterable[Match]) -> list[str]:
    """The listings of matches that deny: what the flood guard counts."""
    return [m.listing_id for m in matches if m.reason is MatchReason.ACTIVE_LISTING and m.strong_match]


class RegistryServicer(registry_pb2_grpc.RegistryServicer):
    def __init__(
        self, tokenizer: Tokenizer, reports: ReportService, lookups: LookupService, feed: ChangeFeed,
        feedback: FeedbackService, matches: MatchRecorder, limits: RateLimiter, flood: FloodGuard,
    ) -> None:
        self._flood = flood
        self._limits = limits
        self._tokenizer = tokenizer
        self._reports = reports
        self._lookups = lookups
        self._feed = feed
        self._feedback = feedback
        self._matches = matches

    def Tokenize(self, request: registry_pb2.TokenizeRequest, context: grpc.ServicerContext) -> registry_pb2.TokenizeResponse:
        self._limits.take(current_caller().name, TOKENIZE, len(request.blinded_elements))
        evaluation = self._tokenizer.evaluate(request.blinded_elements)
        return registry_pb2.TokenizeResponse(evaluated_elements=evaluation.evaluated_elements, proof=evaluation.proof)

    def SubmitReport(self, request: registry_pb2.SubmitReportRequest, context: grpc.ServicerContext) -> registry_pb2.ReportReceipt:
        return messages.receipt(self._reports.submit(current_caller(), request.envelope))

    def RetractReport(self, request: registry_pb2.RetractReportRequest, context: grpc.ServicerContext) -> types_pb2.Report:
        return messages.report(self._reports.retract(current_caller(), request.envelope))

    def GetReport(self, request: registry_pb2.GetReportRequest, context: grpc.ServicerContext) -> types_pb2.Report:
        return messages.report(self._reports.get(current_caller(), request.report_id))

    def Lookup(self, request: registry_pb2.LookupRequest, context: grpc.ServicerContext) -> registry_pb2.LookupResult:
        self._limits.take(current_caller().name, LOOKUPS, 1)
        (applicant,) = token_values([request.applicant.identifiers], lambda _: "applicant.identifiers")
        result = self._lookups.lookup(applicant)
        if result.matches:
            self._matches.note(current_caller().name, [m.subject_id for m in result.matches])
            self._flood.note(current_caller().name, denying(result.matches))
        return messages.lookup_result(result)

    def LookupBatch(self, request: registry_pb2.LookupBatchRequest, context: grpc.ServicerContext) -> registry_pb2.LookupBatchResponse:
        self._limits.take(current_caller().name, LOOKUPS, len(request.applicants))
        applicants = token_values([a.identifiers for a in request.applicants], lambda i: f"applicants[{i}].identifiers")
        results = self._lookups.lookup_batch(applicants)
        matched = [m for r in results for m in r.matches]
        if matched:
            self._matches.note(current_caller().name, [m.subject_id for m in matched])
            self._flood.note(current_caller().name, denying(matched))
        return messages.lookup_batch_response(results)

    def RecordOpinion(self, request: registry_pb2.RecordOpinionRequest, context: grpc.ServicerContext) -> registry_pb2.OpinionReceipt:
        opinion = enum_from_proto(Opinion, request.opinion, "opinion")
        return messages.opinion_receipt(self._feedback.record(current_caller(), request.listing_id, opinion, request.reason))

    def WatchChanges(self, request: registry_pb2.WatchChangesRequest, context: grpc.ServicerContext) -> Iterator[registry_pb2.ListingChange]:
        after = parse_cursor(request.cursor)  # before the stream starts, so a bad cursor gets its own status
        context.add_callback(self._feed.wake)  # a cancelled or ended watch leaves its thread at once
        return self._changes(current_caller().name, after, context)

    def _changes(self, member: str, after: int, context: grpc.ServicerContext) -> Iterator[registry_pb2.ListingChange]:
        try:
            for change in self._feed.watch(after, context.is_active):
                yield messages.listing_change(change)
        except RegistryError:
            raise  # the interceptor's relay answers with its status
        except Exception:  # the database went away mid-stream: the member resumes from its cursor
            log.exception("WatchChanges failed for %s", member)
            context.abort(grpc.StatusCode.UNAVAILABLE, "the changes feed failed; the registry logged the cause; resume from your cursor")


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(
        self, admin: AdminService, registry_name: str, ca_pem: bytes, server_pem: bytes, oprf_public_key: bytes,
        flush_access_log: Callable[[], None], imports: ImportService, transparency: TransparencyService,
    ) -> None:
        self._admin = admin
        self._transparency = transparency
        self._server_pem = server_pem
        self._imports = imports
        self._oprf_public_key = oprf_public_key
        self._flush_access_log = flush_access_log
        self._registry_name = registry_name
        self._ca_pem = ca_pem

    def CreateMember(self, request: admin_pb2.CreateMemberRequest, context: grpc.ServicerContext) -> admin_pb2.CreateMemberResponse:
        enrollment = self._admin.create_member(
            current_caller(), request.name, request.signing_public_key, request.certificate_pem, request.csr_pem
        )
        return admin_pb2.CreateMemberResponse(
            member=messages.member(enrollment.member),
            certificate_pem=enrollment.certificate_pem.decode(),
            ca_certificate_pem=self._ca_pem.decode(),
            registry_name=self._registry_name,
            key_id=enrollment.key_id,
            certificate_sha256=enrollment.certificate_sha256,
            oprf_public_key=self._oprf_public_key,
            log_public_key=self._transparency.public_key,
        )

    def ListMembers(self, request: admin_pb2.ListMembersRequest, context: grpc.ServicerContext) -> admin_pb2.ListMembersResponse:
        return admin_pb2.ListMembersResponse(members=[messages.member(m) for m in self._admin.list_members()])

    def AddMemberKey(self, request: admin_pb2.AddMemberKeyRequest, context: grpc.ServicerContext) -> admin_pb2.SigningKey:
        valid_from = timestamp_to_datetime(request.valid_from, "valid_from") if request.HasField("valid_from") else None
        valid_until = timestamp_to_datetime(request.valid_until, "valid_until") if request.HasField("valid_until") else None
        return messages.signing_key(self._admin.add_key(current_caller(), request.member, request.public_key, valid_from, valid_until))

    def RevokeMemberKey(self, request: admin_pb2.RevokeMemberKeyRequest, context: grpc.ServicerContext) -> admin_pb2.SigningKey:
        return messages.signing_key(self._admin.revoke_key(current_caller(), request.member, request.key_id))

    def ListReports(self, request: admin_pb2.ListReportsRequest, context: grpc.ServicerContext) -> admin_pb2.ListReportsResponse:
        status = None if request.status == 0 else enum_from_proto(ReportStatus, request.status, "status")
        page = self._admin.list_reports(status, request.page_size, request.page_token)
        return admin_pb2.ListReportsResponse(reports=[messages.report(r) for r in page.items], next_page_token=page.next_page_token)

    def AcceptReport(self, request: admin_pb2.AcceptReportRequest, context: grpc.ServicerContext) -> admin_pb2.AcceptReportResponse:
        report, listing = self._admin.accept(current_caller(), request.report_id, request.term_days, request.reason)
        return admin_pb2.AcceptReportResponse(report=messages.report(report), listing=messages.listing(listing))

    def RejectReport(self, request: admin_pb2.RejectReportRequest, context: grpc.ServicerContext) -> types_pb2.Report:
        return messages.report(self._admin.reject(current_caller(), request.report_id, request.reason))

    def LiftListing(self, request: admin_pb2.LiftListingRequest, context: grpc.ServicerContext) -> types_pb2.Listing:
        grounds = enum_from_proto(LiftGrounds, request.grounds, "grounds")
        return messages.listing(self._admin.lift(current_caller(), request.listing_id, grounds, request.reason))

    def ReleaseListing(self, request: admin_pb2.ReleaseListingRequest, context: grpc.ServicerContext) -> types_pb2.Listing:
        return messages.listing(self._admin.release(current_caller(), request.listing_id, request.reason))

    def RecordObjection(self, request: admin_pb2.RecordObjectionRequest, context: grpc.ServicerContext) -> types_pb2.Listing:
        return messages.listing(self._admin.record_objection(current_caller(), request.listing_id, request.reason))

    def FileAppeal(self, request: admin_pb2.FileAppealRequest, context: grpc.ServicerContext) -> admin_pb2.Appeal:
        return messages.appeal(self._admin.file_appeal(current_caller(), request.listing_id, request.reason))

    def DecideAppeal(self, request: admin_pb2.DecideAppealRequest, context: grpc.ServicerContext) -> admin_pb2.Appeal:
        decision = enum_from_proto(AppealStatus, request.decision, "decision")
        return messages.appeal(self._admin.decide_appeal(current_caller(), request.appeal_id, decision, request.reason))

    def ListListings(self, request: admin_pb2.ListListingsRequest, context: grpc.ServicerContext) -> admin_pb2.ListListingsResponse:
        status = None if request.status == 0 else enum_from_proto(ListingStatus, request.status, "status")
        page = self._admin.list_listings(status, request.page_size, request.page_token)
        reports = self._admin.listing_reports(page.items) if request.with_reports else []
        return admin_pb2.ListListingsResponse(
            listings=[messages.listing(l) for l in page.items],
            next_page_token=page.next_page_token,
            reports=[messages.listing_report(r) for r in reports],
        )

    def ListAppeals(self, request: admin_pb2.ListAppealsRequest, context: grpc.ServicerContext) -> admin_pb2.ListAppealsResponse:
        status = None if request.status == 0 else enum_from_proto(AppealStatus, request.status, "status")
        page = self._admin.list_appeals(status, request.page_size, request.page_token)
        return admin_pb2.ListAppealsResponse(appeals=[messages.appeal(a) for a in page.items], next_page_token=page.next_page_token)

    def ListReviewQueue(self, request: admin_pb2.ListReviewQueueRequest, context: grpc.ServicerContext) -> admin_pb2.ListReviewQueueResponse:
        items = self._admin.review_queue(request.limit)
        return admin_pb2.ListReviewQueueResponse(items=[messages.review_item(i) for i in items])

    def DetachIdentifier(self, request: admin_pb2.DetachIdentifierRequest, context: grpc.ServicerContext) -> admin_pb2.Correction:
        return messages.correction(
            self._admin.detach_identifier(current_caller(), request.subject_id, request.token_prefix, request.reason)
        )

    def SplitSubject(self, request: admin_pb2.SplitSubjectRequest, context: grpc.ServicerContext) -> admin_pb2.Correction:
        return messages.correction(
            self._admin.split_subject(current_caller(), request.subject_id, list(request.report_ids), request.reason)
        )

    def GetSubject(self, request: admin_pb2.GetSubjectRequest, context: grpc.ServicerContext) -> admin_pb2.SubjectRecord:
        return messages.subject_record(self._admin.subject(request.subject_id))

    def ListEvents(self, request: admin_pb2.ListEventsRequest, context: grpc.ServicerContext) -> admin_pb2.ListEventsResponse:
        which = EventFilter(
            actor=request.actor,
            kind_prefix=request.kind_prefix,
            since=timestamp_to_datetime(request.since, "since") if request.HasField("since") else None,
            until=timestamp_to_datetime(request.until, "until") if request.HasField("until") else None,
        )
        page = self._admin.list_events(which, request.page_size, request.page_token)
        return admin_pb2.ListEventsResponse(events=[messages.history_entry(e) for e in page.items], next_page_token=page.next_page_token)

    def SuspendMember(self, request: admin_pb2.MemberStatusRequest, context: grpc.ServicerContext) -> admin_pb2.Member:
        return messages.member(self._admin.suspend(current_caller(), request.member, request.reason))

    def ResumeMember(self, request: admin_pb2.MemberStatusRequest, context: grpc.ServicerContext) -> admin_pb2.Member:
        return messages.member(self._admin.resume(current_caller(), request.member, request.reason))

    def RevokeCertificate(self, request: admin_pb2.RevokeCertificateRequest, context: grpc.ServicerContext) -> admin_pb2.RevokedCertificate:
        return messages.revoked_certificate(self._admin.revoke_certificate(current_caller(), request.certificate_sha256, request.reason))

    def RegisterCertificate(self, request: admin_pb2.RegisterCertificateRequest, context: grpc.ServicerContext) -> admin_pb2.Certificate:
        return messages.certificate(self._admin.register_certificate(current_caller(), request.certificate_pem))

    def ListCertificates(self, request: admin_pb2.ListCertificatesRequest, context: grpc.ServicerContext) -> admin_pb2.ListCertificatesResponse:
        return admin_pb2.ListCertificatesResponse(
            certificates=[messages.certificate(c) for c in self._admin.list_certificates(request.role, request.include_revoked)],
            server_certificate_not_after=datetime_to_timestamp(pki.not_after(self._server_pem)),
            ca_certificate_not_after=datetime_to_timestamp(pki.not_after(self._ca_pem)),
            unregistered_issued_before=datetime_to_timestamp(self._admin.unregistered_issued_before()),
        )

    def SetOnboardingVolume(self, request: admin_pb2.SetOnboardingVolumeRequest, context: grpc.ServicerContext) -> admin_pb2.Member:
        return messages.member(self._admin.set_onboarding_volume(current_caller(), request.member, request.per_day, request.reason))

    def AuditAccess(self, request: admin_pb2.AuditAccessRequest, context: grpc.ServicerContext) -> admin_pb2.AuditAccessResponse:
        since = timestamp_to_datetime(request.since, "since") if request.HasField("since") else None
        until = timestamp_to_datetime(request.until, "until") if request.HasField("until") else None
        defaults = Thresholds()
        thresholds = Thresholds(
            volume_factor=request.volume_factor or defaults.volume_factor,
            miss_factor=request.miss_factor or defaults.miss_factor,
            min_applicants=request.min_applicants or defaults.min_applicants,
        )
        self._flush_access_log()  # this replica's latest calls count too
        return messages.access_audit(self._admin.audit_access(since, until, thresholds))

    def ImportReports(self, request: admin_pb2.ImportReportsRequest, context: grpc.ServicerContext) -> admin_pb2.ImportReportsResponse:
        items = [_import_item(item, f"items[{index}]") for index, item in enumerate(request.items)]
        results = self._imports.import_reports(current_caller(), request.member, items)
        return admin_pb2.ImportReportsResponse(results=[messages.import_result(r) for r in results])

    def AddWitness(self, request: admin_pb2.AddWitnessRequest, context: grpc.ServicerContext) -> admin_pb2.Witness:
        return transparency.witness(self._transparency.add_witness(request.verifier_key, request.reason, _admin_actor()))

    def RemoveWitness(self, request: admin_pb2.RemoveWitnessRequest, context: grpc.ServicerContext) -> admin_pb2.Witness:
        return transparency.witness(self._transparency.remove_witness(request.name, request.reason, _admin_actor()))

    def ListWitnesses(self, request: admin_pb2.ListWitnessesRequest, context: grpc.ServicerContext) -> admin_pb2.ListWitnessesResponse:
        return admin_pb2.ListWitnessesResponse(witnesses=[transparency.witness(w) for w in self._transparency.witnesses()])


def _admin_actor() -> str:
    return f"admin:{current_caller().name}"


def _import_item(item: admin_pb2.ImportItem, field: str) -> ImportItem:
    def when(name: Literal["listed_from", "listed_until"]) -> datetime | None:
        return timestamp_to_datetime(getattr(item, name), f"{field}.{name}") if item.HasField(name) else None

    return ImportItem(envelope=item.envelope, reason=item.reason, listed_from=when("listed_from"), listed_until=when("listed_until"))
