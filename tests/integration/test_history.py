"""The event table is the listings' history: replaying it rebuilds every listing's state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from jpr_client import Opinion, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.store.models import EventRow, ListingRow
from tests.conftest import AdminClient, Registry
from tests.integration.test_lookup import OTHER_RIC, RIC, applicant, platforms, report  # noqa: F401 (platforms: a fixture)
from tests.integration.test_replicas import valid_ric

STATUS_AFTER = {
    "listing.activated": "ACTIVE",
    "listing.expired": "EXPIRED",
    "listing.lifted": "LIFTED",
}


def replay(events: list[Any]) -> dict[int, dict[str, Any]]:
    listings: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.listing_id is None or not event.kind.startswith("listing."):
            continue
        if event.kind == "listing.created":
            listings[event.listing_id] = {
                "status": event.detail["status"],
                "listed_from": datetime.fromisoformat(event.detail["listed_from"]),
                "listed_until": datetime.fromisoformat(event.detail["listed_until"]),
            }
        elif event.kind in ("listing.extended", "listing.shortened"):
            listings[event.listing_id]["listed_until"] = datetime.fromisoformat(event.detail["listed_until"])
        elif event.kind in STATUS_AFTER:
            listings[event.listing_id]["status"] = STATUS_AFTER[event.kind]
    return listings


def test_replaying_the_events_rebuilds_every_listing(registry: Registry, admin: AdminClient, platforms: tuple[RegistryClient, ...]) -> None:
    a, b, _ = platforms

    def accept(client: RegistryClient, ric: str, days: int = 0) -> Any:
        report_id = client.submit_report(report(("cn_ric", ric))).report_id
        return admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=report_id, term_days=days, reason="verified"))

    extended = accept(a, RIC, 30)
    accept(b, RIC, 400)  # extends the same listing
    short = accept(a, OTHER_RIC, 1)
    corrected = accept(a, valid_ric(7))
    admin.call("LiftListing", admin_pb2.LiftListingRequest(listing_id=corrected.listing.listing_id,
                                                           grounds=admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION, reason="wrong person"))
    appealed = accept(b, valid_ric(8))
    appeal = admin.call("FileAppeal", admin_pb2.FileAppealRequest(listing_id=appealed.listing.listing_id, reason="sold the shop"))
    admin.call("DecideAppeal", admin_pb2.DecideAppealRequest(appeal_id=appeal.appeal_id, decision=admin_pb2.APPEAL_STATUS_UPHELD, reason="verified"))
    retracted = accept(a, valid_ric(9))
    a.retract_report(retracted.report.report_id, "filed in error")
    shortened = accept(a, valid_ric(11), 900)
    accept(b, valid_ric(11), 200)
    a.retract_report(shortened.report.report_id, "filed in error")  # B's 200 days remain
    corrected_person = b.submit_report(report(("cn_ric", valid_ric(10)), ("phone", "13900139000")))
    admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=corrected_person.report_id, reason="verified"))
    record = admin.call("GetSubject", admin_pb2.GetSubjectRequest(subject_id=corrected_person.subject_id))
    phone = next(i.token_prefix for i in record.identifiers if i.type == types_pb2.IDENTIFIER_TYPE_PHONE)
    admin.call("DetachIdentifier", admin_pb2.DetachIdentifierRequest(subject_id=corrected_person.subject_id, token_prefix=phone,
                                                                     reason="a neighbour's number"))
    match = a.lookup(applicant(("cn_ric", valid_ric(10)))).matches[0]
    a.record_opinion(match.listing_id, Opinion.DISPUTED, "our audit found another birth date")
    for client in platforms:  # the flood guard holds the first listing, and the association releases it
        client.lookup_batch([applicant(("cn_ric", RIC))] * 20)
    registry.running.flood.check()
    admin.call("ReleaseListing", admin_pb2.ReleaseListingRequest(listing_id=extended.listing.listing_id, reason="the matches are right"))
    registry.clock.offset_seconds = 2 * 86400
    registry.running.expiry.record_now()  # the one-day listing ends

    with registry.database.read() as conn:
        events = conn.execute(
            select(EventRow.kind, EventRow.listing_id, EventRow.actor, EventRow.occurred_at, EventRow.detail).order_by(EventRow.seq)
        ).all()
        stored = {row.id: row for row in conn.execute(select(ListingRow.id, ListingRow.status, ListingRow.listed_from, ListingRow.listed_until))}
    rebuilt = replay(events)
    assert set(rebuilt) == set(stored) and len(stored) == 7
    for listing_id, row in stored.items():
        assert rebuilt[listing_id] == {"status": row.status, "listed_from": row.listed_from, "listed_until": row.listed_until}, listing_id
    assert {rebuilt[int(x.listing.listing_id[1:])]["status"] for x in (corrected, appealed, retracted)} == {"LIFTED"}
    assert rebuilt[int(short.listing.listing_id[1:])]["status"] == "EXPIRED"
    assert rebuilt[int(extended.listing.listing_id[1:])]["status"] == "ACTIVE"
    short_now = rebuilt[int(shortened.listing.listing_id[1:])]
    assert short_now["status"] == "ACTIVE" and short_now["listed_until"] - short_now["listed_from"] < timedelta(days=201)
    decided = ("listing.", "report.accepted", "report.rejected", "report.retracted", "appeal.", "subject.identifier_detached", "subject.split")
    decisions = [e for e in events if e.kind.startswith(decided)]
    assert {"listing.corrected", "listing.shortened", "listing.quarantined", "listing.released", "listing.opinion",
            "subject.identifier_detached"} <= {e.kind for e in decisions}
    assert all(e.actor and e.occurred_at and e.detail.get("reason") for e in decisions), "every decision has actor, time and reason"
