"""Reports: submission with identity deduplication, reading, listing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from jpr_client.model import Category, Receipt, Report, ReportStatus, Role, Severity, Token
from jpr_client.quoting import quoted
from registry.domain.errors import AlreadyExists, InvalidArgument, NotFound
from registry.domain.model import Page, ReportPayload
from registry.store import events
from registry.store.database import Database
from registry.store.models import (
    ListingRow,
    MemberRow,
    ReportRow,
    ReportTokenRow,
    SubjectMergeRow,
    SubjectRow,
    SubjectTokenRow,
)
from registry.store.pages import decode_page_token, encode_page_token
from registry.store.refs import listing_ref, subject_ref


@dataclass(frozen=True)
class Submission:
    """A report that passed every check, ready to store."""

    payload: ReportPayload
    member_id: int
    key_id: str
    envelope: bytes
    envelope_sha256: bytes
    payload_sha256: bytes


class ReportStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def submit(self, submission: Submission, *, now: datetime) -> Receipt:
        """Store a report and link its tokens to one subject, in one transaction.

        Re-sending the same payload returns the stored receipt; other bytes under
        the same report id are refused.
        """
        return self._db.write(lambda session: file_report(session, submission, now))

    def receipt_for(self, reporter: str, payload_sha256: bytes) -> Receipt | None:
        """The stored receipt of this member's report with exactly these payload bytes, if any."""
        with self._db.session() as session:
            row = session.scalar(
                select(ReportRow)
                .join(MemberRow, MemberRow.id == ReportRow.member_id)
                .where(ReportRow.payload_sha256 == payload_sha256, MemberRow.name == reporter)
            )
            return None if row is None else _receipt(row)

    def get(self, report_id: str) -> Report:
        with self._db.session() as session:
            row = session.get(ReportRow, report_id)
            if row is None:
                raise NotFound(f"no report {quoted(report_id)}")
            return report_view(session, row)

    def list(self, status: ReportStatus | None, page_size: int, page_token: str) -> Page[Report]:
        after = decode_page_token(page_token)
        with self._db.session() as session:
            query = select(ReportRow).order_by(ReportRow.received_at, ReportRow.report_id).limit(page_size + 1)
            if status is not None:
                query = query.where(ReportRow.status == status.value)
            if after is not None:
                query = query.where(
                    (ReportRow.received_at > after[0])
                    | ((ReportRow.received_at == after[0]) & (ReportRow.report_id > after[1]))
                )
            rows = session.scalars(query).all()
            items = tuple(report_view(session, row) for row in rows[:page_size])
        more = len(rows) > page_size
        token = encode_page_token(items[-1].received_at, items[-1].report_id) if more and items else ""
        return Page(items=items, next_page_token=token)


def report_view(session: Session, row: ReportRow) -> Report:
    reporter = session.scalar(select(MemberRow.name).where(MemberRow.id == row.member_id))
    return Report(
        report_id=row.report_id,
        reporter=reporter or "",
        status=ReportStatus(row.status),
        subject_id=subject_ref(row.subject_id),
        role=Role(row.role),
        category=Category(row.category),
        severity=Severity(row.severity),
        created_at=row.created_at,
        received_at=row.received_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by or "",
        decision_reason=row.decision_reason or "",
        listing_id=listing_ref(row.listing_id),
        envelope=row.envelope,
        envelope_sha256=row.envelope_sha256,
    )


def _receipt(row: ReportRow) -> Receipt:
    return Receipt(
        report_id=row.report_id,
        subject_id=subject_ref(row.subject_id),
        status=ReportStatus(row.status),
        received_at=row.received_at,
        envelope_sha256=row.envelope_sha256,
    )


