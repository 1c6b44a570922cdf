"""Member feedback: an opinion follows the member's own matching lookup; lookups count them; disputes reach review first."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from sqlalchemy import select

from jpr_client import Credentials, Opinion, RPCError, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from registry.store.models import EventRow, SubjectMatchRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_appeals import file
from tests.integration.test_lookup import accept, applicant, report
from tests.integration.test_replicas import valid_ric


def listed_person(admin: AdminClient, reporter: RegistryClient, n: int) -> str:
    accept(admin, reporter.submit_report(report(("cn_ric", valid_ric(n)))).report_id)
    listings = admin.call("ListListings", admin_pb2.ListListingsRequest()).listings  # type: ignore[attr-defined]
    return str(listings[-1].listing_id)


def audit(client: RegistryClient, n: int) -> str:
    """The member's own entry audit of person n: the listing its lookup matched."""
    match = client.lookup(applicant(("cn_ric", valid_ric(n)))).matches[0]
    return match.listing_id


def test_an_opinion_follows_the_members_own_audit_and_is_one_per_member(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        listing = listed_person(admin, a, 1)
        with pytest.raises(RPCError) as unaudited:
            b.record_opinion(listing, Opinion.CONFIRMED)
        assert unaudited.value.status is grpc.StatusCode.NOT_FOUND
        assert f"no listing {listing} among those your entry audits matched" in unaudited.value.message

        assert audit(b, 1) == listing
        with pytest.raises(RPCError) as reasonless:
            b.record_opinion(listing, Opinion.DISPUTED)
        assert reasonless.value.status is grpc.StatusCode.INVALID_ARGUMENT
        disputed = b.record_opinion(listing, Opinion.DISPUTED, "the ID card photo shows another person")
        assert (disputed.confirmations, disputed.disputes) == (0, 1)
        seen = a.lookup(applicant(("cn_ric", valid_ric(1))))
        assert seen.verdict is Verdict.DENY
        assert (seen.matches[0].confirmations, seen.matches[0].disputes) == (0, 1)

        changed = b.record_opinion(listing, Opinion.CONFIRMED)  # replaces B's opinion, does not add one
        assert (changed.confirmations, changed.disputes) == (1, 0)
        again = a.lookup(applicant(("cn_ric", valid_ric(1)))).matches[0]
        assert (again.confirmations, again.disputes) == (1, 0)
    registry.running.matches.flush()  # lookups are written once a second; now
    with registry.database.read() as conn:
        opinions = conn.execute(select(EventRow.actor, EventRow.detail).where(EventRow.kind == "listing.opinion")).all()
        matched = conn.execute(select(SubjectMatchRow.lookups)).scalars().all()
    assert [(actor, d["opinion"]) for actor, d in opinions] == [("member:platform-b", "DISPUTED"), ("member:platform-b", "CONFIRMED")]
    assert sum(matched) == 3  # B's audit and A's two lookups are on record for the access request


def test_a_listing_disputed_by_two_members_comes_first_in_the_review_queue(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    names = ["platform-a", "platform-b", "platform-c"]
    clients = [RegistryClient(member(name)) for name in names]
    a, b, c = clients
    try:
        once = listed_person(admin, a, 1)  # disputed by one member
        appealed = listed_person(admin, a, 2)  # under appeal, undisputed
        twice = listed_person(admin, a, 3)  # the newest, disputed by two
        untouched = listed_person(admin, a, 4)
        file(admin, appealed)
        b.record_opinion(audit(b, 1), Opinion.DISPUTED, "namesake")
        for client in (b, c):
            client.record_opinion(audit(client, 3), Opinion.DISPUTED, "different birth date on file")
        c.record_opinion(audit(c, 4), Opinion.CONFIRMED)
        queue = admin.call("ListReviewQueue", admin_pb2.ListReviewQueueRequest()).items  # type: ignore[attr-defined]
    finally:
        for client in clients:
            client.close()
    assert [i.listing.listing_id for i in queue] == [twice, once, appealed]
    assert untouched not in [i.listing.listing_id for i in queue]
    first = queue[0]
    assert first.disputes == 2 and [n.member for n in first.opinions] == ["platform-b", "platform-c"]
    assert first.opinions[0].reason == "different birth date on file"
    assert queue[2].appeal_pending and queue[2].disputes == 0


def test_bad_opinions_get_their_own_status(registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]) -> None:
    with RegistryClient(member("platform-a")) as a:
        listing = listed_person(admin, a, 1)
        audit(a, 1)
        cases = [
            (registry_pb2.RecordOpinionRequest(listing_id="L999", opinion=types_pb2.OPINION_CONFIRMED), grpc.StatusCode.NOT_FOUND, "no listing L999 among those"),
            (registry_pb2.RecordOpinionRequest(listing_id="X1", opinion=types_pb2.OPINION_CONFIRMED), grpc.StatusCode.INVALID_ARGUMENT, "is not a listing id"),
            (registry_pb2.RecordOpinionRequest(listing_id=listing), grpc.StatusCode.INVALID_ARGUMENT, "opinion: 0 is not a known value"),
            (registry_pb2.RecordOpinionRequest(listing_id=listing, opinion=types_pb2.OPINION_DISPUTED, reason="x" * 501),
             grpc.StatusCode.INVALID_ARGUMENT, "at most 500"),
        ]
        for request, status, words in cases:
            with pytest.raises(grpc.RpcError) as refused:
                a._stub.RecordOpinion(request, timeout=5)
            assert refused.value.code() is status, request
            assert words in (refused.value.details() or ""), refused.value.details()
