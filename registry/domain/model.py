"""The registry's domain vocabulary: plain values, no storage, no grpc."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Role(enum.Enum):
    MERCHANT = "MERCHANT"
    ANCHOR = "ANCHOR"
    MCN_INSTITUTION = "MCN_INSTITUTION"


class Category(enum.Enum):
    COUNTERFEIT_OR_SUBSTANDARD_GOODS = "COUNTERFEIT_OR_SUBSTANDARD_GOODS"
    FALSE_ADVERTISING = "FALSE_ADVERTISING"
    PROHIBITED_GOODS = "PROHIBITED_GOODS"
    FRAUD = "FRAUD"
    FAKE_SALES_OR_TRAFFIC = "FAKE_SALES_OR_TRAFFIC"
    CONSUMER_RIGHTS_VIOLATION = "CONSUMER_RIGHTS_VIOLATION"
    QUALIFICATION_FRAUD = "QUALIFICATION_FRAUD"
    ILLEGAL_CONTENT = "ILLEGAL_CONTENT"
    TAX_EVASION = "TAX_EVASION"
    IP_INFRINGEMENT = "IP_INFRINGEMENT"
    OTHER_SERIOUS = "OTHER_SERIOUS"


class Severity(enum.Enum):
    SERIOUS = "SERIOUS"
    SEVERE = "SEVERE"

    @property
    def rank(self) -> int:
        return 2 if self is Severity.SEVERE else 1


class IdentifierType(enum.Enum):
    CN_RIC = "cn_ric"
    CN_USCC = "cn_uscc"
    PASSPORT = "passport"
    PHONE = "phone"
    EMAIL = "email"
    PLATFORM_ACCOUNT = "platform_account"

    @property
    def strong(self) -> bool:
        """Strong identifiers link and merge subjects; weak ones only attach."""
        return self in _STRONG


_STRONG = frozenset({IdentifierType.CN_RIC, IdentifierType.CN_USCC, IdentifierType.PASSPORT})


class ReportStatus(enum.Enum):
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    RETRACTED = "RETRACTED"


class ListingStatus(enum.Enum):
    PENDING_NOTICE = "PENDING_NOTICE"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    LIFTED = "LIFTED"


class MemberStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class Verdict(enum.Enum):
    """Ordered: a result's verdict is the most serious of its matches."""

    CLEAR = 1
    REVIEW = 2
    DENY = 3


class MatchReason(enum.Enum):
    ACTIVE_LISTING = "ACTIVE_LISTING"
    REPORT_UNDER_REVIEW = "REPORT_UNDER_REVIEW"
    NOTICE_PERIOD = "NOTICE_PERIOD"


@dataclass(frozen=True)
class Token:
    """A pseudonymous identifier: the 64-byte OPRF output and its type."""

    type: IdentifierType
    value: bytes


@dataclass(frozen=True)
class Caller:
    """Who is calling, taken from the client certificate only."""

    role: str  # "member" or "admin"
    name: str
    certificate_sha256: str = ""


@dataclass(frozen=True)
class ReportPayload:
    """A verified, parsed and validated report payload."""

    report_id: str
    reporter: str
    registry: str
    created_at: datetime
    role: Role
    tokens: tuple[Token, ...]
    category: Category
    severity: Severity
    occurred_at: datetime | None
    platform_action: str
    summary: str
    display_name: str
    evidence_sha256: bytes


@dataclass(frozen=True)
class Receipt:
    report_id: str
    subject_id: str
    status: ReportStatus
    received_at: datetime
    envelope_sha256: bytes


@dataclass(frozen=True)
class Report:
    report_id: str
    reporter: str
    status: ReportStatus
    subject_id: str
    role: Role
    category: Category
    severity: Severity
    created_at: datetime
    received_at: datetime
    decided_at: datetime | None
    decided_by: str
    decision_reason: str
    listing_id: str
    envelope: bytes
    envelope_sha256: bytes


@dataclass(frozen=True)
class Listing:
    listing_id: str
    subject_id: str
    status: ListingStatus
    roles: tuple[Role, ...]
    categories: tuple[Category, ...]
    severity: Severity
    listed_from: datetime
    listed_until: datetime
    reporting_platforms: int
    report_ids: tuple[str, ...]


class LiftGrounds(enum.Enum):
    """Why a listing ends before its term: credit repair (after a minimum period) or a wrong listing."""

    CREDIT_REPAIR = "CREDIT_REPAIR"
    ADMIN_CORRECTION = "ADMIN_CORRECTION"