def file_report(session: Session, submission: Submission, now: datetime, *, unused_id: bool = False) -> Receipt:
    """Store a checked report in the session's transaction (`ReportStore.submit`).

    `unused_id`: the caller has just seen that no report holds this id (ImportReports reads a batch's at once).
    """
    payload = submission.payload
    existing = None if unused_id else session.get(ReportRow, payload.report_id)
    if existing is not None:
        if existing.payload_sha256 == submission.payload_sha256 and existing.member_id == submission.member_id:
            return _receipt(existing)
        raise AlreadyExists(
            f"report id {payload.report_id} is already used by another report; "
            "choose a new report id (re-sending the same signed payload is safe)"
        )
    # One read of every subject the report's tokens are attached to serves the three steps.
    attached = session.execute(
        select(SubjectTokenRow.token, SubjectTokenRow.id_type, SubjectTokenRow.subject_id, SubjectTokenRow.strong)
        .where(SubjectTokenRow.token.in_([t.value for t in payload.tokens]))
    ).all()
    _check_declared_types(attached, payload.tokens)
    subject_id, merged = _resolve_subject(session, payload, attached, now)
    _attach_tokens(session, subject_id, payload.tokens, now, None if merged else {bytes(a.token) for a in attached if a.subject_id == subject_id})
    row = ReportRow(
        report_id=payload.report_id,
        member_id=submission.member_id,
        subject_id=subject_id,
        status=ReportStatus.SUBMITTED.value,
        role=payload.role.value,
        category=payload.category.value,
        severity=payload.severity.value,
        created_at=payload.created_at,
        received_at=now,
        key_id=submission.key_id,
        envelope=submission.envelope,
        envelope_sha256=submission.envelope_sha256,
        payload_sha256=submission.payload_sha256,
    )
    session.add(row)
    session.flush()
    session.add_all(
        ReportTokenRow(report_id=payload.report_id, token=t.value, id_type=t.type.value, strong=t.type.strong)
        for t in payload.tokens
    )
    events.record(
        session,
        at=now,
        actor=f"member:{payload.reporter}",
        kind="report.submitted",
        report_id=payload.report_id,
        subject_id=subject_id,
    )
    return _receipt(row)


def _check_declared_types(attached: Sequence[Any], tokens: tuple[Token, ...]) -> None:
    """A token keeps the type it was first reported with: its type decides whether it merges."""
    declared = {t.value: t.type.value for t in tokens}
    for token, id_type, *_ in attached:
        if declared[bytes(token)] != id_type:
            raise InvalidArgument(
                f"an identifier declared {declared[token]} is already registered as {id_type}; "
                "declare each token with the type it was computed for"
            )


def _resolve_subject(session: Session, payload: ReportPayload, attached: Sequence[Any], now: datetime) -> tuple[int, bool]:
    """The subject the report's strong tokens point to, merging when they touch several; and whether it merged."""
    strong = {t.value for t in payload.tokens if t.type.strong}
    found = sorted({a.subject_id for a in attached if a.strong and bytes(a.token) in strong})
    if not found:
        subject = SubjectRow(created_at=now)
        session.add(subject)
        session.flush()
        events.record(session, at=now, actor="registry", kind="subject.created", subject_id=subject.id, report_id=payload.report_id)
        return subject.id, False
    survivor, *merged = found  # the oldest subject id survives
    for other in merged:
        _merge(session, survivor, other, payload.report_id, now)
    return survivor, bool(merged)


def _merge(session: Session, survivor: int, merged: int, report_id: str, now: datetime) -> None:
    """Fold subject `merged` into `survivor`: its tokens, reports and listings move; it redirects."""
    survivor_weak = select(SubjectTokenRow.token).where(SubjectTokenRow.subject_id == survivor)
    session.execute(
        delete(SubjectTokenRow).where(SubjectTokenRow.subject_id == merged, SubjectTokenRow.token.in_(survivor_weak))
    )
    session.execute(update(SubjectTokenRow).where(SubjectTokenRow.subject_id == merged).values(subject_id=survivor))
    session.execute(update(ReportRow).where(ReportRow.subject_id == merged).values(subject_id=survivor))
    session.execute(update(ListingRow).where(ListingRow.subject_id == merged).values(subject_id=survivor))
    session.execute(update(SubjectRow).where(SubjectRow.merged_into == merged).values(merged_into=survivor))
    session.execute(update(SubjectRow).where(SubjectRow.id == merged).values(merged_into=survivor, merged_at=now))
    session.add(SubjectMergeRow(survivor_id=survivor, merged_id=merged, report_id=report_id, merged_at=now))
    events.record(
        session,
        at=now,
        actor="registry",
        kind="subject.merged",
        report_id=report_id,
        subject_id=survivor,
        merged_subject=subject_ref(merged),
    )


def _attach_tokens(session: Session, subject_id: int, tokens: tuple[Token, ...], now: datetime, present: set[bytes] | None) -> None:
    """Attach the tokens the subject does not hold yet; `present`: those it holds, unless a merge just moved some."""
    if present is None:
        values = [t.value for t in tokens]
        present = {
            bytes(token) for token in session.scalars(
                select(SubjectTokenRow.token).where(SubjectTokenRow.subject_id == subject_id, SubjectTokenRow.token.in_(values))
            )
        }
    for token in tokens:
        if token.value in present:
            continue
        present.add(token.value)
        session.add(
            SubjectTokenRow(
                token=token.value,
                id_type=token.type.value,
                strong=token.type.strong,
                subject_id=subject_id,
                attached_at=now,
            )
        )
