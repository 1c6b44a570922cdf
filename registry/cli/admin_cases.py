"""`jpr admin reports|listings|subject|appeals|events|export|import`: the cases the association decides."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jpr_client.api.jpr.v1 import admin_pb2, types_pb2
from registry.cli import enrollment, export, import_lists, output
from registry.cli.admin_session import AdminSession, print_page
from registry.cli.connect import load_credentials


def _report_row(report: types_pb2.Report) -> dict[str, Any]:
    return {
        "report_id": report.report_id,
        "reporter": report.reporter,
        "status": output.enum_name(types_pb2.ReportStatus, report.status),
        "subject_id": report.subject_id,
        "role": output.enum_name(types_pb2.Role, report.role),
        "category": output.enum_name(types_pb2.Category, report.category),
        "severity": output.enum_name(types_pb2.Severity, report.severity),
        "received_at": output.utc(report.received_at),
        "listing_id": report.listing_id or None,
        "reason": report.decision_reason or None,
    }


def _listing_row(listing: types_pb2.Listing) -> dict[str, Any]:
    return {
        "listing_id": listing.listing_id,
        "subject_id": listing.subject_id,
        "status": output.enum_name(types_pb2.ListingStatus, listing.status),
        "severity": output.enum_name(types_pb2.Severity, listing.severity),
        "categories": [output.enum_name(types_pb2.Category, c) for c in listing.categories],
        "listed_from": output.utc(listing.listed_from),
        "listed_until": output.utc(listing.listed_until),
        "reporting_platforms": listing.reporting_platforms,
    }


def reports_list(args: argparse.Namespace) -> int:
    status = types_pb2.ReportStatus.Value("REPORT_STATUS_" + (args.status or "unspecified").upper())
    request = admin_pb2.ListReportsRequest(status=status, page_size=args.page_size, page_token=args.page_token)
    response = AdminSession(args).call("ListReports", request)
    rows = [_report_row(r) for r in response.reports]
    print_page(args, rows, response.next_page_token, ["report_id", "reporter", "status", "subject_id", "category", "severity", "received_at"])
    return 0


def _listing_status(name: str | None) -> types_pb2.ListingStatus.ValueType:
    return types_pb2.ListingStatus.Value("LISTING_STATUS_" + (name or "unspecified").upper())


def listings_list(args: argparse.Namespace) -> int:
    request = admin_pb2.ListListingsRequest(status=_listing_status(args.status), page_size=args.page_size, page_token=args.page_token)
    response = AdminSession(args).call("ListListings", request)
    rows = [_listing_row(l) for l in response.listings]
    print_page(args, rows, response.next_page_token, ["listing_id", "subject_id", "status", "severity", "categories", "listed_until", "reporting_platforms"])
    return 0


def listings_queue(args: argparse.Namespace) -> int:
    response = AdminSession(args).call("ListReviewQueue", admin_pb2.ListReviewQueueRequest(limit=args.limit))
    rows = [
        {
            **_listing_row(item.listing),
            "disputes": item.disputes,
            "confirmations": item.confirmations,
            "appeal_pending": item.appeal_pending,
            "quarantined": item.quarantine.explanation if item.HasField("quarantine") else None,
            "appeal_id": item.appeal_id or None,
            "opinions": [
                {"member": n.member, "opinion": output.enum_name(types_pb2.Opinion, n.opinion), "reason": n.reason}
                for n in item.opinions
            ],
        }
        for item in response.items
    ]
    print_page(args, rows, "", ["listing_id", "subject_id", "status", "quarantined", "disputes", "confirmations", "appeal_id", "listed_until"])
    return 0


def subject_show(args: argparse.Namespace) -> int:
    record = AdminSession(args).call("GetSubject", admin_pb2.GetSubjectRequest(subject_id=args.subject_id))
    if args.json:
        output.emit_json(output.message(record))
        return 0
    redirect = f", merged into {record.merged_into}" if record.merged_into else ""
    print(f"subject {record.subject_id} (created {record.created_at.ToDatetime():%Y-%m-%d}{redirect})")
    if record.merged_subjects:
        print(f"merged here: {', '.join(record.merged_subjects)}")
    sections: list[tuple[str, list[dict[str, Any]], list[str]]] = [
        ("identifiers", [
            {"type": output.enum_name(types_pb2.IdentifierType, i.type), "token": i.token_prefix,
             "attached_at": output.utc(i.attached_at)} for i in record.identifiers
        ], ["type", "token", "attached_at"]),
        ("reports", [_report_row(r) for r in record.reports], ["report_id", "reporter", "status", "category", "severity", "received_at"]),
        ("listings", [_listing_row(l) for l in record.listings], ["listing_id", "status", "severity", "listed_from", "listed_until", "reporting_platforms"]),
        ("appeals", [_appeal_row(a) for a in record.appeals], ["appeal_id", "listing_id", "status", "reason"]),
        ("opinions", [
            {"listing_id": n.listing_id, "member": n.member, "opinion": output.enum_name(types_pb2.Opinion, n.opinion),
             "reason": n.reason} for n in record.opinions
        ], ["listing_id", "member", "opinion", "reason"]),
        ("lookups that matched", [
            {"member": m.member, "first": output.utc(m.first_at), "last": output.utc(m.last_at),
             "lookups": m.lookups} for m in record.matches
        ], ["member", "first", "last", "lookups"]),
        ("history", [
            {"seq": h.seq, "at": output.utc(h.occurred_at), "kind": h.kind, "actor": h.actor, "detail": h.detail_json}
            for h in record.history
        ], ["seq", "at", "kind", "actor", "detail"]),
    ]
    for title, rows, columns in sections:
        print(f"\n{title}:")
        output.table(rows, columns)
    return 0


def subject_detach(args: argparse.Namespace) -> int:
    request = admin_pb2.DetachIdentifierRequest(subject_id=args.subject_id, token_prefix=args.token, reason=args.reason)
    correction = AdminSession(args).call("DetachIdentifier", request)
    return _print_correction(args, correction, f"identifier {args.token} detached from {correction.subject_id}")


def subject_split(args: argparse.Namespace) -> int:
    request = admin_pb2.SplitSubjectRequest(subject_id=args.subject_id, report_ids=args.reports, reason=args.reason)
    correction = AdminSession(args).call("SplitSubject", request)
    return _print_correction(args, correction, f"{len(correction.report_ids)} report(s) moved from {correction.subject_id} to {correction.new_subject_id}")


def _print_correction(args: argparse.Namespace, correction: admin_pb2.Correction, done: str) -> int:
    if args.json:
        output.emit_json(output.message(correction))
    else:
        corrected = f"; corrected listings: {', '.join(correction.listing_ids)}" if correction.listing_ids else ""
        print(done + corrected)
    return 0


def listings_lift(args: argparse.Namespace) -> int:
    grounds = {"credit-repair": admin_pb2.LIFT_GROUNDS_CREDIT_REPAIR, "correction": admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION}[args.grounds]
    listing = AdminSession(args).call("LiftListing", admin_pb2.LiftListingRequest(listing_id=args.listing_id, grounds=grounds, reason=args.reason))
    row = _listing_row(listing)
    output.emit_json(row) if args.json else print(f"listing {row['listing_id']} lifted: {row['subject_id']} is no longer listed")
    return 0


def listings_release(args: argparse.Namespace) -> int:
    listing = AdminSession(args).call("ReleaseListing", admin_pb2.ReleaseListingRequest(listing_id=args.listing_id, reason=args.reason))
    row = _listing_row(listing)
    output.emit_json(row) if args.json else print(f"listing {row['listing_id']} released: its lookups deny again")
    return 0


def listings_object(args: argparse.Namespace) -> int:
    listing = AdminSession(args).call("RecordObjection", admin_pb2.RecordObjectionRequest(listing_id=args.listing_id, reason=args.reason))
    row = _listing_row(listing)
    output.emit_json(row) if args.json else print(f"objection recorded against {row['listing_id']} ({row['status']})")
    return 0


def _appeal_row(appeal: admin_pb2.Appeal) -> dict[str, Any]:
    return {
        "appeal_id": appeal.appeal_id,
        "listing_id": appeal.listing_id,
        "status": output.enum_name(admin_pb2.AppealStatus, appeal.status),
        "reason": appeal.reason,
        "filed_at": output.utc(appeal.filed_at),
        "decision_reason": appeal.decision_reason or None,
    }


def appeals_list(args: argparse.Namespace) -> int:
    status = admin_pb2.AppealStatus.Value("APPEAL_STATUS_" + (args.status or "unspecified").upper())
    request = admin_pb2.ListAppealsRequest(status=status, page_size=args.page_size, page_token=args.page_token)
    response = AdminSession(args).call("ListAppeals", request)
    rows = [_appeal_row(a) for a in response.appeals]
    print_page(args, rows, response.next_page_token, ["appeal_id", "listing_id", "status", "filed_at", "reason"])
    return 0


def _event_row(event: admin_pb2.HistoryEntry) -> dict[str, Any]:
    detail = json.loads(event.detail_json or "{}")
    return {
        "seq": event.seq,
        "occurred_at": output.utc(event.occurred_at),
        "actor": event.actor,
        "kind": event.kind,
        "subject_id": event.subject_id or None,
        "listing_id": event.listing_id or None,
        "report_id": event.report_id or None,
        "reason": detail.get("reason"),
        "detail": detail,
    }


def list_events(args: argparse.Namespace) -> int:
    request = admin_pb2.ListEventsRequest(actor=args.actor, kind_prefix=args.kind, page_size=args.page_size, page_token=args.page_token)
    if args.since:
        request.since.FromDatetime(args.since)
    if args.until:
        request.until.FromDatetime(args.until)
    response = AdminSession(args).call("ListEvents", request)
    rows = [_event_row(e) for e in response.events]
    if not args.json:  # one column for the ids the event names
        rows = [{**row, "ids": [row[k] for k in ("subject_id", "listing_id", "report_id") if row[k]]} for row in rows]
    print_page(args, rows, response.next_page_token, ["seq", "occurred_at", "actor", "kind", "ids", "reason"])
    return 0


def export_listings(args: argparse.Namespace) -> int:
    admin = AdminSession(args)
    selection = export.Selection(reporters=args.with_reporters, free_text=args.with_free_text)
    request = admin_pb2.ListListingsRequest(status=_listing_status(args.status), page_size=args.page_size)
    pages = export.pages(lambda r: admin.call("ListListings", r), request)
    if not args.out:  # the data on stdout; a count on stderr unless both are the same terminal
        shown = sys.stderr.isatty() and not sys.stdout.isatty()
        export.write(pages, sys.stdout, args.format, selection, output.Progress("listings exported", shown=shown))
        return 0
    with enrollment.claim(Path(args.out), newline="") as out:
        count = export.write(pages, out, args.format, selection, output.Progress("listings exported", shown=output.progress_shown(args)))
    print(f"{count:,} {args.status} listing{'' if count == 1 else 's'} written to {args.out}")
    return 0


def appeals_file(args: argparse.Namespace) -> int:
    appeal = AdminSession(args).call("FileAppeal", admin_pb2.FileAppealRequest(listing_id=args.listing_id, reason=args.reason))
    row = _appeal_row(appeal)
    output.emit_json(row) if args.json else print(f"appeal {row['appeal_id']} filed against {row['listing_id']}; lookups still deny and say it is pending")
    return 0


def appeals_decide(args: argparse.Namespace) -> int:
    decision = admin_pb2.AppealStatus.Value("APPEAL_STATUS_" + args.decision.upper())
    appeal = AdminSession(args).call("DecideAppeal", admin_pb2.DecideAppealRequest(appeal_id=args.appeal_id, decision=decision, reason=args.reason))
    row = _appeal_row(appeal)
    output.emit_json(row) if args.json else print(f"appeal {row['appeal_id']} {row['status'].lower()}")
    return 0


def reports_accept(args: argparse.Namespace) -> int:
    request = admin_pb2.AcceptReportRequest(report_id=args.report_id, term_days=args.term_days, reason=args.reason)
    response = AdminSession(args).call("AcceptReport", request)
    result = {"report": _report_row(response.report), "listing": _listing_row(response.listing)}
    if args.json:
        output.emit_json(result)
    else:
        listing = result["listing"]
        print(f"report {args.report_id} accepted: {listing['subject_id']} listed as {listing['listing_id']} until {output.cell(listing['listed_until'])}")
    return 0


def reports_reject(args: argparse.Namespace) -> int:
    report = AdminSession(args).call("RejectReport", admin_pb2.RejectReportRequest(report_id=args.report_id, reason=args.reason))
    row = _report_row(report)
    output.emit_json(row) if args.json else print(f"report {args.report_id} rejected: {args.reason}")
    return 0


def import_reports(args: argparse.Namespace) -> int:
    return import_lists.run_import(args, AdminSession(args).call, load_credentials(args, args.member_credentials))
