"""Strong tokens merge subjects, weak tokens only attach; the order of reports never matters."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from jpr_client.crypto import oprf
from jpr_client.model import Category, IdentifierType, Role, Severity, Token
from registry.crypto.pki import ROLE_MEMBER, CertificateInfo
from registry.domain.model import ReportPayload
from registry.store.database import Database
from registry.store.members import MemberStore
from registry.store.models import SubjectMergeRow, SubjectRow, SubjectTokenRow
from registry.store.reports import ReportStore, Submission

KEY = oprf.generate_key()
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def token(kind: IdentifierType, value: str) -> Token:
    return Token(type=kind, value=oprf.evaluate(KEY, oprf.token_input(kind.value, value)))


RIC_1 = token(IdentifierType.CN_RIC, "11010519491231002X")
RIC_2 = token(IdentifierType.CN_RIC, "110101199003070978")
USCC = token(IdentifierType.CN_USCC, "91350100M000100Y43")
PASSPORT = token(IdentifierType.PASSPORT, "CHNE12345678")
PHONE_1 = token(IdentifierType.PHONE, "+8613800138000")
PHONE_2 = token(IdentifierType.PHONE, "+8613900139000")
EMAIL = token(IdentifierType.EMAIL, "seller@example.com")

# (reporting platform, tokens): three platforms, overlapping sets, one report bridging two people.
REPORTS = [
    ("platform-a", (RIC_1, PHONE_1)),
    ("platform-b", (RIC_2, PHONE_1)),  # shares only a weak phone with the first: no merge
    ("platform-c", (RIC_1, RIC_2, EMAIL)),  # bridges both: one subject
    ("platform-a", (USCC, PHONE_2)),
    ("platform-b", (PASSPORT, PHONE_2)),  # shares a weak phone with the company: no merge
]
EXPECTED = {
    (frozenset({RIC_1.value, RIC_2.value}), frozenset({PHONE_1.value, EMAIL.value})),
    (frozenset({USCC.value}), frozenset({PHONE_2.value})),
    (frozenset({PASSPORT.value}), frozenset({PHONE_2.value})),
}


def clusters(db: Database) -> set[tuple[frozenset[bytes], frozenset[bytes]]]:
    with db.read() as conn:
        live = [row.id for row in conn.execute(select(SubjectRow.id).where(SubjectRow.merged_into.is_(None)))]
        links = conn.execute(select(SubjectTokenRow.subject_id, SubjectTokenRow.token, SubjectTokenRow.strong)).all()
    assert {link.subject_id for link in links} <= set(live), "a token still points at a merged subject"
    return {
        (
            frozenset(l.token for l in links if l.subject_id == s and l.strong),
            frozenset(l.token for l in links if l.subject_id == s and not l.strong),
        )
        for s in live
    }


def submit_all(database_url: str, order: tuple[int, ...]) -> Database:
    db = Database(database_url)
    members = MemberStore(db)
    ids = {}
    for name in ("platform-a", "platform-b", "platform-c"):
        # Reports here go straight to the store: the certificate is only recorded, so its fingerprint is the name's.
        certificate = CertificateInfo(hashlib.sha256(b"certificate:" + name.encode()).hexdigest(), ROLE_MEMBER, name, NOW, NOW + timedelta(days=730))
        members.create(name, hashlib.sha256(name.encode()).digest(), f"ed25519:{name}", certificate, actor="admin:test", now=NOW)
        ids[name] = members.signing_key(name, f"ed25519:{name}")[0]  # type: ignore[index]
    store = ReportStore(db)
    for index in order:
        reporter, tokens = REPORTS[index]
        report_id = str(uuid.UUID(int=index + 1))
        payload = ReportPayload(
            report_id=report_id, reporter=reporter, registry="jpr-test", created_at=NOW, role=Role.MERCHANT,
            tokens=tokens, category=Category.FRAUD, severity=Severity.SERIOUS, occurred_at=None,
            platform_action="banned", summary="", display_name="", evidence_sha256=bytes(32),
        )
        digest = hashlib.sha256(report_id.encode()).digest()
        store.submit(Submission(payload, ids[reporter], f"ed25519:{reporter}", b"{}", digest, digest), now=NOW)
    return db


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(REPORTS)))), ids=lambda o: "".join(map(str, o)))
def test_every_submission_order_ends_with_the_same_clusters(database_url: str, order: tuple[int, ...]) -> None:
    db = submit_all(database_url, order)
    try:
        assert clusters(db) == EXPECTED
        with db.read() as conn:
            merges = conn.execute(select(SubjectMergeRow.survivor_id, SubjectMergeRow.merged_id)).all()
            subjects = {row.id: row.merged_into for row in conn.execute(select(SubjectRow.id, SubjectRow.merged_into))}
        for survivor, merged in merges:
            assert survivor < merged, "the older subject survives"
            assert subjects[merged] == survivor, "the merged subject redirects to the survivor"
    finally:
        db.dispose()


def test_merge_is_recorded_and_reports_follow_the_survivor(database_url: str) -> None:
    db = submit_all(database_url, (0, 1, 2))
    try:
        with db.read() as conn:
            merges = conn.execute(select(SubjectMergeRow.survivor_id, SubjectMergeRow.merged_id, SubjectMergeRow.report_id)).all()
        assert [(m.survivor_id, m.merged_id, m.report_id) for m in merges] == [(1, 2, str(uuid.UUID(int=3)))]
        store = ReportStore(db)
        assert {store.get(str(uuid.UUID(int=i))).subject_id for i in (1, 2, 3)} == {"S1"}
    finally:
        db.dispose()
