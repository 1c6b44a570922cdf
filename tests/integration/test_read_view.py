"""Lookups and member checks answer from memory; the memory follows the event log, across replicas."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from sqlalchemy import insert, update

from jpr_client import Applicant, Credentials, RPCError, RegistryClient, Role, Verdict, normalize
from jpr_client.api.jpr.v1 import admin_pb2
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.domain.errors import Unavailable
from registry.domain.model import MemberStatus
from registry.server.app import start
from registry.settings import load_settings
from registry.store.database import Database
from registry.store.models import EventRow, MemberRow
from registry.store.view import ReadView
from tests.conftest import AdminClient, REGISTRY_NAME, Registry, Ticks
from tests.integration.test_lookup import RIC, accept, applicant, report


def eventually(probe: Callable[[], object], expected: object, within: float = 10.0) -> object:
    deadline = time.monotonic() + within
    while (seen := probe()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def test_a_replica_sees_another_replicas_decisions_without_being_called(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    flags = {"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url}
    one, two = start(load_settings(flags, environ={})), start(load_settings(flags, environ={}))
    admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(f"127.0.0.1:{one.port}"), DataDir(data_dir).issuer())
    try:
        platform = admin.add_member("platform-a")  # created through one, first used on two
        with RegistryClient(platform.with_endpoint(f"127.0.0.1:{two.port}")) as on_two:
            receipt = on_two.submit_report(report(("cn_ric", RIC)))
            person = applicant(("cn_ric", RIC))
            accept(admin, receipt.report_id)  # through one
            assert eventually(lambda: on_two.lookup(person).verdict, Verdict.DENY) is Verdict.DENY
            listing = on_two.lookup(person).matches[0]
            listings = admin.call("ListListings", admin_pb2.ListListingsRequest()).listings  # type: ignore[attr-defined]
            admin.call(
                "LiftListing",
                admin_pb2.LiftListingRequest(
                    listing_id=listings[0].listing_id, grounds=admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION, reason="wrong person"
                ),
            )
            assert eventually(lambda: on_two.lookup(person).verdict, Verdict.CLEAR) is Verdict.CLEAR
            assert listing.subject_id.startswith("S")
    finally:
        admin.close()
        one.stop(grace=None)
        two.stop(grace=None)


def test_a_commit_that_lands_behind_a_later_one_is_still_applied(registry: Registry, admin: AdminClient, database_url: str) -> None:
    """PostgreSQL shows a transaction's event at commit, not in sequence order: the view must not skip it."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite commits one writer at a time, in sequence order")
    suspended = admin.add_member("platform-a")
    view = registry.running.view
    with registry.database.engine.connect() as slow:
        transaction = slow.begin()
        slow.execute(update(MemberRow).where(MemberRow.name == "platform-a").values(status=MemberStatus.SUSPENDED.value))
        slow.execute(insert(EventRow).values(occurred_at=datetime.now(UTC), actor="admin:admin", kind="member.suspended", detail={}, salt=bytes(32)))
        admin.add_member("platform-b")  # commits a later event first; the view catches up past it
        assert view.member_status("platform-b") is MemberStatus.ACTIVE
        assert view.member_status("platform-a") is MemberStatus.ACTIVE
        transaction.commit()
    view.catch_up()
    assert view.member_status("platform-a") is MemberStatus.SUSPENDED
    with RegistryClient(suspended.with_endpoint(registry.endpoint)) as client, pytest.raises(RPCError) as refused:
        client.lookup(Applicant(role=Role.MERCHANT, identifiers=(normalize("cn_ric", RIC),)))
    assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED
    assert "SUSPENDED" in refused.value.message



def test_a_view_that_cannot_follow_its_database_refuses_instead_of_answering_stale(registry: Registry) -> None:
    ticks = Ticks()
    database = Database(registry.database.url)
    try:
        view = ReadView(database, max_lag=30, clock=ticks)
        view.load()
        assert view.find([b"x" * 64], datetime.now(UTC)) == ({}, {})
        ticks.now += 31
        with pytest.raises(Unavailable, match="has not reached its database for 31 s"):
            view.find([b"x" * 64], datetime.now(UTC))
        view.catch_up()
        assert view.find([b"x" * 64], datetime.now(UTC)) == ({}, {})
    finally:
        database.dispose()


def test_a_lookup_after_a_merge_shows_one_subject(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    from tests.integration.test_lookup import OTHER_RIC

    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        accept(admin, a.submit_report(report(("cn_ric", RIC))).report_id)
        accept(admin, b.submit_report(report(("cn_ric", OTHER_RIC))).report_id)
        before = a.lookup(applicant(("cn_ric", RIC), ("cn_ric", OTHER_RIC)))
        assert len({m.subject_id for m in before.matches}) == 2
        accept(admin, a.submit_report(report(("cn_ric", RIC), ("cn_ric", OTHER_RIC))).report_id)  # the same person
        after = a.lookup(applicant(("cn_ric", RIC), ("cn_ric", OTHER_RIC)))
    assert [m.subject_id for m in after.matches] == [min(m.subject_id for m in before.matches)]
    assert after.verdict is Verdict.DENY
    assert registry.running.view.subjects_indexed == 1
