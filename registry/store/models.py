"""SQLAlchemy models: the registry's tables.

Raw identifiers never appear here: only OPRF tokens. `events` is append-only;
every state change writes its row in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC, returned aware: SQLite keeps no zone."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class MemberRow(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Applicants the platform declares it onboards a day: the yardstick for its lookup volume.
    onboarding_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MemberKeyRow(Base):
    __tablename__ = "member_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SubjectRow(Base):
    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A merged subject redirects to the survivor; its links moved there.
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"), nullable=True, index=True)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SubjectTokenRow(Base):
    """A token attached to a subject. A strong token belongs to one subject only."""

    __tablename__ = "subject_tokens"
    __table_args__ = (
        UniqueConstraint("token", "subject_id"),
        Index(
            "ix_subject_tokens_strong_token",
            "token",
            unique=True,
            sqlite_where=text("strong"),
            postgresql_where=text("strong"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[bytes] = mapped_column(LargeBinary(64))
    id_type: Mapped[str] = mapped_column(String(32))
    strong: Mapped[bool] = mapped_column(Boolean)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportTokenRow(Base):
    """Which tokens each report asserted, with the type its signed payload declared.

    Verdicts follow these links: a token counts against a subject only through
    a report that is under review or accepted, never through a rejected one.
    """

    __tablename__ = "report_tokens"

    report_id: Mapped[str] = mapped_column(ForeignKey("reports.report_id"), primary_key=True)
    token: Mapped[bytes] = mapped_column(LargeBinary(64), primary_key=True, index=True)
    id_type: Mapped[str] = mapped_column(String(32))
    strong: Mapped[bool] = mapped_column(Boolean)


class SubjectMergeRow(Base):
    __tablename__ = "subject_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    merged_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), unique=True)
    report_id: Mapped[str] = mapped_column(String(36))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportRow(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_subject_status", "subject_id", "status"),)

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    role: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(ForeignKey("member_keys.key_id"))
    # The DSSE envelope exactly as the platform sent it: anyone can re-verify it.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    envelope_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    payload_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(63), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id"), nullable=True, index=True)
    # The end this report's acceptance gave its listing (its term from then): when a report stops
    # supporting a listing, the listing ends at the latest of the others' (ListingStore.recompute).
    term_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RetractionRow(Base):
    """A reporter's signed withdrawal of its report, kept verbatim like the report."""

    __tablename__ = "report_retractions"

    report_id: Mapped[str] = mapped_column(ForeignKey("reports.report_id"), primary_key=True)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ListingRow(Base):
    __tablename__ = "listings"
    __table_args__ = (Index("ix_listings_subject_status", "subject_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    status: Mapped[str] = mapped_column(String(16))
    listed_from: Mapped[datetime] = mapped_column(UTCDateTime)
    listed_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set by the flood guard (registry/domain/flood.py) with the figures that tripped it; lookups
    # answer REVIEW (QUARANTINED) instead of DENY until an admin releases or lifts the listing.
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    quarantine: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AppealRow(Base):
    """One appeal against a listing, filed by the association on the subject's behalf."""

    __tablename__ = "appeals"
    __table_args__ = (Index("ix_appeals_listing_status", "listing_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    filed_by: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class OpinionRow(Base):
    """A member's view of a listing its own entry audit matched: one per member and listing."""

    __tablename__ = "opinions"

    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    opinion: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubjectMatchRow(Base):
    """Which member's lookups matched which subject, and when (for opinions and access requests)."""

    __tablename__ = "subject_matches"

    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lookups: Mapped[int] = mapped_column(Integer)


class AccessCountRow(Base):
    """Calls per member, hour and method, from the access log: what `jpr admin audit access` reads.

    `items`: the elements a Tokenize asked for, the applicants a lookup asked about.
    `matched`: the applicants that matched a subject. No token or identifier is kept.
    """

    __tablename__ = "access_counts"
    __table_args__ = (Index("ix_access_counts_hour", "hour"),)

    member: Mapped[str] = mapped_column(String(63), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    method: Mapped[str] = mapped_column(String(80), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)


class RevokedCertificateRow(Base):
    """A client certificate refused from `revoked_at` on, by the SHA-256 of its DER."""

    __tablename__ = "revoked_certificates"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)


class CertificateRow(Base):
    """A client certificate the registry admits, by the SHA-256 of its DER: signed offline by the
    registry's CA, then registered. Its role and name are the certificate's own OU and CN."""

    __tablename__ = "certificates"
    __table_args__ = (Index("ix_certificates_role_name", "role", "name"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(63))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_by: Mapped[str] = mapped_column(String(80))


class CertificatePolicyRow(Base):
    """One row (id 1). Certificates the registry signed itself before it registered certificates
    (schema 0009) are admitted unregistered if signed before `unregistered_issued_before`."""

    __tablename__ = "certificate_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unregistered_issued_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EventRow(Base):
    """Append-only history: one row per state change, written with it."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))  # not indexed: a search by kind reads every event of it (migration 0012)
    report_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    subject_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    listing_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The transparency log's leaf commits to SHA-256(salt || canonical event): whoever lacks the salt learns nothing.
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class RateBucketRow(Base):
    """A member's shared rate-limit bucket of one kind (registry/domain/limits.py): every replica and
    process leases from it. Seconds on the replicas' clocks (Unix time), not a timestamp column:
    the limiter's arithmetic is in seconds, and fractions of one matter."""

    __tablename__ = "rate_buckets"

    member: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


class LogStateRow(Base):
    """Two counters of the transparency log (registry/store/log.py). "assigned": leaves given an
    index, by the transactions that committed them; "integrated": leaves in the tree, whose root
    it holds. Separate rows, so that writers and the sequencer never wait for each other."""

    __tablename__ = "log_state"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)


class LogLeafRow(Base):
    """One leaf per event, its index assigned as its transaction commits: indexes have no gaps."""

    __tablename__ = "log_leaves"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogPendingRow(Base):
    """An event committed but not yet given its leaf index: written by the event's own transaction (an
    insert, so concurrent writers never wait for one another), numbered and moved to log_leaves by the
    sequencer, in the order it finds them committed (registry/store/log.py)."""

    __tablename__ = "log_pending"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogNodeRow(Base):
    """Every complete subtree's hash (level 0: the leaf hashes): any proof is O(log n) of these."""

    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogCheckpointRow(Base):
    """A signed checkpoint (C2SP tlog-checkpoint note), one per tree size, signed once its leaves were durable."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LogCosignatureRow(Base):
    """A witness's tlog-cosignature/v1 line over the checkpoint of `size`, verified when stored."""

    __tablename__ = "log_cosignatures"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    line: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WitnessRow(Base):
    """A witness whose cosignatures the registry accepts while it is current (removed_at unset)."""

    __tablename__ = "witnesses"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    verifier_key: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
