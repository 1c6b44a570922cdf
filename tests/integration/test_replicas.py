"""Two `jpr serve` processes on one database, many concurrent submitters and reviewers.

The end state must be what the same reports give one by one: the same
clusters, one listing per listed subject, every report stored once, an event
row for each change; conflicts are retried inside the registry and never
reach a client. On SQLite this is several processes writing one file.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import time
import sqlite3
from contextlib import closing
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from jpr_client import Applicant, Category, Credentials, NewReport, RegistryClient, Role, Severity, Verdict, normalize
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.store import schema
from registry.store.database import Database
from registry.store.models import EventRow, ListingRow, ReportRow, ReportTokenRow, SubjectRow, SubjectTokenRow
from tests.conftest import AdminClient, REGISTRY_NAME
from tests.integration.log_checks import check_log
from tests.integration.test_lookup import RIC, applicant
from tests.integration.test_streams import new_data_dir, serving
from tests.processes import ServeProcess

PEOPLE = 24
PHONES = [f"+86139{n:08d}" for n in range(10)]


def valid_ric(n: int) -> str:
    base = f"110101{1960 + n // 336}{1 + (n // 28) % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return next(base + d for d in "0123456789X" if ric.is_valid(base + d))


def scenario(seed: int) -> list[tuple[str, list[str], list[str]]]:
    """(platform, ID numbers, phones) per report: overlapping sets, some bridging two people."""
    rng = random.Random(seed)
    reports = []
    for index in range(60):
        people = rng.sample(range(PEOPLE), 2 if index % 7 == 3 else 1)
        reports.append((f"platform-{'abc'[index % 3]}", [valid_ric(p) for p in people], rng.sample(PHONES, rng.randint(0, 2))))
    return reports


def expected_clusters(reports: list[tuple[str, list[str], list[str]]]) -> set[tuple[frozenset[str], frozenset[str]]]:
    parent = {r: r for _, rics, _ in reports for r in rics}

    def root(r: str) -> str:
        while parent[r] != r:
            r = parent[r]
        return r

    for _, rics, _ in reports:
        for other in rics[1:]:
            parent[root(other)] = root(rics[0])
    groups: dict[str, tuple[set[str], set[str]]] = {}
    for _, rics, phones in reports:
        strong, weak = groups.setdefault(root(rics[0]), (set(), set()))
        strong.update(rics)
        weak.update(phones)
    return {(frozenset(s), frozenset(w)) for s, w in groups.values()}


@pytest.mark.long
def test_two_replicas_under_concurrent_load_end_like_one_by_one(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    reports = scenario(seed=7)
    with ServeProcess(data_dir, database_url) as one, ServeProcess(data_dir, database_url) as two:
        admins = [AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(s.endpoint), DataDir(data_dir).issuer()) for s in (one, two)]
        platforms = {name: admins[0].add_member(name) for name in ("platform-a", "platform-b", "platform-c")}
        clients = {(name, i): RegistryClient(creds.with_endpoint(s.endpoint)) for name, creds in platforms.items() for i, s in enumerate((one, two))}
        envelopes = [
            (name, clients[(name, 0)].sign_report(new_report(rics, phones)))
            for name, rics, phones in reports
        ]
        jobs = envelopes + random.Random(1).sample(envelopes, 15)  # some sent twice, concurrently
        random.Random(2).shuffle(jobs)

        def submit(job: tuple[int, tuple[str, bytes]]) -> registry_pb2.ReportReceipt:
            index, (name, envelope) = job
            stub = clients[(name, index % 2)]._stub
            return stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=60)

        with ThreadPoolExecutor(max_workers=12) as pool:
            receipts = list(pool.map(submit, enumerate(jobs)))  # any error would raise here
        report_ids = {r.report_id for r in receipts}
        assert len(report_ids) == len(reports)

        def accept(job: tuple[int, str]) -> None:
            index, report_id = job
            admins[index % 2].call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=report_id, reason="verified"))

        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(accept, enumerate(sorted(report_ids))))
        values = sorted({("cn_ric", r) for _, rics, _ in reports for r in rics} | {("phone", p) for _, _, ps in reports for p in ps})
        tokens = clients[("platform-a", 0)].tokenize([normalize(kind, value) for kind, value in values])
        names = {token.value: value for token, (_, value) in zip(tokens, values)}
        for client in clients.values():
            client.close()
        for admin in admins:
            admin.close()

    assert_end_state(Database(database_url), reports, names)
    # One linear transparency log from both replicas' commits: no gap, no event twice or left out.
    check_log(database_url, DataDir(data_dir).log_signer().verifier())


def new_report(rics: list[str], phones: list[str]) -> NewReport:
    return NewReport(
        role=Role.MERCHANT,
        identifiers=tuple(normalize("cn_ric", r) for r in rics) + tuple(normalize("phone", p) for p in phones),
        category=Category.FAKE_SALES_OR_TRAFFIC,
        severity=Severity.SERIOUS,
        summary="bought fake orders",
        platform_action="store closed",
        evidence_sha256=hashlib.sha256(str(rics).encode()).digest(),
    )


def assert_end_state(db: Database, reports: list[tuple[str, list[str], list[str]]], tokens: dict[bytes, str]) -> None:
    try:
        with db.read() as conn:
            live = {row.id for row in conn.execute(select(SubjectRow.id).where(SubjectRow.merged_into.is_(None)))}
            links = conn.execute(select(SubjectTokenRow.subject_id, SubjectTokenRow.token, SubjectTokenRow.strong)).all()
            stored = conn.execute(select(func.count()).select_from(ReportRow)).scalar_one()
            report_token_rows = conn.execute(select(func.count()).select_from(ReportTokenRow)).scalar_one()
            kinds = Counter(kind for (kind,) in conn.execute(select(EventRow.kind)))
            listings = conn.execute(select(ListingRow.id, ListingRow.subject_id)).all()
            unlisted = conn.execute(select(func.count()).select_from(ReportRow).where(ReportRow.listing_id.is_(None))).scalar_one()
    finally:
        db.dispose()
    clusters = {
        (
            frozenset(tokens[l.token] for l in links if l.subject_id == s and l.strong),
            frozenset(tokens[l.token] for l in links if l.subject_id == s and not l.strong),
        )
        for s in live
    }
    assert clusters == expected_clusters(reports)
    assert {l.subject_id for l in links} <= live
    assert stored == len(reports) and kinds["report.submitted"] == len(reports)
    assert report_token_rows == sum(len(r) + len(p) for _, r, p in reports)
    assert kinds["subject.created"] - kinds["subject.merged"] == len(live)
    assert kinds["report.accepted"] == len(reports) and unlisted == 0
    assert sorted(s for _, s in listings) == sorted(live), "exactly one listing per subject"
    assert kinds["listing.created"] == len(listings)
    assert kinds["listing.created"] + kinds["listing.extended"] == len(reports)


def test_lookups_read_the_configured_replica_and_writes_the_primary(tmp_path: Path) -> None:
    """A stale copy stands in for a lagging read replica: lookups see it, reports go to the primary."""
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    schema_source = Database(f"sqlite+pysqlite:///{primary}")
    schema.upgrade(schema_source)
    schema_source.dispose()
    shutil.copyfile(primary, replica)
    extra = ("--lookup-database-url", f"sqlite+pysqlite:///{replica}")
    with ServeProcess(data_dir, f"sqlite+pysqlite:///{primary}", extra=extra) as server:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(server.endpoint), DataDir(data_dir).issuer())
        platform = admin.add_member("platform-a")
        with RegistryClient(platform.with_endpoint(server.endpoint)) as client:
            receipt = client.submit_report(new_report([valid_ric(1)], []))
            admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id))
            applicant = Applicant(role=Role.MERCHANT, identifiers=(normalize("cn_ric", valid_ric(1)),))
            assert client.lookup(applicant).verdict is Verdict.CLEAR  # the replica has not caught up
            with closing(sqlite3.connect(primary)) as source, closing(sqlite3.connect(replica)) as target:
                source.backup(target)  # it catches up
            deadline = time.monotonic() + 10  # the server reads the replica's new events on its next poll
            while client.lookup(applicant).verdict is not Verdict.DENY and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.lookup(applicant).verdict is Verdict.DENY
        admin.close()


# The replicas do not poll each other within the test (the lag allowed is above the poll interval).
SLOW_FOLLOW = {"follow_interval_seconds": 60, "max_lag_seconds": 120}


def test_members_created_on_one_replica_are_admitted_at_once_on_another_even_calling_together(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = new_data_dir(tmp_path)
    with serving(data_dir, database_url, **SLOW_FOLLOW) as one, serving(data_dir, database_url, **SLOW_FOLLOW) as two:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{one.port}"), DataDir(data_dir).issuer())
        try:
            for n in range(6):  # each new platform's first calls reach the other replica before it polls
                platform = admin.add_member(f"platform-{n}").with_endpoint(f"127.0.0.1:{two.port}")
                with RegistryClient(platform) as client, ThreadPoolExecutor(4) as calls:
                    verdicts = list(calls.map(lambda _: client.lookup(applicant(("cn_ric", RIC))).verdict, range(4)))
                assert verdicts == [Verdict.CLEAR] * 4
        finally:
            admin.close()
