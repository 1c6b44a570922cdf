"""One appeal at the association reaches every platform: pending, lookups still deny and say so; upheld lifts."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sqlalchemy import select

from jpr_client import RPCError, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2
from registry.store.models import EventRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_lifting import listed
from tests.integration.test_lookup import RIC, applicant, platforms, report  # noqa: F401 (platforms: a fixture)

UPHELD, DENIED = admin_pb2.APPEAL_STATUS_UPHELD, admin_pb2.APPEAL_STATUS_DENIED


def file(admin: AdminClient, listing_id: str, reason: str = "the shop was sold before the violations") -> Any:
    return admin.call("FileAppeal", admin_pb2.FileAppealRequest(listing_id=listing_id, reason=reason))


def decide(admin: AdminClient, appeal_id: str, decision: int, reason: str = "bill of sale verified") -> Any:
    return admin.call("DecideAppeal", admin_pb2.DecideAppealRequest(appeal_id=appeal_id, decision=decision, reason=reason))


def test_pending_appeal_still_denies_and_says_so_then_upheld_lifts(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    a, b, _ = platforms
    appeal = file(admin, listed(admin, a))
    assert appeal.status == admin_pb2.APPEAL_STATUS_PENDING
    result = b.lookup(applicant(("cn_ric", RIC)))
    assert result.verdict is Verdict.DENY and result.matches[0].appeal_pending
    assert decide(admin, appeal.appeal_id, UPHELD).status == UPHELD
    assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR
    with registry.database.read() as conn:
        kinds = [k for (k,) in conn.execute(select(EventRow.kind).order_by(EventRow.seq))]
    assert kinds[-3:] == ["appeal.filed", "appeal.upheld", "listing.lifted"]


def test_denied_appeal_keeps_the_listing_and_clears_the_flag(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, _ = platforms
    listing_id = listed(admin, a)
    appeal = file(admin, listing_id)
    decide(admin, appeal.appeal_id, DENIED, "the sale was a sham")
    result = b.lookup(applicant(("cn_ric", RIC)))
    assert result.verdict is Verdict.DENY and not result.matches[0].appeal_pending
    assert file(admin, listing_id).status == admin_pb2.APPEAL_STATUS_PENDING  # a new appeal may follow a decided one


def test_appeal_refusals(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    listing_id = listed(admin, platforms[0])
    appeal = file(admin, listing_id)
    for call, status, words in [
        (lambda: file(admin, listing_id), grpc.StatusCode.ALREADY_EXISTS, "pending appeal"),
        (lambda: file(admin, listing_id, " "), grpc.StatusCode.INVALID_ARGUMENT, "reason is required"),
        (lambda: file(admin, "L999"), grpc.StatusCode.NOT_FOUND, "L999"),
        (lambda: decide(admin, appeal.appeal_id, 0), grpc.StatusCode.INVALID_ARGUMENT, "decision"),
        (lambda: decide(admin, "A999", UPHELD), grpc.StatusCode.NOT_FOUND, "A999"),
        (lambda: decide(admin, "L1", UPHELD), grpc.StatusCode.INVALID_ARGUMENT, "appeal id"),
    ]:
        with pytest.raises(RPCError) as caught:
            call()
        assert caught.value.status is status and words in caught.value.message, caught.value.message
    decide(admin, appeal.appeal_id, DENIED)
    with pytest.raises(RPCError) as caught:
        decide(admin, appeal.appeal_id, UPHELD)
    assert caught.value.status is grpc.StatusCode.FAILED_PRECONDITION


RICS = ("11010519491231002X", "110101199003070978", "110102198506121230")


def appealed_listings(admin: AdminClient, client: RegistryClient) -> list[str]:
    """One listing per RIC, each with an appeal filed in that order: the appeal ids."""
    appeal_ids = []
    for ric in RICS:
        report_id = client.submit_report(report(("cn_ric", ric))).report_id
        listing: Any = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=report_id))
        appeal_ids.append(file(admin, listing.listing.listing_id).appeal_id)
    return appeal_ids


def appeal_pages(admin: AdminClient, status: int, page_size: int) -> list[list[str]]:
    pages, token = [], ""
    while True:
        page: Any = admin.call("ListAppeals", admin_pb2.ListAppealsRequest(status=status, page_size=page_size, page_token=token))
        pages.append([a.appeal_id for a in page.appeals])
        token = page.next_page_token
        if not token:
            return pages


def test_appeals_are_listed_oldest_filed_first_by_status_page_by_page(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    first, second, third = appealed_listings(admin, platforms[0])
    decide(admin, second, DENIED, "the sale was a sham")
    assert appeal_pages(admin, 0, 2) == [[first, second], [third]]
    assert appeal_pages(admin, admin_pb2.APPEAL_STATUS_PENDING, 1) == [[first], [third]]
    assert appeal_pages(admin, DENIED, 50) == [[second]]
    assert appeal_pages(admin, UPHELD, 50) == [[]]
    denied: Any = admin.call("ListAppeals", admin_pb2.ListAppealsRequest(status=DENIED))
    assert (denied.appeals[0].decision_reason, denied.appeals[0].decided_by) == ("the sale was a sham", "admin:admin")


def test_list_appeals_refuses_bad_input_naming_the_field(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    appealed_listings(admin, platforms[0])  # three of each: a page of one has a next token
    tokens = {
        method: admin.call(method, getattr(admin_pb2, f"{method}Request")(page_size=1)).next_page_token  # type: ignore[attr-defined]
        for method in ("ListReports", "ListListings", "ListAppeals")
    }
    with pytest.raises(RPCError) as caught:
        admin.call("ListListings", admin_pb2.ListListingsRequest(page_token=tokens["ListAppeals"]))
    assert "page_token is not a ListListings token" in caught.value.message
    for request, words in [
        (admin_pb2.ListAppealsRequest(page_token="not-a-token"), "page_token is not one this registry issued"),
        (admin_pb2.ListAppealsRequest(page_token=tokens["ListReports"]), "page_token is not a ListAppeals token"),
        (admin_pb2.ListAppealsRequest(page_token=tokens["ListListings"]), "page_token is not a ListAppeals token"),
        (admin_pb2.ListAppealsRequest(status=9), "status: 9 is not a known value"),  # type: ignore[arg-type]
        (admin_pb2.ListAppealsRequest(page_size=501), "page_size 501"),
    ]:
        with pytest.raises(RPCError) as caught:
            admin.call("ListAppeals", request)
        assert caught.value.status is grpc.StatusCode.INVALID_ARGUMENT and words in caught.value.message, caught.value.message


def test_review_queue_names_the_pending_appeal(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    listing_id = listed(admin, platforms[0])
    appeal = file(admin, listing_id)
    queue: Any = admin.call("ListReviewQueue", admin_pb2.ListReviewQueueRequest())
    assert [(i.listing.listing_id, i.appeal_pending, i.appeal_id) for i in queue.items] == [(listing_id, True, appeal.appeal_id)]
    decide(admin, appeal.appeal_id, DENIED)
    assert not admin.call("ListReviewQueue", admin_pb2.ListReviewQueueRequest()).items  # type: ignore[attr-defined]
