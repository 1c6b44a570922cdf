"""A listing rests on the reports that still support it, and the changes feed replays it as it was.

Withdrawing one report recomputes the listing from the others by the rule of acceptance (each
accepted report gives its listing an end; the listing ends at the latest of them), with severity,
categories and platforms theirs; and every change of the feed carries the listing as it stood
right after that change, not as it is today.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from jpr_client import Category, ChangeKind, ListingChange, ListingStatus, NewReport, RegistryClient, Role, Severity, Verdict, normalize
from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.store.models import EventRow, ReportRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_changes import lift, take
from tests.integration.test_lookup import PHONE, RIC, applicant, platforms  # noqa: F401 (platforms: a fixture)

EMAIL = "shop.owner@example.com"


def new_report(severity: Severity, category: Category, *identifiers: tuple[str, str]) -> NewReport:
    return NewReport(
        role=Role.MERCHANT,
        identifiers=tuple(normalize(k, v) for k, v in identifiers),
        category=category,
        severity=severity,
        summary="counterfeit goods sold in live sessions",
        platform_action="store closed",
        evidence_sha256=hashlib.sha256(b"test purchases").digest(),
    )


def accept(admin: AdminClient, client: RegistryClient, report: NewReport, term_days: int = 0) -> Any:
    receipt = client.submit_report(report)
    return admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, term_days=term_days, reason="verified"))


def term_end(registry: Registry, report_id: str) -> datetime:
    with registry.database.read() as conn:
        ends: datetime = conn.execute(select(ReportRow.term_ends_at).where(ReportRow.report_id == report_id)).scalar_one()
    return ends


def last_event(registry: Registry, kind: str) -> dict[str, Any]:
    with registry.database.read() as conn:
        detail: dict[str, Any] = conn.execute(select(EventRow.detail).where(EventRow.kind == kind).order_by(EventRow.seq.desc())).scalars().first()
    return detail


def test_retracting_the_severe_report_shortens_the_listing_to_the_serious_one(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], tmp_path: Path
) -> None:
    a, b, c = platforms
    severe = accept(admin, a, new_report(Severity.SEVERE, Category.FRAUD, ("cn_ric", RIC)))  # 5 years
    serious = accept(admin, b, new_report(Severity.SERIOUS, Category.FAKE_SALES_OR_TRAFFIC, ("cn_ric", RIC)))  # 3 years
    five_years = severe.listing.listed_until.ToDatetime().replace(tzinfo=None)
    assert serious.listing.listing_id == severe.listing.listing_id
    three_years = term_end(registry, serious.report.report_id)
    assert three_years < severe.listing.listed_until.ToDatetime(tzinfo=three_years.tzinfo) - timedelta(days=700)

    a.retract_report(severe.report.report_id, "our evidence was about a namesake")

    match = c.lookup(applicant(("cn_ric", RIC))).matches[0]
    assert c.lookup(applicant(("cn_ric", RIC))).verdict is Verdict.DENY
    assert match.listed_until == three_years  # no longer the withdrawn report's five years
    assert (match.severity, match.categories, match.reporting_platforms) == (Severity.SERIOUS, (Category.FAKE_SALES_OR_TRAFFIC,), 1)
    listing = admin.call("ListListings", admin_pb2.ListListingsRequest()).listings[0]
    assert listing.listed_until.ToDatetime(tzinfo=three_years.tzinfo) == three_years and listing.severity == types_pb2.SEVERITY_SERIOUS

    shortened = last_event(registry, "listing.shortened")
    assert shortened["before"]["listed_until"] == five_years.replace(tzinfo=three_years.tzinfo).isoformat()
    assert (shortened["before"]["severity"], shortened["before"]["reporting_platforms"]) == ("SEVERE", 2)
    assert (shortened["listed_until"], shortened["severity"], shortened["categories"]) == (three_years.isoformat(), "SERIOUS", ["FAKE_SALES_OR_TRAFFIC"])
    assert severe.report.report_id in shortened["reason"]

    *_, change = take(c.watch_changes(tmp_path / "c.cursor"), 3)
    assert change.kind is ChangeKind.SHORTENED and change.listing.listed_until == three_years
    assert change.listing.severity is Severity.SERIOUS and change.listing.status is ListingStatus.ACTIVE


def test_retracting_the_shorter_report_keeps_the_end_and_corrects_the_rest(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], tmp_path: Path
) -> None:
    a, b, c = platforms
    severe = accept(admin, a, new_report(Severity.SEVERE, Category.FRAUD, ("cn_ric", RIC)))
    serious = accept(admin, b, new_report(Severity.SERIOUS, Category.FAKE_SALES_OR_TRAFFIC, ("cn_ric", RIC)))
    b.retract_report(serious.report.report_id, "settled with the merchant")

    match = c.lookup(applicant(("cn_ric", RIC))).matches[0]
    assert match.listed_until == term_end(registry, severe.report.report_id)
    assert (match.severity, match.categories, match.reporting_platforms) == (Severity.SEVERE, (Category.FRAUD,), 1)
    corrected = last_event(registry, "listing.corrected")
    assert corrected["before"]["categories"] == ["FAKE_SALES_OR_TRAFFIC", "FRAUD"] and corrected["categories"] == ["FRAUD"]
    *_, change = take(c.watch_changes(tmp_path / "c.cursor"), 3)
    assert change.kind is ChangeKind.CORRECTED and change.listing.reporting_platforms == 1


def test_a_listing_of_lifted_or_expired_status_is_not_reshaped_by_a_later_retraction(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]
) -> None:
    a, b, _ = platforms
    first = accept(admin, a, new_report(Severity.SEVERE, Category.FRAUD, ("cn_ric", RIC)))
    accept(admin, b, new_report(Severity.SERIOUS, Category.FRAUD, ("cn_ric", RIC)))
    lift(admin, first.listing.listing_id)
    a.retract_report(first.report.report_id, "withdrawn after the lifting")
    with registry.database.read() as conn:
        kinds = [k for (k,) in conn.execute(select(EventRow.kind).order_by(EventRow.seq))]
    assert kinds[-2:] == ["listing.lifted", "report.retracted"]  # no shortening of a listing already lifted


def test_the_feed_replays_one_listings_whole_history_as_it_was(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], tmp_path: Path
) -> None:
    a, b, c = platforms
    # CREATED by A (ID card and phone), EXTENDED by B (ID card and e-mail), SHORTENED when A
    # retracts, CORRECTED when B's e-mail is detached, LIFTED by the association.
    created = accept(admin, a, new_report(Severity.SEVERE, Category.FRAUD, ("cn_ric", RIC), ("phone", PHONE)))
    extended = accept(admin, b, new_report(Severity.SERIOUS, Category.FAKE_SALES_OR_TRAFFIC, ("cn_ric", RIC), ("email", EMAIL)), 400)
    a.retract_report(created.report.report_id, "our evidence was about a namesake")
    subject = extended.report.subject_id
    record = admin.call("GetSubject", admin_pb2.GetSubjectRequest(subject_id=subject))
    email = next(i.token_prefix for i in record.identifiers if i.type == types_pb2.IDENTIFIER_TYPE_EMAIL)
    admin.call("DetachIdentifier", admin_pb2.DetachIdentifierRequest(subject_id=subject, token_prefix=email, reason="the shop's old address"))
    lift(admin, created.listing.listing_id, "settled: restitution paid")

    changes: list[ListingChange] = take(c.watch_changes(tmp_path / "from-the-start.cursor"), 5)
    ric, phone, _email = (t.value for t in c.tokenize([normalize("cn_ric", RIC), normalize("phone", PHONE), normalize("email", EMAIL)]))
    assert [x.kind for x in changes] == [ChangeKind.CREATED, ChangeKind.EXTENDED, ChangeKind.SHORTENED, ChangeKind.CORRECTED, ChangeKind.LIFTED]
    shown = [
        (x.listing.status, x.listing.severity, x.listing.categories, x.listing.reporting_platforms, {t.value for t in x.tokens})
        for x in changes
    ]
    assert shown == [
        (ListingStatus.ACTIVE, Severity.SEVERE, (Category.FRAUD,), 1, {ric, phone}),
        # The e-mail was detached later as wrongly attached: no replay hands it out again.
        (ListingStatus.ACTIVE, Severity.SEVERE, (Category.FAKE_SALES_OR_TRAFFIC, Category.FRAUD), 2, {ric, phone}),
        (ListingStatus.ACTIVE, Severity.SERIOUS, (Category.FAKE_SALES_OR_TRAFFIC,), 1, {ric}),
        (ListingStatus.ACTIVE, Severity.SERIOUS, (Category.FAKE_SALES_OR_TRAFFIC,), 1, {ric}),
        (ListingStatus.LIFTED, Severity.SERIOUS, (Category.FAKE_SALES_OR_TRAFFIC,), 1, {ric}),
    ]
    ends = [x.listing.listed_until for x in changes]
    assert ends[0] == term_end(registry, created.report.report_id) == ends[1]  # B's 400 days did not reach A's 5 years
    assert ends[2] == term_end(registry, extended.report.report_id) == ends[3] == ends[4] < ends[1]
    assert len({x.listing.listing_id for x in changes}) == 1 and all(x.listing.subject_id == subject for x in changes)


def test_a_listing_lifted_by_its_last_retraction_is_replayed_with_what_it_listed(
    registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...], tmp_path: Path
) -> None:
    a, _, c = platforms
    only = accept(admin, a, new_report(Severity.SEVERE, Category.FRAUD, ("cn_ric", RIC), ("phone", PHONE)))
    a.retract_report(only.report.report_id, "filed against the wrong shop")
    created, lifted = take(c.watch_changes(tmp_path / "c.cursor"), 2)
    ric, phone = (t.value for t in c.tokenize([normalize("cn_ric", RIC), normalize("phone", PHONE)]))
    assert lifted.kind is ChangeKind.LIFTED and lifted.listing.status is ListingStatus.LIFTED
    # Members clear the people they host by these: the tokens and what the listing said.
    assert {t.value for t in lifted.tokens} == {ric, phone} == {t.value for t in created.tokens}
    assert (lifted.listing.severity, lifted.listing.categories, lifted.listing.reporting_platforms) == (Severity.SEVERE, (Category.FRAUD,), 1)
