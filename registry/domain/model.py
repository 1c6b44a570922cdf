"""The registry's domain vocabulary: plain values, no storage, no grpc.

The values members see too (roles, categories, tokens, listings, verdicts...)
live in the SDK's `jpr_client.model`; these are the registry's own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from jpr_client.model import Category, IdentifierType, Listing, Opinion, Report, Role, Severity, Token

T = TypeVar("T")


class MemberStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


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


class ImportOutcome(enum.Enum):
    """What became of one imported report."""

    IMPORTED = "IMPORTED"  # filed and accepted now
    ALREADY_PRESENT = "ALREADY_PRESENT"  # the member had filed this report id before: nothing changed
    REFUSED = "REFUSED"


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
class Certificate:
    """A registered client certificate: the registry admits it until it expires or is revoked."""

    sha256: str
    role: str
    name: str
    not_before: datetime
    not_after: datetime
    registered_at: datetime
    registered_by: str
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Member:
    name: str
    status: MemberStatus
    created_at: datetime
    keys: tuple[SigningKey, ...] = ()
    onboarding_per_day: int | None = None  # declared applicants a day; None: not declared
    certificates: tuple[Certificate, ...] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str


@dataclass(frozen=True)
class OpinionNote:
    """One member's opinion as the association sees it (admins only)."""

    member: str
    opinion: Opinion
    reason: str
    recorded_at: datetime
    listing_id: str = ""


@dataclass(frozen=True)
class Quarantine:
    """What tripped the flood guard (registry/domain/flood.py)."""

    quarantined_at: datetime
    matches: int
    platforms: int
    window_minutes: int
    own_hourly: float
    median_hourly: float
    explanation: str


@dataclass(frozen=True)
class ReviewItem:
    """A listing that needs the association's attention, and why."""

    listing: Listing
    confirmations: int
    disputes: int
    appeal_id: str  # the pending appeal, "" when none
    opinions: tuple[OpinionNote, ...]
    quarantine: Quarantine | None = None

    @property
    def appeal_pending(self) -> bool:
        return bool(self.appeal_id)


@dataclass(frozen=True)
class ListingReport:
    """What an accepted report behind a listing says, from its signed payload (never its tokens or evidence)."""

    report_id: str
    reporter: str
    display_name: str
    summary: str
    platform_action: str


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
    """One event of the log, its detail as recorded."""

    seq: int
    kind: str
    actor: str
    occurred_at: datetime
    report_id: str
    listing_id: str
    detail: dict[str, Any]
    subject_id: str = ""


@dataclass(frozen=True)
class EventFilter:
    """Which events `ListEvents` answers: empty strings and None match every event."""

    actor: str = ""
    kind_prefix: str = ""
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


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
