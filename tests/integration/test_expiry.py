"""A listing's term ends by itself: lookups stop denying at once, and the change enters the history."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from jpr_client import Credentials, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.datadir import DataDir
from registry.server.app import start
from registry.settings import load_settings
from registry.store.models import EventRow, ListingRow
from tests.conftest import AdminClient, Clock, REGISTRY_NAME, Registry
from tests.integration.test_lookup import RIC, applicant, report


def listed_for_a_day(admin: AdminClient, client: RegistryClient) -> str:
    receipt = client.submit_report(report(("cn_ric", RIC)))
    response = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, term_days=1))
    return str(response.listing.listing_id)  # type: ignore[attr-defined]


def test_expired_listing_is_recorded_once_with_its_event(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as client:
        listing_id = listed_for_a_day(admin, client)
        assert registry.running.expiry.record_now() == 0  # not due yet
        registry.clock.offset_seconds = 86400 + 1
        assert client.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR  # before anything is recorded
        assert registry.running.expiry.record_now() == 1
        assert registry.running.expiry.record_now() == 0  # recorded once
    with registry.database.read() as conn:
        status = conn.execute(select(ListingRow.status)).scalar_one()
        expired = conn.execute(select(EventRow.actor, EventRow.listing_id, EventRow.detail).where(EventRow.kind == "listing.expired")).all()
    assert status == "EXPIRED"
    assert [(e.actor, f"L{e.listing_id}", e.detail["reason"]) for e in expired] == [("registry", listing_id, "term ended")]
    page = admin.call("ListListings", admin_pb2.ListListingsRequest(status=types_pb2.LISTING_STATUS_EXPIRED))
    assert [l.listing_id for l in page.listings] == [listing_id]  # type: ignore[attr-defined]


def test_a_serving_registry_records_expiries_by_itself(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    clock = Clock()
    flags = {"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url, "expiry_interval_seconds": 1}
    running = start(load_settings(flags, environ={}), clock=clock)
    try:
        admin = AdminClient(Credentials.load(data_dir / "admin.credentials.json").with_endpoint(f"127.0.0.1:{running.port}"), DataDir(data_dir).issuer())
        with RegistryClient(admin.add_member("platform-a")) as client:
            listed_for_a_day(admin, client)
        admin.close()
        clock.offset_seconds = 86400 + 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with running.database.read() as conn:
                if conn.execute(select(EventRow.seq).where(EventRow.kind == "listing.expired")).first():
                    return
            time.sleep(0.1)
        raise AssertionError("no listing.expired event within 10 s")
    finally:
        running.stop(grace=None)
