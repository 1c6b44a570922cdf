"""A platform's onboarding service calling the registry: the SDK as platform code uses it.

`tests/unit/sdk/test_typed_platform_code.py` runs `mypy --strict` on this file with only
the installed `jpr_client` in view, so every result below must have a concrete type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from jpr_client import (
    Applicant,
    Category,
    Credentials,
    ListingChange,
    LookupResult,
    NewReport,
    Receipt,
    RegistryClient,
    Role,
    Severity,
    Verdict,
    normalize,
)


def may_onboard(client: RegistryClient, ric: str, phone: str) -> bool:
    """The entry audit: refuse a DENY, send a REVIEW to a person, let a CLEAR through."""
    result: LookupResult = client.lookup(Applicant(Role.MERCHANT, (normalize("cn_ric", ric), normalize("phone", phone))))
    if result.verdict is Verdict.REVIEW:
        queue_for_review([m.subject_id for m in result.matches])
    return result.verdict is Verdict.CLEAR


def rescreen(client: RegistryClient, rics: Sequence[str]) -> list[Verdict]:
    results: list[LookupResult] = client.lookup_batch([Applicant(Role.ANCHOR, (normalize("cn_ric", r),)) for r in rics])
    return [r.verdict for r in results]


def report_counterfeits(client: RegistryClient, ric: str, evidence: bytes) -> str:
    receipt: Receipt = client.submit_report(NewReport(
        role=Role.MERCHANT, identifiers=(normalize("cn_ric", ric),),
        category=Category.COUNTERFEIT_OR_SUBSTANDARD_GOODS, severity=Severity.SEVERE,
        summary="sold counterfeit cosmetics in three live sessions", platform_action="store closed",
        evidence_sha256=hashlib.sha256(evidence).digest(),
    ))
    return receipt.report_id


def follow(client: RegistryClient) -> None:
    for change in client.watch_changes("jpr-changes.cursor"):
        handle(change)


def handle(change: ListingChange) -> None:
    print(change.kind.name, len(change.tokens))


def queue_for_review(subject_ids: list[str]) -> None:
    print("review", subject_ids)


if __name__ == "__main__":
    with RegistryClient(Credentials.load("platform-b.credentials.json")) as registry:
        print(may_onboard(registry, "11010519491231002X", "13800138000"))