class AppealStatus(enum.Enum):
    PENDING = "PENDING"
    UPHELD = "UPHELD"
    DENIED = "DENIED"


@dataclass(frozen=True)
class Appeal:
    appeal_id: str
    listing_id: str
    status: AppealStatus
    reason: str
    filed_at: datetime
    filed_by: str
    decided_at: datetime | None
    decided_by: str
    decision_reason: str


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    public_key: bytes
    valid_from: datetime
    revoked_at: datetime | None
    valid_until: datetime | None = None  # None: until revoked

    def usable_at(self, when: datetime) -> bool:
        return self.valid_from <= when and (self.valid_until is None or when < self.valid_until)


@dataclass(frozen=True)
class Member:
    name: str
    status: MemberStatus
    created_at: datetime
    keys: tuple[SigningKey, ...] = ()
    onboarding_per_day: int | None = None  # declared applicants a day; None: not declared


@dataclass(frozen=True)
class Match:
    """One subject an applicant matched, as a lookup may reveal it."""

    subject_id: str
    reason: MatchReason
    strong_match: bool
    matched_types: tuple[IdentifierType, ...]
    roles: tuple[Role, ...]
    categories: tuple[Category, ...]
    severity: Severity
    listed_from: datetime | None
    listed_until: datetime | None
    reporting_platforms: int
    appeal_pending: bool = False
    listing_id: str = ""  # the listing matched ("" for a report under review)
    confirmations: int = 0  # members whose own audit confirmed it
    disputes: int = 0  # members whose own audit disputed it


@dataclass(frozen=True)
class LookupResult:
    verdict: Verdict
    matches: tuple[Match, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str


class ChangeKind(enum.Enum):
    """What happened to a listing, as the changes feed tells members."""

    CREATED = "CREATED"
    EXTENDED = "EXTENDED"
    ACTIVATED = "ACTIVATED"
    LIFTED = "LIFTED"
    EXPIRED = "EXPIRED"
    CORRECTED = "CORRECTED"


@dataclass(frozen=True)
class ListingChange:
    """One entry of the changes feed: `cursor` resumes after it.

    `listing` as it stood right after the change, without report ids (the feed
    never names who reported).
    """

    cursor: str
    kind: ChangeKind
    occurred_at: datetime
    listing: Listing
    tokens: tuple[Token, ...]


class Opinion(enum.Enum):
    """A member's finding about a listing its own entry audit matched."""

    CONFIRMED = "CONFIRMED"
    DISPUTED = "DISPUTED"


@dataclass(frozen=True)
class OpinionReceipt:
    listing_id: str
    opinion: Opinion
    recorded_at: datetime
    confirmations: int
    disputes: int


@dataclass(frozen=True)
class OpinionNote:
    """One member's opinion as the association sees it (admins only)."""

    member: str
    opinion: Opinion
    reason: str
    recorded_at: datetime
    listing_id: str = ""


@dataclass(frozen=True)
class ReviewItem:
    """A listing that needs the association's attention, and why."""

    listing: Listing
    confirmations: int
    disputes: int
    appeal_pending: bool
    opinions: tuple[OpinionNote, ...]


@dataclass(frozen=True)
class Correction:
    """What an admin correction changed, and why."""

    subject_id: str
    new_subject_id: str
    report_ids: tuple[str, ...]
    listing_ids: tuple[str, ...]
    reason: str
    corrected_at: datetime


@dataclass(frozen=True)
class SubjectIdentifier:
    type: IdentifierType
    token_prefix: str  # the first 16 hex digits: enough to name it, not to use it
    attached_at: datetime


@dataclass(frozen=True)
class SubjectMatch:
    member: str
    first_at: datetime
    last_at: datetime
    lookups: int


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    kind: str
    actor: str
    occurred_at: datetime
    report_id: str
    listing_id: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class SubjectRecord:
    """Everything the registry holds about one subject (an access request)."""

    subject_id: str
    created_at: datetime
    merged_into: str
    merged_subjects: tuple[str, ...]
    identifiers: tuple[SubjectIdentifier, ...]
    reports: tuple[Report, ...]
    listings: tuple[Listing, ...]
    appeals: tuple[Appeal, ...]
    opinions: tuple[OpinionNote, ...]
    matches: tuple[SubjectMatch, ...]
    history: tuple[HistoryEntry, ...]


@dataclass(frozen=True)
class RevokedCertificate:
    sha256: str
    revoked_at: datetime
    revoked_by: str
    reason: str
