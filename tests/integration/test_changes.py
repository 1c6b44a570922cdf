"""The changes feed: every listing change, once, in order, with the tokens to re-screen by; resumable."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from jpr_client import (
    ChangeKind,
    Credentials,
    CursorFile,
    ListingChange,
    ListingStatus,
    RegistryClient,
    normalize,
)
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2
from registry.datadir import ADMIN_CREDENTIALS, DataDir
from registry.store.changes import KINDS
from registry.store.database import Database
from registry.store.models import EventRow
from tests.conftest import AdminClient, REGISTRY_NAME, Registry
from tests.integration.test_lookup import OTHER_RIC, PHONE, RIC, accept, report
from tests.integration.test_replicas import valid_ric
from tests.processes import ServeProcess


def take(changes: Iterator[ListingChange], count: int, within: float = 20.0) -> list[ListingChange]:
    """The next `count` changes, or fail after `within` seconds (the iterator never ends by itself)."""
    got: list[ListingChange] = []
    failure: list[BaseException] = []

    def pull() -> None:
        try:
            got.extend(itertools.islice(changes, count))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            failure.append(error)

    puller = threading.Thread(target=pull, daemon=True)
    puller.start()
    puller.join(within)
    if failure:
        raise failure[0]
    assert len(got) == count, f"{len(got)} of {count} changes arrived within {within} s: {got}"
    return got


def lift(admin: AdminClient, listing_id: str, reason: str = "wrong person") -> None:
    admin.call("LiftListing", admin_pb2.LiftListingRequest(
        listing_id=listing_id, grounds=admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION, reason=reason))


def test_each_listing_change_arrives_once_in_order_with_the_tokens_to_rescreen_by(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    a, b = member("platform-a"), member("platform-b")
    with RegistryClient(a) as reporter, RegistryClient(b) as watcher:
        first = reporter.submit_report(report(("cn_ric", RIC), ("phone", PHONE), ("platform_account", "platform-a:shop-991")))
        accept(admin, first.report_id)
        accept(admin, watcher.submit_report(report(("cn_ric", RIC))).report_id)  # the same listing, extended
        accept(admin, reporter.submit_report(report(("cn_ric", OTHER_RIC))).report_id)
        listings = admin.call("ListListings", admin_pb2.ListListingsRequest()).listings  # type: ignore[attr-defined]
        lift(admin, listings[0].listing_id)
        changes = take(watcher.watch_changes(tmp_path / "b.cursor"), 4)
        mine = {t.value: t.type for t in watcher.tokenize([normalize("cn_ric", RIC), normalize("phone", PHONE)])}

    assert [c.kind for c in changes] == [ChangeKind.CREATED, ChangeKind.EXTENDED, ChangeKind.CREATED, ChangeKind.LIFTED]
    assert [int(c.cursor) for c in changes] == sorted(int(c.cursor) for c in changes)
    created, extended, other, lifted = changes
    assert created.listing.listing_id == extended.listing.listing_id == lifted.listing.listing_id != other.listing.listing_id
    assert created.listing.status is ListingStatus.ACTIVE and lifted.listing.status is ListingStatus.LIFTED
    assert extended.listing.reporting_platforms == 2
    # Platform B recognizes its own users by the tokens it computes itself; A's shop account is never shared.
    assert {t.value: t.type for t in created.tokens} == mine
    assert all(t.type.value != "platform_account" for c in changes for t in c.tokens)


def test_a_cursor_resumes_after_the_last_change_handled(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    cursor_file = tmp_path / "watch" / "b.cursor"
    with RegistryClient(member("platform-a")) as reporter, RegistryClient(member("platform-b")) as watcher:
        for n in range(3):
            accept(admin, reporter.submit_report(report(("cn_ric", valid_ric(n)))).report_id)
        stream = watcher.watch_changes(cursor_file)
        seen = [next(stream), next(stream)]  # the first is saved when the second is asked for
        stream.close()
        assert CursorFile(cursor_file).load() == seen[0].cursor
        again = take(watcher.watch_changes(cursor_file), 2)  # the one being handled comes again, then the next
        every = take(watcher.watch_changes(tmp_path / "from-the-start.cursor"), 3)
    assert [c.cursor for c in seen] == [c.cursor for c in every[:2]]
    assert [c.cursor for c in again] == [c.cursor for c in every[1:]]


def test_a_cursor_the_registry_never_gave_is_invalid_argument(registry: Registry, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as client:
        for bad in ("abc", "-1", "1" * 40):
            with pytest.raises(grpc.RpcError) as refused:
                next(iter(client._stub.WatchChanges(registry_pb2.WatchChangesRequest(cursor=bad), timeout=5)))
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "is not one this registry gave" in (refused.value.details() or "")


def test_watches_beyond_the_limit_are_resource_exhausted(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    with ServeProcess(data_dir, database_url, extra=("--max-streams", "1", "--max-streams-per-caller", "1")) as server:
        admin = AdminClient(Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(server.endpoint), DataDir(data_dir).issuer())
        platform = admin.add_member("platform-a").with_endpoint(server.endpoint)
        other = admin.add_member("platform-b").with_endpoint(server.endpoint)  # the replica's total, not one caller's share
        with RegistryClient(platform) as one, RegistryClient(other) as two:
            held = one._stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=30)
            time.sleep(0.5)  # the first watch is open and waiting
            with pytest.raises(grpc.RpcError) as refused:
                next(iter(two._stub.WatchChanges(registry_pb2.WatchChangesRequest(), timeout=5)))
            held.cancel()
        admin.close()
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "serves at most 1 open streams at once and all are in use" in (refused.value.details() or "")


@pytest.mark.long
def test_a_watch_survives_a_server_restart_with_no_change_missed_or_repeated(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    server = ServeProcess(data_dir, database_url)
    admin_credentials = Credentials.load(data_dir / ADMIN_CREDENTIALS).with_endpoint(server.endpoint)
    admin = AdminClient(admin_credentials, DataDir(data_dir).issuer())
    reporter_credentials = admin.add_member("platform-a").with_endpoint(server.endpoint)
    watcher_credentials = admin.add_member("platform-b").with_endpoint(server.endpoint)
    received: list[ListingChange] = []
    watcher = RegistryClient(watcher_credentials)
    stream = watcher.watch_changes(tmp_path / "b.cursor", stream_seconds=5)
    try:
        with RegistryClient(reporter_credentials) as reporter:
            for n in range(3):
                accept(admin, reporter.submit_report(report(("cn_ric", valid_ric(n)))).report_id)
        received += take(stream, 2)
        server.stop()  # mid-stream: the watch is waiting for its third change
        admin.close()
        server = ServeProcess(data_dir, database_url, port=server.port)
        admin = AdminClient(admin_credentials, DataDir(data_dir).issuer())
        with RegistryClient(reporter_credentials) as reporter:
            for n in range(3, 5):
                accept(admin, reporter.submit_report(report(("cn_ric", valid_ric(n)))).report_id)
        listings = admin.call("ListListings", admin_pb2.ListListingsRequest()).listings  # type: ignore[attr-defined]
        lift(admin, listings[0].listing_id)
        received += take(stream, 4)  # the third, two new ones, the lift
    finally:
        stream.close()
        watcher.close()
        admin.close()
        server.stop()
    db = Database(database_url)
    try:
        with db.read() as conn:
            expected = conn.execute(select(EventRow.seq).where(EventRow.kind.in_(list(KINDS))).order_by(EventRow.seq)).scalars().all()
    finally:
        db.dispose()
    assert [int(c.cursor) for c in received] == expected
    assert [c.kind for c in received] == [ChangeKind.CREATED] * 5 + [ChangeKind.LIFTED]


def test_an_expiry_is_a_change_with_the_listings_end(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    with RegistryClient(member("platform-a")) as reporter, RegistryClient(member("platform-b")) as watcher:
        receipt = reporter.submit_report(report(("cn_ric", RIC)))
        admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, term_days=1))
        registry.clock.offset_seconds = 86400 + 1
        assert registry.running.expiry.record_now() == 1
        created, expired = take(watcher.watch_changes(tmp_path / "b.cursor"), 2)
    assert (created.kind, expired.kind) == (ChangeKind.CREATED, ChangeKind.EXPIRED)
    assert expired.listing.status is ListingStatus.EXPIRED
    assert expired.listing.listed_until == created.listing.listed_until
    assert (expired.listing.listed_until - created.listing.listed_from).days == 1
