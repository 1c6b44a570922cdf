"""Reports: submission with identity deduplication, reading, listing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from jpr_client.model import Category, Receipt, Report, ReportStatus, Role, Severity, Token
from jpr_client.quoting import quoted
from registry.domain.errors import AlreadyExists, InvalidArgument, NotFound
from registry.domain.model import Page, ReportPayload, SigningKey
from registry.store import events, members
from registry.store.database import Database
from registry.store.grouping import GroupWriter
from registry.store.models import (
    EventRow,
    ListingRow,
    MemberRow,
    ReportRow,
    ReportTokenRow,
    SubjectMergeRow,
    SubjectRow,
    SubjectTokenRow,
)
from registry.store.prepared import Prepared
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
        self._writer = GroupWriter(db)

    def submit(self, submission: Submission, *, now: datetime) -> Receipt:
        """Store a report and link its tokens to one subject, in one transaction (shared with the
        reports submitted at the same moment: grouping.py; each is answered after the commit).

        Re-sending the same payload returns the stored receipt; other bytes under
        the same report id are refused.
        """
        return self._writer.write(lambda session: file_report(session, submission, now))

    def receipt_or_key(self, reporter: str, payload_sha256: bytes, key_id: str) -> Receipt | tuple[int, SigningKey] | None:
        """In one read: the stored receipt of this member's report with exactly these payload bytes,
        else the member's id and its signing key `key_id` (`MemberStore.signing_key`), else None."""
        with self._db.read() as conn:
            for row in _RECEIPT_OF.rows(conn, {"payload_sha256": payload_sha256}):
                if row.reporter == reporter:
                    return _receipt(conn, row)
            return members.signing_key(conn, reporter, key_id)

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


def _receipt(conn: Connection, row: Any) -> Receipt:
    """The receipt of a stored report, from a row of its columns (`_STORED`)."""
    kinds = _EVENTS_OF_REPORT.rows(conn, {"report_id": row.report_id})
    return Receipt(
        report_id=row.report_id,
        subject_id=subject_ref(row.subject_id),
        status=ReportStatus(row.status),
        received_at=row.received_at,
        envelope_sha256=row.envelope_sha256,
        event_seq=min((seq for seq, kind in kinds if kind == "report.submitted"), default=0),
    )


def file_report(session: Session, submission: Submission, now: datetime, *, unused_id: bool = False) -> Receipt:
    """Store a checked report in the session's transaction (`ReportStore.submit`).

    Prebuilt Core statements on the session's connection: the fewest statements a new
    report needs (one read of its id, one of its tokens' subjects, then the inserts).
    `unused_id`: the caller has just seen that no report holds this id (ImportReports reads a batch's at once).
    """
    session.flush()  # ORM changes made earlier in this transaction reach the database before these statements
    conn = session.connection()
    payload = submission.payload
    existing = None if unused_id else next(iter(_FILED_UNDER.rows(conn, {"report_id": payload.report_id})), None)
    if existing is not None:
        if existing.payload_sha256 == submission.payload_sha256 and existing.member_id == submission.member_id:
            return _receipt(conn, existing)
        raise AlreadyExists(
            f"report id {payload.report_id} is already used by another report; "
            "choose a new report id (re-sending the same signed payload is safe)"
        )
    # One read of every subject the report's tokens are attached to serves the three steps.
    attached = _ATTACHED.rows(conn, {"tokens": [t.value for t in payload.tokens]})
    _check_declared_types(attached, payload.tokens)
    subject_id, merged = _resolve_subject(session, payload, attached, now)
    _attach_tokens(conn, subject_id, payload.tokens, now, None if merged else {bytes(a.token) for a in attached if a.subject_id == subject_id})
    _INSERT_REPORT.execute(conn, {
        "report_id": payload.report_id, "member_id": submission.member_id, "subject_id": subject_id,
        "status": ReportStatus.SUBMITTED.value, "role": payload.role.value, "category": payload.category.value,
        "severity": payload.severity.value, "created_at": payload.created_at, "received_at": now,
        "key_id": submission.key_id, "envelope": submission.envelope, "envelope_sha256": submission.envelope_sha256,
        "payload_sha256": submission.payload_sha256,
    })
    _INSERT_REPORT_TOKENS.execute(conn, [
        {"report_id": payload.report_id, "token": t.value, "id_type": t.type.value, "strong": t.type.strong} for t in payload.tokens
    ])
    seq = events.record(
        session,
        at=now,
        actor=f"member:{payload.reporter}",
        kind="report.submitted",
        report_id=payload.report_id,
        subject_id=subject_id,
        envelope_sha256=submission.envelope_sha256.hex(),  # the leaf commits to the envelope stored
        status=ReportStatus.SUBMITTED.value,
    )
    return Receipt(
        report_id=payload.report_id, subject_id=subject_ref(subject_id), status=ReportStatus.SUBMITTED,
        received_at=now, envelope_sha256=submission.envelope_sha256, event_seq=seq or 0,
    )


