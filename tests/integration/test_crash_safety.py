"""SIGKILL a registry at random moments during a stream of submissions, again and again.

After every kill: every acknowledged report is stored, nothing is half
written (each report has its tokens, subject links and event row), SQLite's
integrity check passes, and every stored envelope still verifies. The
transparency log too: every event has its one leaf, and every checkpoint signed
before the kill is the root of leaves still there (log_checks.py); after the last
restart a checkpoint covers them all.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from jpr_client import Credentials
from jpr_client.api.jpr.v1 import registry_pb2, registry_pb2_grpc, types_pb2
from jpr_client.crypto import dsse, oprf
from jpr_client.transparency.note import Verifier
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.store.database import Database
from registry.store.models import EventRow, LogCheckpointRow, MemberKeyRow, ReportRow, ReportTokenRow, SubjectRow, SubjectTokenRow
from tests.conftest import AdminClient, REGISTRY_NAME
from tests.integration.log_checks import check_log
from tests.integration.reporting import payload_message
from tests.integration.test_replicas import valid_ric
from tests.integration.test_streams import wait_until
from tests.processes import ServeProcess

KILLS = 50


def envelopes(credentials: Credentials, key: bytes, count: int) -> list[bytes]:
    """Signed reports, tokens computed with the registry's key (as Tokenize would); every fifth bridges two people."""
    rng = random.Random(5)
    signed = []
    for index in range(count):
        people = [index % 400, rng.randrange(400)] if index % 5 == 0 else [index % 400]
        identifiers = [("cn_ric", valid_ric(p)) for p in people] + [("phone", f"+86138{rng.randrange(50):08d}")]
        tokens = [(kind, oprf.evaluate(key, oprf.token_input(kind, value))) for kind, value in identifiers]
        signed.append(dsse.sign_envelope(credentials.signing_seed, dsse.REPORT_PAYLOAD_TYPE, payload_message(credentials, tokens).SerializeToString()))
    return signed


def stream(endpoint: str, credentials: Credentials, queue: list[bytes], acknowledged: dict[str, bytes], stop: threading.Event) -> None:
    channel = grpc.secure_channel(
        endpoint,
        grpc.ssl_channel_credentials(credentials.ca_certificate.encode(), credentials.private_key.encode(), credentials.certificate.encode()),
    )
    stub = registry_pb2_grpc.RegistryStub(channel)
    try:
        while queue and not stop.is_set():
            envelope = queue[0]
            try:
                receipt = stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=5)
            except grpc.RpcError:
                return  # the server died under us: this one may or may not be stored, both are fine
            acknowledged[receipt.report_id] = envelope
            queue.pop(0)
    finally:
        channel.close()


@pytest.mark.long
def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    with ServeProcess(data_dir, database_url) as server:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(server.endpoint), DataDir(data_dir).issuer())
        platform = admin.add_member("platform-a")
        admin.close()
    queue = envelopes(platform, DataDir(data_dir).oprf_key(), 3000)
    verifier = DataDir(data_dir).log_signer().verifier()
    acknowledged: dict[str, bytes] = {}
    rng = random.Random(11)
    for _ in range(KILLS):
        server = ServeProcess(data_dir, database_url)
        stop = threading.Event()
        sender = threading.Thread(target=stream, args=(server.endpoint, platform, queue, acknowledged, stop))
        sender.start()
        time.sleep(rng.uniform(0.01, 0.25))
        server.kill()
        stop.set()
        sender.join(timeout=30)
        check_whole(database_url, acknowledged)
        check_log(database_url, verifier)
    assert len(acknowledged) > KILLS, "the stream hardly ran: the kills proved little"
    with ServeProcess(data_dir, database_url):
        wait_until(lambda: _covered(database_url, verifier), timeout=30)


def _covered(database_url: str, verifier: Verifier) -> bool:
    """Whether the newest checkpoint covers every leaf (the log checks holding)."""
    leaves, _ = check_log(database_url, verifier)
    db = Database(database_url)
    try:
        with db.read() as conn:
            newest = conn.execute(select(func.max(LogCheckpointRow.size))).scalar()
    finally:
        db.dispose()
    return newest == leaves


def check_whole(database_url: str, acknowledged: dict[str, bytes]) -> None:
    db = Database(database_url)
    try:
        with db.read() as conn:
            reports = {r.report_id: r for r in conn.execute(select(ReportRow.report_id, ReportRow.subject_id, ReportRow.envelope, ReportRow.key_id))}
            keys = dict(conn.execute(select(MemberKeyRow.key_id, MemberKeyRow.public_key)).all())
            report_tokens = conn.execute(select(ReportTokenRow.report_id, ReportTokenRow.token)).all()
            links = {(l.token, l.subject_id) for l in conn.execute(select(SubjectTokenRow.token, SubjectTokenRow.subject_id))}
            live = {s.id for s in conn.execute(select(SubjectRow.id).where(SubjectRow.merged_into.is_(None)))}
            submitted = {e.report_id for e in conn.execute(select(EventRow.report_id).where(EventRow.kind == "report.submitted"))}
    finally:
        db.dispose()
    missing = set(acknowledged) - set(reports)
    assert not missing, f"acknowledged but lost: {sorted(missing)[:3]}"
    for report_id, envelope in acknowledged.items():
        assert reports[report_id].envelope == envelope
    by_report: dict[str, set[bytes]] = {}
    for row in report_tokens:
        by_report.setdefault(row.report_id, set()).add(row.token)
    for report in reports.values():
        parsed = dsse.parse_envelope(report.envelope)
        assert dsse.verify(keys[report.key_id], parsed.payload_type, parsed.payload, parsed.signatures[0].sig)
        declared = {i.token for i in types_pb2.ReportPayload.FromString(parsed.payload).identifiers}
        assert by_report.get(report.report_id) == declared, "a report without all its tokens"
        assert report.subject_id in live, "a report on a merged-away subject"
        assert all((t, report.subject_id) in links for t in declared), "a report without its subject links"
        assert report.report_id in submitted, "a report without its event row"
    assert {s for _, s in links} <= live
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
