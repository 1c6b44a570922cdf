"""The notice window: between acceptance and ACTIVE, lookups answer REVIEW and objections are recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from jpr_client import Credentials, MatchReason, RPCError, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.datadir import DataDir
from registry.server.app import RunningRegistry, start
from registry.settings import load_settings
from registry.store.models import EventRow
from tests.conftest import AdminClient, Clock, REGISTRY_NAME
from tests.integration.test_lookup import RIC, applicant, report


@pytest.fixture
def seven_days_notice(tmp_path: Path, database_url: str) -> Iterator[tuple[RunningRegistry, Clock, AdminClient, RegistryClient, RegistryClient]]:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    clock = Clock()
    flags = {"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url, "notice_days": 7}
    running = start(load_settings(flags, environ={}), clock=clock)
    admin = AdminClient(Credentials.load(data_dir / "admin.credentials.json").with_endpoint(f"127.0.0.1:{running.port}"), DataDir(data_dir).issuer())
    a, b = (RegistryClient(admin.add_member(name)) for name in ("platform-a", "platform-b"))
    try:
        yield running, clock, admin, a, b
    finally:
        a.close()
        b.close()
        admin.close()
        running.stop(grace=None)


def test_notice_window_answers_review_then_the_listing_activates(seven_days_notice: Any) -> None:
    running, clock, admin, a, b = seven_days_notice
    receipt = a.submit_report(report(("cn_ric", RIC)))
    accepted = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id))
    assert accepted.listing.status == types_pb2.LISTING_STATUS_PENDING_NOTICE
    in_notice = b.lookup(applicant(("cn_ric", RIC)))
    assert in_notice.verdict is Verdict.REVIEW and in_notice.matches[0].reason is MatchReason.NOTICE_PERIOD
    objected = admin.call("RecordObjection", admin_pb2.RecordObjectionRequest(listing_id=accepted.listing.listing_id, reason="the seller disputes the evidence"))
    assert objected.status == types_pb2.LISTING_STATUS_PENDING_NOTICE
    clock.offset_seconds = 7 * 86400 + 1
    assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY  # no job needed
    assert running.expiry.record_now() == 1
    with running.database.read() as conn:
        kinds = [k for (k,) in conn.execute(select(EventRow.kind).order_by(EventRow.seq))]
    assert kinds[-2:] == ["listing.objection", "listing.activated"]
    with pytest.raises(RPCError) as caught:
        admin.call("RecordObjection", admin_pb2.RecordObjectionRequest(listing_id=accepted.listing.listing_id, reason="late"))
    assert caught.value.status is grpc.StatusCode.FAILED_PRECONDITION and "appeal" in caught.value.message


def test_the_term_runs_from_the_end_of_the_notice(seven_days_notice: Any) -> None:
    _, _, admin, a, _ = seven_days_notice
    receipt = a.submit_report(report(("cn_ric", RIC)))
    listing = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, term_days=30)).listing
    assert (listing.listed_until.ToDatetime() - listing.listed_from.ToDatetime()).days == 30