# The write path's statements run on the driver's cursor (prepared.py). Its reads name one key column each, so that SQLite, which plans without statistics, cannot
# search by a column many rows share instead: the reporter (every report of that member) or an event's kind
# (every report's). tests/integration/test_query_plans.py holds them to it.
_STORED = (
    ReportRow.report_id, ReportRow.payload_sha256, ReportRow.member_id, ReportRow.subject_id, ReportRow.status,
    ReportRow.received_at, ReportRow.envelope_sha256,
)
_FILED_UNDER = Prepared(select(*_STORED).where(ReportRow.report_id == bindparam("report_id")))
# The reports stored with these payload bytes (one, but for a payload another member had signed), each with its reporter.
_RECEIPT_OF = Prepared(select(
    *_STORED, select(MemberRow.name).where(MemberRow.id == ReportRow.member_id).correlate(ReportRow).scalar_subquery().label("reporter")
).where(ReportRow.payload_sha256 == bindparam("payload_sha256")))
# A report's events: its receipt's event_seq is the report.submitted one's, also when the report is sent again.
_EVENTS_OF_REPORT = Prepared(select(EventRow.seq, EventRow.kind).where(EventRow.report_id == bindparam("report_id")))
_ATTACHED = Prepared(select(SubjectTokenRow.token, SubjectTokenRow.id_type, SubjectTokenRow.subject_id, SubjectTokenRow.strong).where(
    SubjectTokenRow.token.in_(bindparam("tokens", expanding=True))
))
_HELD_BY_SUBJECT = Prepared(select(SubjectTokenRow.token).where(
    SubjectTokenRow.subject_id == bindparam("subject_id"), SubjectTokenRow.token.in_(bindparam("tokens", expanding=True))
))
_INSERT_REPORT = Prepared(insert(ReportRow))
_INSERT_REPORT_TOKENS = Prepared(insert(ReportTokenRow))
_INSERT_SUBJECT = Prepared(insert(SubjectRow).returning(SubjectRow.id))
_INSERT_SUBJECT_TOKENS = Prepared(insert(SubjectTokenRow))
_INSERT_MERGE = insert(SubjectMergeRow)
# A merge, in order: the merged subject's tokens the survivor holds too go, the rest move, then its reports
# and listings; subjects merged earlier into it follow it to the survivor (ix_subjects_merged_into); it redirects.
_MERGE_STATEMENTS = (
    delete(SubjectTokenRow).where(
        SubjectTokenRow.subject_id == bindparam("merged"),
        SubjectTokenRow.token.in_(select(SubjectTokenRow.token).where(SubjectTokenRow.subject_id == bindparam("survivor"))),
    ),
    update(SubjectTokenRow).where(SubjectTokenRow.subject_id == bindparam("merged")).values(subject_id=bindparam("survivor")),
    update(ReportRow).where(ReportRow.subject_id == bindparam("merged")).values(subject_id=bindparam("survivor")),
    update(ListingRow).where(ListingRow.subject_id == bindparam("merged")).values(subject_id=bindparam("survivor")),
    update(SubjectRow).where(SubjectRow.merged_into == bindparam("merged")).values(merged_into=bindparam("survivor")),
    update(SubjectRow).where(SubjectRow.id == bindparam("merged")).values(merged_into=bindparam("survivor"), merged_at=bindparam("at")),
)


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
        subject_id: int = _INSERT_SUBJECT.scalar(session.connection(), {"created_at": now})
        events.record(session, at=now, actor="registry", kind="subject.created", subject_id=subject_id, report_id=payload.report_id)
        return subject_id, False
    survivor, *merged = found  # the oldest subject id survives
    for other in merged:
        _merge(session, survivor, other, payload.report_id, now)
    return survivor, bool(merged)


def _merge(session: Session, survivor: int, merged: int, report_id: str, now: datetime) -> None:
    """Fold subject `merged` into `survivor`: its tokens, reports and listings move; it redirects."""
    conn = session.connection()
    for statement in _MERGE_STATEMENTS:
        conn.execute(statement, {"merged": merged, "survivor": survivor, "at": now})
    conn.execute(_INSERT_MERGE, {"survivor_id": survivor, "merged_id": merged, "report_id": report_id, "merged_at": now})
    # Core statements bypass the ORM: rows an earlier item of the same transaction loaded (ImportReports
    # accepts through the ORM) are read again when next used, with their new subject. Nothing unsaved is
    # lost: file_report flushed before its first statement.
    session.expire_all()
    events.record(
        session,
        at=now,
        actor="registry",
        kind="subject.merged",
        report_id=report_id,
        subject_id=survivor,
        merged_subject=subject_ref(merged),
    )


def _attach_tokens(conn: Connection, subject_id: int, tokens: tuple[Token, ...], now: datetime, present: set[bytes] | None) -> None:
    """Attach the tokens the subject does not hold yet; `present`: those it holds, unless a merge just moved some."""
    if present is None:
        present = {bytes(t) for t, in _HELD_BY_SUBJECT.rows(conn, {"subject_id": subject_id, "tokens": [t.value for t in tokens]})}
    rows = []
    for token in tokens:
        if token.value in present:
            continue
        present.add(token.value)
        rows.append({"token": token.value, "id_type": token.type.value, "strong": token.type.strong, "subject_id": subject_id, "attached_at": now})
    if rows:
        _INSERT_SUBJECT_TOKENS.execute(conn, rows)
