"""Registered client certificates and revocations: which certificates the registry admits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jpr_client.quoting import quoted
from registry.crypto.pki import ROLE_MEMBER, CertificateInfo
from registry.domain.errors import AlreadyExists, NotFound
from registry.domain.model import Certificate, RevokedCertificate
from registry.store import events
from registry.store.database import Database
from registry.store.models import CertificatePolicyRow, CertificateRow, MemberRow, RevokedCertificateRow

CERTIFICATES = select(CertificateRow, RevokedCertificateRow.revoked_at).outerjoin(
    RevokedCertificateRow, RevokedCertificateRow.sha256 == CertificateRow.sha256
)


class CertificateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def register(self, info: CertificateInfo, *, actor: str, now: datetime) -> Certificate:
        """Admit `info`'s certificate; a member's only when the member exists."""

        def work(session: Session) -> Certificate:
            if info.role == ROLE_MEMBER and session.scalar(select(MemberRow.id).where(MemberRow.name == info.name)) is None:
                raise NotFound(f"certificate_pem: no member named {quoted(info.name)}; `jpr admin members add` registers a new one")
            return add(session, info, actor=actor, now=now)

        try:
            return self._db.write(work)
        except IntegrityError as error:  # registered by another replica at the same moment
            raise AlreadyExists(f"certificate {info.sha256} is already registered") from error

    def list(self, role: str | None = None, *, include_revoked: bool = True) -> list[Certificate]:
        query = CERTIFICATES.order_by(CertificateRow.role, CertificateRow.name, CertificateRow.not_after)
        if role:
            query = query.where(CertificateRow.role == role)
        if not include_revoked:
            query = query.where(RevokedCertificateRow.sha256.is_(None))
        with self._db.session() as session:
            return [certificate(row, revoked_at) for row, revoked_at in session.execute(query)]

    def unregistered_issued_before(self) -> datetime | None:
        with self._db.session() as session:
            return session.scalar(select(CertificatePolicyRow.unregistered_issued_before))

    def revoke(self, sha256: str, *, reason: str, actor: str, now: datetime) -> RevokedCertificate:
        def work(session: Session) -> RevokedCertificate:
            found = session.get(RevokedCertificateRow, sha256)
            if found is not None:
                raise AlreadyExists(f"certificate {sha256} was already revoked at {found.revoked_at.isoformat()}")
            session.add(RevokedCertificateRow(sha256=sha256, revoked_at=now, revoked_by=actor, reason=reason))
            registered = session.get(CertificateRow, sha256)
            holder: dict[str, Any] = {"role": registered.role, "name": registered.name} if registered is not None else {}
            events.record(session, at=now, actor=actor, kind="member.certificate_revoked", certificate_sha256=sha256, reason=reason, **holder)
            return RevokedCertificate(sha256, now, actor, reason)

        return self._db.write(work)


def add(session: Session, info: CertificateInfo, *, actor: str, now: datetime) -> Certificate:
    """Register a certificate in `session`'s transaction (with its member, when one is created)."""
    found = session.get(CertificateRow, info.sha256)
    if found is not None:
        raise AlreadyExists(
            f"certificate_pem: certificate {info.sha256} is already registered ({found.role} {quoted(found.name)}, "
            f"at {found.registered_at.isoformat()})"
        )
    row = CertificateRow(
        sha256=info.sha256, role=info.role, name=info.name, not_before=info.not_before, not_after=info.not_after,
        registered_at=now, registered_by=actor,
    )
    session.add(row)
    events.record(session, at=now, actor=actor, kind="certificate.registered", certificate_sha256=info.sha256,
                  role=info.role, name=info.name, not_after=info.not_after.isoformat())
    return certificate(row, None)


def of_member(name: str) -> Select[CertificateRow, datetime]:
    return CERTIFICATES.where(CertificateRow.role == ROLE_MEMBER, CertificateRow.name == name).order_by(CertificateRow.not_after)


def certificate(row: CertificateRow, revoked_at: datetime | None) -> Certificate:
    return Certificate(row.sha256, row.role, row.name, row.not_before, row.not_after, row.registered_at, row.registered_by, revoked_at)
