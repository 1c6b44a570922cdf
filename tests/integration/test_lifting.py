"""Ending a listing early: credit repair after the minimum period, or correcting a wrong listing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sqlalchemy import select

from jpr_client import RPCError, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.store.models import EventRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_lookup import RIC, applicant, platforms, report  # noqa: F401 (platforms: a fixture)

CREDIT_REPAIR, CORRECTION = admin_pb2.LIFT_GROUNDS_CREDIT_REPAIR, admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION


def listed(admin: AdminClient, client: RegistryClient) -> str:
    report_id = client.submit_report(report(("cn_ric", RIC))).report_id
    response: Any = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=report_id, term_days=3 * 365))
    return str(response.listing.listing_id)


def lift(admin: AdminClient, listing_id: str, grounds: int, reason: str = "credit repaired: restitution paid") -> Any:
    return admin.call("LiftListing", admin_pb2.LiftListingRequest(listing_id=listing_id, grounds=grounds, reason=reason))


def refused(admin: AdminClient, listing_id: str, grounds: int, status: grpc.StatusCode, words: str, reason: str = "paid") -> None:
    with pytest.raises(RPCError) as caught:
        lift(admin, listing_id, grounds, reason)
    assert caught.value.status is status and words in caught.value.message, caught.value.message


def test_credit_repair_is_refused_before_the_minimum_and_allowed_after(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    a, b, _ = platforms
    listing_id = listed(admin, a)
    registry.clock.offset_seconds = 364 * 86400
    refused(admin, listing_id, CREDIT_REPAIR, grpc.StatusCode.FAILED_PRECONDITION, "365 days")
    assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY
    registry.clock.offset_seconds = 366 * 86400
    lifted = lift(admin, listing_id, CREDIT_REPAIR)
    assert lifted.status == types_pb2.LISTING_STATUS_LIFTED
    assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    refused(admin, listing_id, CREDIT_REPAIR, grpc.StatusCode.FAILED_PRECONDITION, "LIFTED")
    with registry.database.read() as conn:
        actor, detail = conn.execute(select(EventRow.actor, EventRow.detail).where(EventRow.kind == "listing.lifted")).one()
    assert actor == "admin:admin" and detail["grounds"] == "CREDIT_REPAIR" and detail["reason"] == "credit repaired: restitution paid"
    assert detail["status"] == "LIFTED"  # the listing as it stood right after the decision


def test_a_wrong_listing_is_corrected_at_any_time(registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, _ = platforms
    listing_id = listed(admin, a)
    lift(admin, listing_id, CORRECTION, "accepted against the wrong person")
    assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR


@pytest.mark.parametrize(
    ("listing_id", "grounds", "reason", "status", "words"),
    [
        (None, CORRECTION, " ", grpc.StatusCode.INVALID_ARGUMENT, "reason is required"),
        (None, 0, "x", grpc.StatusCode.INVALID_ARGUMENT, "grounds"),
        ("L999", CORRECTION, "x", grpc.StatusCode.NOT_FOUND, "L999"),
        ("S1", CORRECTION, "x", grpc.StatusCode.INVALID_ARGUMENT, "listing id"),
    ],
)
def test_bad_lift_requests_are_refused(
    admin: AdminClient, platforms: tuple[RegistryClient, ...], listing_id: str | None, grounds: int, reason: str,
    status: grpc.StatusCode, words: str,
) -> None:
    real = listed(admin, platforms[0])
    refused(admin, listing_id or real, grounds, status, words, reason)
    assert platforms[1].lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY
