"""Corrections and retention: a wrongly attached identifier, a wrong merge, tokens past retention; all in the history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from jpr_client import ChangeKind, Credentials, RPCError, RegistryClient, Verdict
from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from tests.conftest import AdminClient, Registry
from tests.integration.test_changes import take
from tests.integration.test_lookup import OTHER_RIC, PHONE, RIC, accept, applicant, report


def subject(admin: AdminClient, subject_id: str) -> Any:
    return admin.call("GetSubject", admin_pb2.GetSubjectRequest(subject_id=subject_id))


def token_of(record: Any, id_type: int) -> str:
    return str(next(i.token_prefix for i in record.identifiers if i.type == id_type))


def test_a_detached_identifier_stops_matching_at_once_and_the_history_says_why(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], tmp_path: Path
) -> None:
    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        receipt = a.submit_report(report(("cn_ric", RIC), ("phone", PHONE)))
        accept(admin, receipt.report_id)
        assert b.lookup(applicant(("phone", PHONE))).verdict is Verdict.REVIEW
        phone = token_of(subject(admin, receipt.subject_id), types_pb2.IDENTIFIER_TYPE_PHONE)
        correction = admin.call("DetachIdentifier", admin_pb2.DetachIdentifierRequest(
            subject_id=receipt.subject_id, token_prefix=phone, reason="the number belongs to the landlord"))
        assert b.lookup(applicant(("phone", PHONE))).verdict is Verdict.CLEAR
        assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY
        created, corrected = take(b.watch_changes(tmp_path / "b.cursor"), 2)
    assert correction.report_ids == [receipt.report_id] and correction.listing_ids == ["L1"]  # type: ignore[attr-defined]
    assert (created.kind, corrected.kind) == (ChangeKind.CREATED, ChangeKind.CORRECTED)
    assert [t.type.value for t in corrected.tokens] == ["cn_ric"]
    record = subject(admin, receipt.subject_id)
    assert [i.type for i in record.identifiers] == [types_pb2.IDENTIFIER_TYPE_CN_RIC]
    detached = next(h for h in record.history if h.kind == "subject.identifier_detached")
    detail = json.loads(detached.detail_json)
    assert (detached.actor, detail["reason"], detail["id_type"]) == ("admin:admin", "the number belongs to the landlord", "phone")
    assert detail["token"].startswith(phone) and detail["reports"] == [receipt.report_id]


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"subject_id": "S1", "token_prefix": "abc", "reason": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "16 to 128 hex digits"),
        ({"subject_id": "S1", "token_prefix": "0" * 16, "reason": "x"}, grpc.StatusCode.NOT_FOUND, "has no identifier whose token"),
        ({"subject_id": "S9", "token_prefix": "0" * 16, "reason": "x"}, grpc.StatusCode.NOT_FOUND, "no subject S9"),
        ({"subject_id": "S1", "token_prefix": "0" * 16, "reason": " "}, grpc.StatusCode.INVALID_ARGUMENT, "reason is required"),
    ],
)
def test_bad_detach_requests_change_nothing(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], fields: dict[str, str], status: grpc.StatusCode, words: str
) -> None:
    with RegistryClient(member("platform-a")) as a:
        accept(admin, a.submit_report(report(("cn_ric", RIC))).report_id)
        before = subject(admin, "S1")
        with pytest.raises(RPCError) as refused:
            admin.call("DetachIdentifier", admin_pb2.DetachIdentifierRequest(**fields))
        assert refused.value.status is status and words in refused.value.message
        assert subject(admin, "S1") == before


def test_a_wrong_merge_is_split_and_each_person_keeps_their_own_listing(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b, RegistryClient(member("platform-c")) as c:
        first = a.submit_report(report(("cn_ric", RIC)))
        accept(admin, first.report_id)
        second = b.submit_report(report(("cn_ric", OTHER_RIC)))
        accept(admin, second.report_id)
        bridge = c.submit_report(report(("cn_ric", RIC), ("cn_ric", OTHER_RIC)))  # wrongly says they are one person
        merged = c.lookup(applicant(("cn_ric", OTHER_RIC))).matches[0].subject_id
        assert merged == first.subject_id

        with pytest.raises(RPCError) as refused:  # the bridge still ties both identifiers together
            admin.call("SplitSubject", admin_pb2.SplitSubjectRequest(subject_id=merged, report_ids=[second.report_id], reason="two people"))
        assert refused.value.status is grpc.StatusCode.FAILED_PRECONDITION
        assert "in reports on both sides of the split" in refused.value.message

        admin.call("RejectReport", admin_pb2.RejectReportRequest(report_id=bridge.report_id, reason="two different people"))
        split = admin.call("SplitSubject", admin_pb2.SplitSubjectRequest(
            subject_id=merged, report_ids=[second.report_id], reason="two people: birth dates differ"))
        own = c.lookup(applicant(("cn_ric", OTHER_RIC)))
        both = c.lookup(applicant(("cn_ric", RIC), ("cn_ric", OTHER_RIC)))
    new_subject = split.new_subject_id  # type: ignore[attr-defined]
    assert own.verdict is Verdict.DENY and [m.subject_id for m in own.matches] == [new_subject]
    assert sorted(m.subject_id for m in both.matches) == sorted([merged, new_subject])
    moved = subject(admin, new_subject)
    assert [r.report_id for r in moved.reports] == [second.report_id]
    assert [i.type for i in moved.identifiers] == [types_pb2.IDENTIFIER_TYPE_CN_RIC]
    assert [l.listing_id for l in moved.listings] == ["L2"]
    history = [h for h in subject(admin, merged).history if h.kind == "subject.split"]
    assert json.loads(history[0].detail_json)["reason"] == "two people: birth dates differ"
    assert json.loads(history[0].detail_json)["new_subject"] == new_subject


def test_tokens_are_unlinked_after_the_retention_period_and_the_person_starts_afresh(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    with RegistryClient(member("platform-a")) as a:
        old = a.submit_report(report(("cn_ric", RIC)))
        admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=old.report_id, term_days=1))
        registry.clock.offset_seconds = 86400 * (1 + 3 * 365) - 60  # a minute before retention ends
        assert registry.running.expiry.unlink_now() == 0
        registry.clock.offset_seconds += 120
        assert registry.running.expiry.unlink_now() == 1
        assert registry.running.expiry.unlink_now() == 0
        record = subject(admin, old.subject_id)
        assert list(record.identifiers) == []
        assert [h.kind for h in record.history][-1] == "subject.unlinked"
        assert [r.report_id for r in record.reports] == [old.report_id]  # the signed report stays, unlinked
        fresh = a.submit_report(report(("cn_ric", RIC)))
    assert fresh.subject_id != old.subject_id  # no link left to merge into


def test_subject_show_answers_an_access_request_with_everything(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    from jpr_client import Opinion

    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        receipt = a.submit_report(report(("cn_ric", RIC), ("phone", PHONE)))
        accept(admin, receipt.report_id)
        match = b.lookup(applicant(("cn_ric", RIC))).matches[0]
        b.record_opinion(match.listing_id, Opinion.CONFIRMED)
        admin.call("FileAppeal", admin_pb2.FileAppealRequest(listing_id=match.listing_id, reason="sold the shop in 2024"))
    record = subject(admin, receipt.subject_id)
    assert [r.report_id for r in record.reports] == [receipt.report_id] and record.reports[0].envelope
    assert [l.listing_id for l in record.listings] == [match.listing_id]
    assert [a.reason for a in record.appeals] == ["sold the shop in 2024"]
    assert [(o.member, o.listing_id) for o in record.opinions] == [("platform-b", match.listing_id)]
    assert [(m.member, m.lookups) for m in record.matches] == [("platform-b", 1)]
    assert len(record.identifiers) == 2
    kinds = [h.kind for h in record.history]
    assert kinds[:2] == ["subject.created", "report.submitted"]
    assert {"report.accepted", "listing.created", "listing.opinion", "appeal.filed"} <= set(kinds)
    with pytest.raises(RPCError) as unknown:
        subject(admin, "S77")
    assert unknown.value.status is grpc.StatusCode.NOT_FOUND


def test_after_a_split_each_record_holds_only_its_own_reports_history(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    with RegistryClient(member("platform-a")) as a, RegistryClient(member("platform-b")) as b:
        first = a.submit_report(report(("cn_ric", RIC)))
        second = b.submit_report(report(("cn_ric", RIC), ("cn_ric", OTHER_RIC)))  # merges into the first's subject
        third = b.submit_report(report(("cn_ric", OTHER_RIC)))
        admin.call("RejectReport", admin_pb2.RejectReportRequest(report_id=second.report_id, reason="two people"))
        split = admin.call("SplitSubject", admin_pb2.SplitSubjectRequest(
            subject_id=first.subject_id, report_ids=[third.report_id], reason="two people"))
    old, new = subject(admin, first.subject_id), subject(admin, split.new_subject_id)  # type: ignore[attr-defined]
    assert third.report_id not in {h.report_id for h in old.history}
    assert third.report_id in {h.report_id for h in new.history}
