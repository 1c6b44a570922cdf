"""The product's whole path: signed report in, admin decision, verdict out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from jpr_client import (
    Applicant,
    Category,
    Credentials,
    NewReport,
    RegistryClient,
    ReportStatus,
    Role,
    Severity,
    Verdict,
    normalize,
)
from jpr_client.api.jpr.v1 import admin_pb2
from tests.conftest import AdminClient

RIC = "11010519491231002X"


def new_report(*identifiers: tuple[str, str], severity: Severity = Severity.SEVERE) -> NewReport:
    return NewReport(
        role=Role.MERCHANT,
        identifiers=tuple(normalize(kind, value) for kind, value in identifiers),
        category=Category.COUNTERFEIT_OR_SUBSTANDARD_GOODS,
        severity=severity,
        summary="sold counterfeit cosmetics in three live sessions",
        platform_action="store closed",
        evidence_sha256=hashlib.sha256(b"evidence package").digest(),
    )


def test_report_accepted_on_one_platform_denies_entry_on_another(
    admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    platform_a, platform_b = member("platform-a"), member("platform-b")
    with RegistryClient(platform_a) as client_a:
        receipt = client_a.submit_report(new_report(("cn_ric", RIC), ("phone", "13800138000")))
    assert receipt.status is ReportStatus.SUBMITTED

    applicant = Applicant(role=Role.MERCHANT, identifiers=(normalize("cn_ric", RIC),))
    with RegistryClient(platform_b) as client_b:
        assert client_b.lookup(applicant).verdict is Verdict.REVIEW  # under review
        admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id))
        result = client_b.lookup(applicant)

    assert result.verdict is Verdict.DENY
    (match,) = result.matches
    assert match.subject_id == receipt.subject_id
    assert match.strong_match and match.reporting_platforms == 1
    assert match.categories == (Category.COUNTERFEIT_OR_SUBSTANDARD_GOODS,)
    assert match.severity is Severity.SEVERE
    assert match.listed_until is not None and match.listed_from is not None
    assert (match.listed_until - match.listed_from).days == 5 * 365
