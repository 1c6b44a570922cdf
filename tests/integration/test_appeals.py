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
from tests.integration.test_lookup import RIC, applicant, platforms  # noqa: F401 (platforms: a fixture)

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
