"""The association's administration: members, keys, review decisions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from jpr_client.crypto import dsse
from jpr_client.model import Listing, ListingStatus, Report, ReportStatus
from jpr_client.quoting import quoted
from registry.crypto import pki
from registry.domain.audit import AccessAudit, Thresholds, audit, hour_window
from registry.domain.errors import InvalidArgument
from registry.domain.model import (
    Appeal,
    AppealStatus,
    Caller,
    Certificate,
    Correction,
    EventFilter,
    HistoryEntry,
    LiftGrounds,
    ListingReport,
    Member,
    MemberStatus,
    Page,
    ReviewItem,
    RevokedCertificate,
    SigningKey,
    SubjectRecord,
)
from registry.domain.payload import listing_report
from registry.domain.terms import MAX_TERM_DAYS, Terms
from registry.store.access import AccessStore
from registry.store.appeals import AppealStore
from registry.store.certificates import CertificateStore
from registry.store.corrections import CorrectionStore
from registry.store.events import EventStore
from registry.store.listings import ListingStore
from registry.store.members import MemberStore
from registry.store.opinions import OpinionStore
from registry.store.reports import ReportStore
from registry.store.subjects import SubjectStore

MEMBER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_REASON = 2000
MAX_ONBOARDING_PER_DAY = 10_000_000


@dataclass(frozen=True)
class Enrollment:
    member: Member
    certificate_pem: bytes
    key_id: str
    certificate_sha256: str


class AdminService:
    def __init__(
        self,
        members: MemberStore,
        reports: ReportStore,
        listings: ListingStore,
        appeals: AppealStore,
        opinions: OpinionStore,
        corrections: CorrectionStore,
        subjects: SubjectStore,
        access: AccessStore,
        certificates: CertificateStore,
        events: EventStore,
        *,
        ca_certificate: bytes,
        terms: Terms,
        clock: Callable[[], datetime],
    ) -> None:
        self._appeals = appeals
        self._opinions = opinions
        self._corrections = corrections
        self._subjects = subjects
        self._access = access
        self._members = members
        self._reports = reports
        self._listings = listings
        self._certificates = certificates
        self._events = events
        self._ca_certificate = ca_certificate
        self._terms = terms
        self._clock = clock

    def create_member(self, admin: Caller, name: str, signing_public_key: bytes, certificate_pem: str, csr_pem: str = "") -> Enrollment:
        """A new member, its signing key and its client certificate, signed offline by the registry's CA."""
        _check_member_name(name)
        key_id = _key_id(signing_public_key)
        if csr_pem and not certificate_pem:
            raise InvalidArgument(
                "csr_pem: the registry holds no CA key and signs nothing; sign the request where the CA key is "
                "(`jpr admin members add --request` does) and send certificate_pem"
            )
        info = self._inspect(certificate_pem)
        if (info.role, info.name) != (pki.ROLE_MEMBER, name):
            raise InvalidArgument(f"certificate_pem: the certificate is for {info.role} {quoted(info.name)}, not member {quoted(name)}")
        member = self._members.create(name, signing_public_key, key_id, info, actor=_actor(admin), now=self._clock())
        return Enrollment(member=member, certificate_pem=certificate_pem.encode(), key_id=key_id, certificate_sha256=info.sha256)

    def register_certificate(self, admin: Caller, certificate_pem: str) -> Certificate:
        """Admit a client certificate signed offline (re-issued, renewed, a named admin's or a probe's)."""
        return self._certificates.register(self._inspect(certificate_pem), actor=_actor(admin), now=self._clock())

    def list_certificates(self, role: str, include_revoked: bool) -> list[Certificate]:
        if role and role not in pki.ROLES:
            raise InvalidArgument(f"role {quoted(role)} is not one of {', '.join(sorted(pki.ROLES))} (or empty: all)")
        return self._certificates.list(role or None, include_revoked=include_revoked)

    def unregistered_issued_before(self) -> datetime | None:
        return self._certificates.unregistered_issued_before()

    def _inspect(self, certificate_pem: str) -> pki.CertificateInfo:
        if not certificate_pem:
            raise InvalidArgument("certificate_pem is required: the client certificate, signed offline by the registry's CA")
        try:
            info = pki.inspect_client_cert(self._ca_certificate, certificate_pem.encode(), self._clock())
        except pki.PkiError as error:
            raise InvalidArgument(f"certificate_pem: {error}") from error
        _check_member_name(info.name)
        return info

    def list_members(self) -> list[Member]:
        return self._members.list()

    def add_key(
        self, admin: Caller, member: str, public_key: bytes, valid_from: datetime | None = None, valid_until: datetime | None = None
    ) -> SigningKey:
        """Another signing key, usable from `valid_from` (default now) until `valid_until` (default: until revoked)."""
        now = self._clock()
        starts = valid_from or now
        if valid_until is not None and valid_until <= starts:
            raise InvalidArgument(f"valid_until {valid_until.isoformat()} is not after valid_from {starts.isoformat()}")
        return self._members.add_key(
            member, public_key, _key_id(public_key), valid_from=starts, valid_until=valid_until, actor=_actor(admin), now=now
        )

    def suspend(self, admin: Caller, member: str, reason: str) -> Member:
        _check_reason(reason, required=True)
        return self._members.set_status(member, MemberStatus.SUSPENDED, reason=reason, actor=_actor(admin), now=self._clock())

    def resume(self, admin: Caller, member: str, reason: str) -> Member:
        _check_reason(reason, required=True)
        return self._members.set_status(member, MemberStatus.ACTIVE, reason=reason, actor=_actor(admin), now=self._clock())

    def set_onboarding_volume(self, admin: Caller, member: str, per_day: int, reason: str) -> Member:
        _check_reason(reason, required=True)
        if not 0 < per_day <= MAX_ONBOARDING_PER_DAY:
            raise InvalidArgument(f"per_day: {per_day}; give the applicants the member onboards a day, 1 to {MAX_ONBOARDING_PER_DAY:,}")
        return self._members.set_onboarding_volume(member, per_day, reason=reason, actor=_actor(admin), now=self._clock())

    def audit_access(self, since: datetime | None, until: datetime | None, thresholds: Thresholds) -> AccessAudit:
        """Each member's volumes over [since, until) (default: the 7 days up to now) widened to whole
        hours, with what looks out of line."""
        until = until or self._clock()
        since = since or until - timedelta(days=7)
        if since >= until:
            raise InvalidArgument(f"since {since.isoformat()} is not before until {until.isoformat()}")
        since, until = hour_window(since, until)
        return audit(self._access.totals(since, until), self._access.declared_volumes(), since, until, thresholds)

    def revoke_certificate(self, admin: Caller, sha256: str, reason: str) -> RevokedCertificate:
        _check_reason(reason, required=True)
        fingerprint = sha256.strip().lower()
        if len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise InvalidArgument("certificate_sha256 must be 64 hex digits (the SHA-256 of the certificate's DER)")
        return self._certificates.revoke(fingerprint, reason=reason, actor=_actor(admin), now=self._clock())

    def revoke_key(self, admin: Caller, member: str, key_id: str) -> SigningKey:
        return self._members.revoke_key(member, key_id, actor=_actor(admin), now=self._clock())

    def list_reports(self, status: ReportStatus | None, page_size: int, page_token: str) -> Page[Report]:
        return self._reports.list(status, _page_size(page_size), page_token)

    def accept(self, admin: Caller, report_id: str, term_days: int, reason: str) -> tuple[Report, Listing]:
        if term_days < 0 or term_days > MAX_TERM_DAYS:
            raise InvalidArgument(f"term_days {term_days} is out of range 1..{MAX_TERM_DAYS} (0 means the default)")
        _check_reason(reason, required=False)
        if term_days == 0:
            term_days = self._terms.default_for(self._reports.get(report_id).severity)
        return self._listings.accept(
            report_id, term_days=term_days, reason=reason, actor=_actor(admin), now=self._clock(), notice_days=self._terms.notice_days
        )

    def reject(self, admin: Caller, report_id: str, reason: str) -> Report:
        _check_reason(reason, required=True)
        return self._listings.reject(report_id, reason=reason, actor=_actor(admin), now=self._clock())

    def lift(self, admin: Caller, listing_id: str, grounds: LiftGrounds, reason: str) -> Listing:
        """Credit repair (after the minimum period) or correction of a wrong listing, with a reason."""
        _check_reason(reason, required=True)
        not_before = self._terms.early_removal_after_days if grounds is LiftGrounds.CREDIT_REPAIR else 0
        return self._listings.lift(
            listing_id, grounds=grounds.value, reason=reason, not_before_days=not_before, actor=_actor(admin), now=self._clock()
        )

    def release(self, admin: Caller, listing_id: str, reason: str) -> Listing:
        """End the flood guard's quarantine of a listing the association found right."""
        _check_reason(reason, required=True)
        return self._listings.release(listing_id, reason=reason, actor=_actor(admin), now=self._clock())

    def record_objection(self, admin: Caller, listing_id: str, reason: str) -> Listing:
        _check_reason(reason, required=True)
        return self._listings.object(listing_id, reason=reason, actor=_actor(admin), now=self._clock())

    def file_appeal(self, admin: Caller, listing_id: str, reason: str) -> Appeal:
        _check_reason(reason, required=True)
        return self._appeals.file(listing_id, reason=reason, actor=_actor(admin), now=self._clock())

    def decide_appeal(self, admin: Caller, appeal_id: str, decision: AppealStatus, reason: str) -> Appeal:
        _check_reason(reason, required=True)
        if decision is AppealStatus.PENDING:
            raise InvalidArgument("decision: give APPEAL_STATUS_UPHELD (lifts the listing) or APPEAL_STATUS_DENIED")
        return self._appeals.decide(appeal_id, decision, reason=reason, actor=_actor(admin), now=self._clock())

    def list_listings(self, status: ListingStatus | None, page_size: int, page_token: str) -> Page[Listing]:
        return self._listings.list(status, _page_size(page_size), page_token, now=self._clock())

    def listing_reports(self, listings: Sequence[Listing]) -> list[ListingReport]:
        """What the reports behind `listings` say, in the listings' order and each listing's report order."""
        report_ids = [report_id for listing in listings for report_id in listing.report_ids]
        signed = self._listings.signed_reports(report_ids)
        return [listing_report(report_id, *signed[report_id]) for report_id in report_ids]

    def list_appeals(self, status: AppealStatus | None, page_size: int, page_token: str) -> Page[Appeal]:
        return self._appeals.list(status, _page_size(page_size), page_token)

    def review_queue(self, limit: int) -> list[ReviewItem]:
        """Disputed or appealed listings in force, those disputed by two or more members first."""
        return self._opinions.review_queue(_page_size(limit), now=self._clock())

    def detach_identifier(self, admin: Caller, subject_id: str, token_prefix: str, reason: str) -> Correction:
        _check_reason(reason, required=True)
        return self._corrections.detach(subject_id, token_prefix, reason=reason, actor=_actor(admin), now=self._clock())

    def split_subject(self, admin: Caller, subject_id: str, report_ids: Sequence[str], reason: str) -> Correction:
        _check_reason(reason, required=True)
        return self._corrections.split(subject_id, report_ids, reason=reason, actor=_actor(admin), now=self._clock())

    def subject(self, subject_id: str) -> SubjectRecord:
        return self._subjects.show(subject_id, now=self._clock())

    def list_events(self, which: EventFilter, page_size: int, page_token: str) -> Page[HistoryEntry]:
        """The event log oldest first, of one actor, kinds with a prefix, occurred in [since, until)."""
        # As long as the event log's columns: nothing longer names an actor or a kind.
        for field_name, value, most in (("actor", which.actor, 80), ("kind_prefix", which.kind_prefix, 40)):
            if len(value) > most:
                raise InvalidArgument(f"{field_name}: {len(value)} characters, at most {most} (no {field_name} is longer)")
        if which.since is not None and which.until is not None and which.since >= which.until:
            raise InvalidArgument(f"since {which.since.isoformat()} is not before until {which.until.isoformat()}")
        return self._events.list(which, _page_size(page_size), page_token)


def _actor(admin: Caller) -> str:
    return f"admin:{admin.name}"


def _key_id(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise InvalidArgument(f"signing public key: {len(public_key)} bytes, a raw Ed25519 public key is 32 bytes")
    return dsse.key_id(public_key)


def _check_member_name(name: str) -> None:
    """The rule for every name a certificate carries: members', admins' and probes'."""
    if not MEMBER_NAME.fullmatch(name):
        raise InvalidArgument(
            f"name {quoted(name)} is not valid: 2-63 characters, lower-case letters, digits and '-', starting with a letter or digit"
        )


def _check_reason(reason: str, *, required: bool) -> None:
    if required and not reason.strip():
        raise InvalidArgument("reason is required: say why, it is recorded and shown to the reporter")
    if len(reason) > MAX_REASON:
        raise InvalidArgument(f"reason: {len(reason)} characters, at most {MAX_REASON} are allowed")


def _page_size(requested: int) -> int:
    if requested > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size {requested} is larger than {MAX_PAGE_SIZE}")
    return requested or DEFAULT_PAGE_SIZE
