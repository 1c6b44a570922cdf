"""Entry-audit verdicts: DENY, REVIEW, CLEAR, what a match says, and what it never says."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta

import grpc
import pytest

from jpr_client import (
    Applicant,
    Category,
    Credentials,
    IdentifierType,
    MatchReason,
    NewReport,
    RPCError,
    RegistryClient,
    Role,
    Severity,
    Verdict,
    normalize,
)
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2, types_pb2
from tests.conftest import AdminClient, Registry

RIC = "11010519491231002X"
OTHER_RIC = "110101199003070978"
PHONE = "13800138000"


def report(*identifiers: tuple[str, str], category: Category = Category.FRAUD) -> NewReport:
    return NewReport(
        role=Role.ANCHOR,
        identifiers=tuple(normalize(k, v) for k, v in identifiers),
        category=category,
        severity=Severity.SERIOUS,
        summary="fake sales data in live sessions",
        platform_action="live room closed",
        evidence_sha256=hashlib.sha256(b"secret evidence").digest(),
    )


def applicant(*identifiers: tuple[str, str]) -> Applicant:
    return Applicant(role=Role.ANCHOR, identifiers=tuple(normalize(k, v) for k, v in identifiers))


@pytest.fixture
def platforms(member: Callable[[str], Credentials]) -> Iterator[tuple[RegistryClient, RegistryClient, RegistryClient]]:
    clients = [RegistryClient(member(name)) for name in ("platform-a", "platform-b", "platform-c")]
    yield clients[0], clients[1], clients[2]
    for client in clients:
        client.close()


def accept(admin: AdminClient, report_id: str) -> None:
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=report_id, reason="verified"))


def test_nothing_known_is_clear(platforms: tuple[RegistryClient, ...]) -> None:
    result = platforms[1].lookup(applicant(("cn_ric", RIC), ("phone", PHONE)))
    assert result.verdict is Verdict.CLEAR and result.matches == ()


def test_active_listing_matched_only_by_a_weak_identifier_is_review(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    accept(admin, platforms[0].submit_report(report(("cn_ric", RIC), ("phone", PHONE))).report_id)
    result = platforms[1].lookup(applicant(("cn_ric", OTHER_RIC), ("phone", PHONE)))
    assert result.verdict is Verdict.REVIEW
    (match,) = result.matches
    assert match.reason is MatchReason.ACTIVE_LISTING and not match.strong_match
    assert match.matched_types == (IdentifierType.PHONE,)


def test_report_under_review_is_review_and_rejected_one_is_clear(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    receipt = platforms[0].submit_report(report(("cn_ric", RIC)))
    result = platforms[1].lookup(applicant(("cn_ric", RIC)))
    assert result.verdict is Verdict.REVIEW
    assert result.matches[0].reason is MatchReason.REPORT_UNDER_REVIEW
    assert result.matches[0].listed_until is None
    admin.call("RejectReport", admin_pb2.RejectReportRequest(report_id=receipt.report_id, reason="evidence insufficient"))
    assert platforms[1].lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR


def test_match_counts_distinct_platforms_and_unites_categories(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, c = platforms
    accept(admin, a.submit_report(report(("cn_ric", RIC), category=Category.FRAUD)).report_id)
    accept(admin, b.submit_report(report(("cn_ric", RIC), ("phone", PHONE), category=Category.TAX_EVASION)).report_id)
    accept(admin, a.submit_report(report(("cn_ric", RIC), category=Category.FRAUD)).report_id)
    result = c.lookup(applicant(("cn_ric", RIC), ("phone", PHONE)))
    assert result.verdict is Verdict.DENY
    (match,) = result.matches
    assert match.reporting_platforms == 2
    assert match.categories == (Category.FRAUD, Category.TAX_EVASION)
    assert match.matched_types == (IdentifierType.CN_RIC, IdentifierType.PHONE)
    assert match.roles == (Role.ANCHOR,)


def test_lookup_never_reveals_other_platforms_tokens_reports_or_evidence(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, _ = platforms
    secret_phone = "13912345678"
    receipt = a.submit_report(report(("cn_ric", RIC), ("phone", secret_phone), ("platform_account", "platform-a:shop-991")))
    accept(admin, receipt.report_id)
    hidden_tokens = [t.value for t in a.tokenize([normalize("phone", secret_phone), normalize("platform_account", "platform-a:shop-991")])]
    (ric_token,) = b.tokenize([normalize("cn_ric", RIC)])
    request = registry_pb2.LookupRequest(
        applicant=registry_pb2.Applicant(
            role=types_pb2.ROLE_ANCHOR,
            identifiers=[types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_CN_RIC, token=ric_token.value)],
        )
    )
    raw = b._stub.Lookup(request, timeout=10).SerializeToString()
    assert registry_pb2.LookupResult.FromString(raw).verdict == registry_pb2.VERDICT_DENY
    for secret in [*hidden_tokens, receipt.report_id.encode(), hashlib.sha256(b"secret evidence").digest(), b"platform-a", b"shop-991"]:
        assert secret not in raw


def test_lookup_batch_answers_a_thousand_applicants_in_order(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, _ = platforms
    accept(admin, a.submit_report(report(("cn_ric", RIC))).report_id)
    a.submit_report(report(("cn_ric", OTHER_RIC)))
    applicants = [applicant(("email", f"user{i}@example.com")) for i in range(1000)]
    applicants[7] = applicant(("cn_ric", RIC))
    applicants[500] = applicant(("cn_ric", OTHER_RIC), ("email", "x@example.com"))
    applicants[999] = applicant(("email", "last@example.com"), ("cn_ric", RIC))
    results = b.lookup_batch(applicants)
    assert len(results) == 1000
    verdicts = {i: r.verdict for i, r in enumerate(results) if r.verdict is not Verdict.CLEAR}
    assert verdicts == {7: Verdict.DENY, 500: Verdict.REVIEW, 999: Verdict.DENY}


def test_lookup_batch_over_the_limit_is_invalid_argument(platforms: tuple[RegistryClient, ...]) -> None:
    (token,) = platforms[0].tokenize([normalize("phone", PHONE)])
    one = registry_pb2.Applicant(identifiers=[types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=token.value)])
    with pytest.raises(grpc.RpcError) as caught:
        platforms[0]._stub.LookupBatch(registry_pb2.LookupBatchRequest(applicants=[one] * 1001), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 1000" in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("identifiers", "words"),
    [
        ([], "no identifiers"),
        ([types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=b"13800138000")], "64 bytes"),
        ([types_pb2.IdentifierToken(type=0, token=bytes(64))], "type"),
    ],
)
def test_bad_applicants_are_invalid_argument(platforms: tuple[RegistryClient, ...], identifiers: list[types_pb2.IdentifierToken], words: str) -> None:
    request = registry_pb2.LookupRequest(applicant=registry_pb2.Applicant(identifiers=identifiers))
    with pytest.raises(grpc.RpcError) as caught:
        platforms[0]._stub.Lookup(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert words in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("second", "words"),
    [
        (types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=b"13800138000"), "applicants[2].identifiers[1].token: 11 bytes"),
        (types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_PHONE, token=bytes(64)), "applicants[2].identifiers[1].token: the same token"),
        (types_pb2.IdentifierToken(type=0, token=bytes(range(64))), "applicants[2].identifiers[1].type"),
    ],
)
def test_a_bad_token_in_a_batch_is_invalid_argument_naming_its_applicant_and_place(
    platforms: tuple[RegistryClient, ...], second: types_pb2.IdentifierToken, words: str
) -> None:
    first = types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_CN_RIC, token=bytes(64))
    good = registry_pb2.Applicant(identifiers=[first])
    bad = registry_pb2.Applicant(identifiers=[first, second])
    with pytest.raises(grpc.RpcError) as caught:
        platforms[0]._stub.LookupBatch(registry_pb2.LookupBatchRequest(applicants=[good, good, bad, good]), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert words in (caught.value.details() or "")


def test_tokenize_refuses_invalid_elements_with_their_index(platforms: tuple[RegistryClient, ...]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        platforms[0]._stub.Tokenize(registry_pb2.TokenizeRequest(blinded_elements=[b"\x01" * 32, bytes(32)]), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "blinded_elements[0]" in (caught.value.details() or "")


def test_get_report_of_another_member_is_not_found(platforms: tuple[RegistryClient, ...]) -> None:
    receipt = platforms[0].submit_report(report(("cn_ric", RIC)))
    assert platforms[0].get_report(receipt.report_id).report_id == receipt.report_id
    with pytest.raises(RPCError) as caught:
        platforms[1].get_report(receipt.report_id)
    assert caught.value.status is grpc.StatusCode.NOT_FOUND


def test_unreviewed_report_bridging_to_a_listed_person_is_review_and_rejecting_it_clears(
    admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    a, b, c = platforms
    accept(admin, a.submit_report(report(("cn_ric", RIC))).report_id)
    bridge = b.submit_report(report(("cn_ric", RIC), ("cn_ric", OTHER_RIC), ("phone", PHONE)))
    other = c.lookup(applicant(("cn_ric", OTHER_RIC)))
    assert other.verdict is Verdict.REVIEW
    assert other.matches[0].reason is MatchReason.REPORT_UNDER_REVIEW
    assert c.lookup(applicant(("phone", PHONE))).verdict is Verdict.REVIEW
    admin.call("RejectReport", admin_pb2.RejectReportRequest(report_id=bridge.report_id, reason="wrong person"))
    assert c.lookup(applicant(("cn_ric", OTHER_RIC))).verdict is Verdict.CLEAR
    assert c.lookup(applicant(("phone", PHONE))).verdict is Verdict.CLEAR
    assert c.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY


def test_strength_comes_from_the_signed_report_not_the_callers_label(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, _ = platforms
    accept(admin, a.submit_report(report(("cn_ric", RIC), ("phone", PHONE))).report_id)
    (phone_token,) = b.tokenize([normalize("phone", PHONE)])
    relabelled = registry_pb2.LookupRequest(
        applicant=registry_pb2.Applicant(
            identifiers=[types_pb2.IdentifierToken(type=types_pb2.IDENTIFIER_TYPE_CN_RIC, token=phone_token.value)]
        )
    )
    result = b._stub.Lookup(relabelled, timeout=10)
    assert result.verdict == registry_pb2.VERDICT_REVIEW
    assert list(result.matches[0].matched_types) == [types_pb2.IDENTIFIER_TYPE_PHONE]


def test_deny_outranks_review_when_an_applicant_matches_two_subjects(admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, c = platforms
    accept(admin, a.submit_report(report(("cn_ric", RIC))).report_id)
    b.submit_report(report(("cn_ric", OTHER_RIC), ("phone", PHONE)))
    result = c.lookup(applicant(("phone", PHONE), ("cn_ric", RIC)))
    assert result.verdict is Verdict.DENY
    assert [m.reason for m in result.matches] == [MatchReason.ACTIVE_LISTING, MatchReason.REPORT_UNDER_REVIEW]


def test_listing_expires_at_its_end_without_any_job(registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, _ = platforms
    receipt = a.submit_report(report(("cn_ric", RIC)))
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, term_days=10))
    registry.clock.offset_seconds = 10 * 86400 - 5
    assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY
    registry.clock.offset_seconds = 10 * 86400 + 1
    assert b.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.CLEAR


def test_serious_reports_default_to_three_years_and_a_second_acceptance_extends(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    a, b, _ = platforms
    first = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=a.submit_report(report(("cn_ric", RIC))).report_id))
    listing = first.listing  # type: ignore[attr-defined]
    term = listing.listed_until.ToDatetime() - listing.listed_from.ToDatetime()
    assert term.days == 3 * 365
    registry.clock.offset_seconds = 100 * 86400
    second = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=b.submit_report(report(("cn_ric", RIC))).report_id))
    assert second.listing.listing_id == listing.listing_id  # type: ignore[attr-defined]
    assert second.listing.listed_until.ToDatetime() - listing.listed_until.ToDatetime() >= timedelta(days=99)  # type: ignore[attr-defined]


def test_unreviewed_merge_does_not_carry_an_expired_cases_tokens_into_a_listing(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    a, b, c = platforms
    old = a.submit_report(report(("cn_ric", OTHER_RIC), ("phone", PHONE)))
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=old.report_id, term_days=1))
    registry.clock.offset_seconds = 2 * 86400  # the old case has expired
    accept(admin, a.submit_report(report(("cn_ric", RIC))).report_id)
    b.submit_report(report(("cn_ric", RIC), ("cn_ric", OTHER_RIC)))  # unreviewed bridge merges the two
    result = c.lookup(applicant(("phone", PHONE)))
    assert result.verdict is Verdict.REVIEW
    assert result.matches[0].reason is MatchReason.REPORT_UNDER_REVIEW
