"""The vocabulary the registry and its members share: the protocol's enums and the values the SDK returns.

Plain frozen dataclasses, no grpc and no protobuf: the registry's domain builds
on them, and the SDK converts every answer into them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


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


class Verdict(enum.Enum):
    """Ordered: a result's verdict is the most serious of its matches."""

    CLEAR = 1
    REVIEW = 2
    DENY = 3


class MatchReason(enum.Enum):
    ACTIVE_LISTING = "ACTIVE_LISTING"
    REPORT_UNDER_REVIEW = "REPORT_UNDER_REVIEW"
    NOTICE_PERIOD = "NOTICE_PERIOD"
    QUARANTINED = "QUARANTINED"  # the flood guard holds the listing: review the applicant, do not deny


@dataclass(frozen=True)
class Token:
    """A pseudonymous identifier: the 64-byte OPRF output and its type."""

    type: IdentifierType
    value: bytes


@dataclass(frozen=True)
class Receipt:
    report_id: str
    subject_id: str
    status: ReportStatus
    received_at: datetime
    envelope_sha256: bytes
    event_seq: int = 0  # the report.submitted event: GetLogEntry(event_seq) proves it (0: a registry without a log)


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


class ChangeKind(enum.Enum):
    """What happened to a listing, as the changes feed tells members."""

    CREATED = "CREATED"
    EXTENDED = "EXTENDED"
    ACTIVATED = "ACTIVATED"
    LIFTED = "LIFTED"
    EXPIRED = "EXPIRED"
    CORRECTED = "CORRECTED"
    SHORTENED = "SHORTENED"
    QUARANTINED = "QUARANTINED"
    RELEASED = "RELEASED"


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
