"""Members (platforms) and their signing keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jpr_client.quoting import quoted
from registry.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from registry.crypto.pki import CertificateInfo
from registry.domain.model import Member, MemberStatus, SigningKey
from registry.store import certificates, events
from registry.store.database import Database
from registry.store.models import MemberKeyRow, MemberRow
from registry.store.prepared import Prepared


class MemberStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, public_key: bytes, key_id: str, certificate: CertificateInfo, *, actor: str, now: datetime) -> Member:
        """A new member with its signing key and its first client certificate, in one transaction."""

        def work(session: Session) -> Member:
            if session.scalar(select(MemberRow.id).where(MemberRow.name == name)) is not None:
                raise AlreadyExists(f"member {quoted(name)} already exists")
            if session.get(MemberKeyRow, key_id) is not None:
                raise AlreadyExists(f"signing key {key_id} is already registered")
            member = MemberRow(name=name, status=MemberStatus.ACTIVE.value, created_at=now)
            session.add(member)
            session.flush()
            session.add(MemberKeyRow(key_id=key_id, member_id=member.id, public_key=public_key, valid_from=now))
            events.record(session, at=now, actor=actor, kind="member.created", member=name, key_id=key_id)
            certificates.add(session, certificate, actor=actor, now=now)
            return _member(session, member)

        try:
            return self._db.write(work)
        except IntegrityError as error:
            raise AlreadyExists(f"member {quoted(name)} or its key is already registered") from error

    def list(self) -> list[Member]:
        with self._db.session() as session:
            rows = session.scalars(select(MemberRow).order_by(MemberRow.name)).all()
            return [_member(session, row) for row in rows]

    def add_key(
        self, name: str, public_key: bytes, key_id: str, *, valid_from: datetime, valid_until: datetime | None, actor: str, now: datetime
    ) -> SigningKey:
        def work(session: Session) -> SigningKey:
            member = _get(session, name)
            if session.get(MemberKeyRow, key_id) is not None:
                raise AlreadyExists(f"signing key {key_id} is already registered")
            row = MemberKeyRow(key_id=key_id, member_id=member.id, public_key=public_key, valid_from=valid_from, valid_until=valid_until)
            session.add(row)
            events.record(session, at=now, actor=actor, kind="member.key_added", member=name, key_id=key_id,
                          valid_from=valid_from.isoformat(), valid_until=valid_until.isoformat() if valid_until else None)
            return _key(row)

        return self._db.write(work)

    def revoke_key(self, name: str, key_id: str, *, actor: str, now: datetime) -> SigningKey:
        def work(session: Session) -> SigningKey:
            member = _get(session, name)
            row = session.get(MemberKeyRow, key_id)
            if row is None or row.member_id != member.id:
                raise NotFound(f"member {quoted(name)} has no signing key {quoted(key_id)}")
            if row.revoked_at is not None:
                raise FailedPrecondition(f"signing key {key_id} was already revoked at {row.revoked_at.isoformat()}")
            row.revoked_at = now
            events.record(session, at=now, actor=actor, kind="member.key_revoked", member=name, key_id=key_id)
            return _key(row)

        return self._db.write(work)

    def set_status(self, name: str, status: MemberStatus, *, reason: str, actor: str, now: datetime) -> Member:
        """Suspend or resume a member; the same status twice is a FAILED_PRECONDITION, not a silent no-op."""

        def work(session: Session) -> Member:
            member = _get(session, name)
            if member.status == status.value:
                raise FailedPrecondition(f"member {quoted(name)} is already {status.value}")
            member.status = status.value
            kind = "member.suspended" if status is MemberStatus.SUSPENDED else "member.resumed"
            events.record(session, at=now, actor=actor, kind=kind, member=name, reason=reason)
            return _member(session, member)

        return self._db.write(work)

    def set_onboarding_volume(self, name: str, per_day: int, *, reason: str, actor: str, now: datetime) -> Member:
        def work(session: Session) -> Member:
            member = _get(session, name)
            before = member.onboarding_per_day
            member.onboarding_per_day = per_day
            events.record(session, at=now, actor=actor, kind="member.volume_declared", member=name,
                          per_day=per_day, before=before, reason=reason)
            return _member(session, member)

        return self._db.write(work)

    def signing_key(self, name: str, key_id: str) -> tuple[int, SigningKey] | None:
        """The member's id and its key `key_id`, or None when it is not theirs."""
        with self._db.read() as conn:
            return signing_key(conn, name, key_id)


def signing_key(conn: Connection, name: str, key_id: str) -> tuple[int, SigningKey] | None:
    """`MemberStore.signing_key` inside a read transaction the caller holds."""
    rows = _SIGNING_KEY.rows(conn, {"name": name, "key_id": key_id})
    if not rows:
        return None
    member_id, key_id, public_key, valid_from, revoked_at, valid_until = rows[0]
    return member_id, SigningKey(key_id, public_key, valid_from, revoked_at, valid_until)


# Prepared (prepared.py): every SubmitReport reads it.
_SIGNING_KEY = Prepared(
    select(MemberRow.id, MemberKeyRow.key_id, MemberKeyRow.public_key, MemberKeyRow.valid_from, MemberKeyRow.revoked_at, MemberKeyRow.valid_until)
    .join(MemberKeyRow, MemberKeyRow.member_id == MemberRow.id)
    .where(MemberRow.name == bindparam("name"), MemberKeyRow.key_id == bindparam("key_id"))
)


def _get(session: Session, name: str) -> MemberRow:
    member = session.scalar(select(MemberRow).where(MemberRow.name == name))
    if member is None:
        raise NotFound(f"no member named {quoted(name)}")
    return member


def _key(row: MemberKeyRow) -> SigningKey:
    return SigningKey(row.key_id, row.public_key, row.valid_from, row.revoked_at, row.valid_until)


def _member(session: Session, row: MemberRow) -> Member:
    keys = session.scalars(select(MemberKeyRow).where(MemberKeyRow.member_id == row.id).order_by(MemberKeyRow.valid_from))
    return Member(
        name=row.name, status=MemberStatus(row.status), created_at=row.created_at, keys=tuple(_key(k) for k in keys),
        onboarding_per_day=row.onboarding_per_day,
        certificates=tuple(certificates.certificate(c, revoked_at) for c, revoked_at in session.execute(certificates.of_member(row.name))),
    )
