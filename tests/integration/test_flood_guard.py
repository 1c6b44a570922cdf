"""The flood guard: a listing matched far out of line answers REVIEW (QUARANTINED) until a person decides.

Defaults: 50 strong matches from 3 members within 60 minutes, and 10 times the listing's baseline
(its own matches per hour over the 24 hours before, the median listing's, or 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from jpr_client import ChangeKind, Credentials, MatchReason, RegistryClient, RPCError, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.store.models import EventRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_changes import lift, take
from tests.integration.test_cli import Jpr, jpr  # noqa: F401 (jpr: a fixture)
from tests.integration.test_lookup import RIC, accept, applicant, platforms, report  # noqa: F401 (platforms: a fixture)

ONE_HOUR = 3600.0


def listed(admin: AdminClient, client: RegistryClient) -> str:
    receipt = client.submit_report(report(("cn_ric", RIC)))
    accept(admin, receipt.report_id)
    listing_id: str = client.lookup(applicant(("cn_ric", RIC))).matches[0].listing_id
    return listing_id


def burst(clients: tuple[RegistryClient, ...], each: int) -> None:
    """`each` entry audits of the listed person from every client, in one batch per client."""
    for client in clients:
        results = client.lookup_batch([applicant(("cn_ric", RIC))] * each)
        assert {r.verdict for r in results} <= {Verdict.DENY, Verdict.REVIEW}


def verdict(client: RegistryClient) -> tuple[Verdict, MatchReason]:
    result = client.lookup(applicant(("cn_ric", RIC)))
    return result.verdict, result.matches[0].reason


def events(registry: Registry, kind: str) -> list[dict[str, Any]]:
    with registry.database.read() as conn:
        return list(conn.execute(select(EventRow.detail).where(EventRow.kind == kind).order_by(EventRow.seq)).scalars())


def release(admin: AdminClient, listing_id: str, reason: str = "checked: a real fraud ring, the matches are right") -> Any:
    return admin.call("ReleaseListing", admin_pb2.ReleaseListingRequest(listing_id=listing_id, reason=reason))


def test_a_burst_from_many_platforms_quarantines_the_listing_until_an_admin_releases_it(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], tmp_path: Path
) -> None:
    a, b, c = platforms
    listing_id = listed(admin, a)
    burst(platforms, 20)  # 60 strong matches from 3 members within the hour; each counts up to 17: 51
    registry.running.flood.check()

    assert verdict(c) == (Verdict.REVIEW, MatchReason.QUARANTINED)
    (held,) = events(registry, "listing.quarantined")
    assert held["figures"]["matches"] == 51 and held["figures"]["platforms"] == 3 and held["status"] == "ACTIVE"
    assert "from 3 members in 60 minutes (each member counted up to 17)" in held["reason"]
    top = admin.call("ListReviewQueue", admin_pb2.ListReviewQueueRequest()).items[0]
    assert top.listing.listing_id == listing_id
    assert top.quarantine.matches == 51 and top.quarantine.platforms == 3 and top.quarantine.window_minutes == 60
    assert "baseline of 1.0 an hour" in top.quarantine.explanation

    released = release(admin, listing_id)
    assert released.status == types_pb2.LISTING_STATUS_ACTIVE
    registry.running.flood.check()  # the burst that tripped it is not counted again
    assert verdict(c) == (Verdict.DENY, MatchReason.ACTIVE_LISTING)
    assert events(registry, "listing.released")[0]["figures"]["matches"] == 51
    assert not admin.call("ListReviewQueue", admin_pb2.ListReviewQueueRequest()).items
    burst(platforms, 20)  # the same burst again: a person found it right, it is not held again
    registry.running.flood.check()
    assert verdict(c) == (Verdict.DENY, MatchReason.ACTIVE_LISTING)
    kinds = [x.kind for x in take(c.watch_changes(tmp_path / "c.cursor"), 3)]
    assert kinds == [ChangeKind.CREATED, ChangeKind.QUARANTINED, ChangeKind.RELEASED]


def test_one_member_cannot_quarantine_a_listing_with_two_others_chance_matches(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    a, b, c = platforms
    listed(admin, a)
    a.lookup_batch([applicant(("cn_ric", RIC))] * 480)  # a member flooding on its own: counted up to 17
    burst((b, c), 1)
    registry.running.flood.check()
    assert verdict(c) == (Verdict.DENY, MatchReason.ACTIVE_LISTING)
    assert not events(registry, "listing.quarantined")


def test_a_quarantined_listing_can_be_lifted_instead(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    listing_id = listed(admin, platforms[0])
    burst(platforms, 20)
    registry.running.flood.check()
    lift(admin, listing_id, "the report named a shared company phone")
    assert platforms[2].lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    with pytest.raises(RPCError) as refused:
        release(admin, listing_id)
    assert refused.value.status is grpc.StatusCode.FAILED_PRECONDITION and "is not quarantined" in refused.value.message


@pytest.mark.parametrize(
    ("clients", "each", "why"),
    [
        (2, 40, "80 matches, but from 2 members"),
        (3, 16, "48 matches, under 50"),
    ],
)
def test_matches_below_a_threshold_do_not_quarantine(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], clients: int, each: int, why: str
) -> None:
    listed(admin, platforms[0])
    burst(platforms[:clients], each)
    registry.running.flood.check()
    assert verdict(platforms[2]) == (Verdict.DENY, MatchReason.ACTIVE_LISTING), why
    assert not events(registry, "listing.quarantined")


def test_a_listing_that_always_matched_this_much_is_not_out_of_line(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], member: Callable[[str], Credentials]
) -> None:
    listed(admin, platforms[0])
    for _hour in range(24):  # a day of 30 matches an hour (3 members, 10 each): the listing's own history
        burst(platforms, 10)
        registry.running.flood.check()
        registry.clock.offset_seconds += ONE_HOUR
    many = [RegistryClient(member(f"platform-{n}")) for n in range(30)]
    try:
        burst(tuple(many[:15]), 17)  # 255 in the hour from 15 members: 8x its own rate
        registry.running.flood.check()
        assert verdict(platforms[2]) == (Verdict.DENY, MatchReason.ACTIVE_LISTING)
        registry.clock.offset_seconds += ONE_HOUR
        burst(tuple(many), 20)  # 30 members, each counted up to 17: 510, over 10x its rate with that hour (40.6)
        registry.running.flood.check()
        assert verdict(platforms[2]) == (Verdict.REVIEW, MatchReason.QUARANTINED)
    finally:
        for client in many:
            client.close()


@pytest.mark.parametrize(
    ("listing_id", "reason", "status", "words"),
    [
        ("L1", "", grpc.StatusCode.INVALID_ARGUMENT, "reason"),
        ("listing-1", "checked", grpc.StatusCode.INVALID_ARGUMENT, "listing-1"),
        ("L999", "checked", grpc.StatusCode.NOT_FOUND, "no listing L999"),
        ("L1", "checked", grpc.StatusCode.FAILED_PRECONDITION, "is not quarantined"),
    ],
)
def test_release_refusals(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], listing_id: str, reason: str,
    status: grpc.StatusCode, words: str,
) -> None:
    assert listed(admin, platforms[0]) == "L1"
    with pytest.raises(RPCError) as refused:
        release(admin, listing_id, reason)
    assert refused.value.status is status and words in refused.value.message


def test_the_cli_shows_the_quarantine_in_the_review_queue_and_releases_it(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], jpr: Jpr
) -> None:
    listing_id = listed(admin, platforms[0])
    burst(platforms, 20)
    registry.running.flood.check()
    (row,) = json.loads(jpr.admin("admin", "listings", "queue", "--json"))["items"]
    assert row["listing_id"] == listing_id and "strong matches from 3 members" in row["quarantined"]
    assert "released" in jpr.admin("admin", "listings", "release", listing_id, "--reason", "checked with platform-a's evidence")
    assert verdict(platforms[2]) == (Verdict.DENY, MatchReason.ACTIVE_LISTING)
