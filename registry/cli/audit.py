"""`jpr lookup` and `jpr report`: what a platform engineer runs by hand.

Identifiers are normalized and tokenized here, on the platform's side: the
registry only ever sees blinded elements and tokens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from jpr_client.client import Applicant, NewReport, RegistryClient
from jpr_client.identifiers import Identifier, normalize
from jpr_client.model import Category, IdentifierType, LookupResult, Role, Severity
from registry.cli import output
from registry.cli.arguments import hex_bytes, report_id, utc_time
from registry.cli.connect import add_credentials_flag, load_credentials, reaching


# The signed payload's fields as the registry names them, and the flags that set them (connect.in_words).
REPORT_WORDS = {"payload.occurred_at": "--occurred-at", "payload.created_at": "--created-at", "payload.report_id": "--report-id",
                "summary": "--summary", "platform_action": "--action", "display_name": "--display-name"}


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    {"lookup": _lookup_flags, "report": _report_flags, "retract": _retract_flags}[command](parser)


def _lookup_flags(lookup: argparse.ArgumentParser) -> None:
    lookup.description = (
        "Normalize and tokenize the applicant's identifiers here, then ask the registry. "
        "DENY: an active joint punishment matched by a strong identifier (ID card, credit code, passport). "
        "REVIEW: matched only by a weak identifier (phone, e-mail, account), or a report under review. "
        "CLEAR: nothing. The exit status is 0 whatever the verdict; script with --json."
    )
    _subject_flags(lookup)
    lookup.set_defaults(run=_lookup)


def _report_flags(report: argparse.ArgumentParser) -> None:
    _subject_flags(report)
    report.add_argument("--category", required=True, choices=[c.name.lower() for c in Category])
    report.add_argument("--severity", required=True, choices=[s.name.lower() for s in Severity])
    report.add_argument("--summary", required=True, help="what happened, without personal data (<= 2000 chars)")
    report.add_argument("--action", required=True, help="what your platform did, e.g. 'store closed' (<= 200 chars)")
    evidence = report.add_mutually_exclusive_group(required=True)
    evidence.add_argument("--evidence", help="the evidence package you keep; its SHA-256 is signed into the report")
    evidence.add_argument("--evidence-sha256", type=hex_bytes(32, "a SHA-256 digest"), help="the evidence package's SHA-256, hex")
    report.add_argument("--occurred-at", type=utc_time, help="when it happened (ISO 8601 date or time; UTC unless it says otherwise)")
    report.add_argument("--display-name", default="", help="masked name, e.g. 张*明")
    report.add_argument("--report-id", type=report_id, help="a UUID of your own (default: a new one)")
    report.add_argument("--created-at", type=utc_time, help="the report's signing time (default: now); repeat the same --report-id and "
                        "--created-at to re-send a report safely")
    report.set_defaults(run=_report)


def _retract_flags(retract: argparse.ArgumentParser) -> None:
    add_credentials_flag(retract, None)
    retract.add_argument("report_id", type=report_id)
    retract.add_argument("--reason", required=True, help="why the report is withdrawn (recorded; no personal data)")
    retract.set_defaults(run=_retract)


def _subject_flags(parser: argparse.ArgumentParser) -> None:
    add_credentials_flag(parser, None)
    parser.add_argument("--role", choices=[r.name.lower() for r in Role], help="merchant, anchor or mcn_institution")
    for kind in IdentifierType:
        flag = "--" + kind.value.replace("_", "-")
        parser.add_argument(flag, dest=kind.value, action="append", default=[], metavar="VALUE", help=f"{kind.value} identifier (repeatable)")
    parser.add_argument("--file", help='JSON: {"role": "merchant", "identifiers": {"cn_ric": ["..."], "phone": ["..."]}}')


def _subject(args: argparse.Namespace) -> tuple[Role, tuple[Identifier, ...]]:
    role_name = args.role
    raw: list[tuple[str, str]] = [(k.value, v) for k in IdentifierType for v in getattr(args, k.value)]
    if args.file:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        role_name = role_name or data.get("role")
        for kind, values in data.get("identifiers", {}).items():
            raw.extend((kind, v) for v in ([values] if isinstance(values, str) else values))
    if not role_name:
        raise ValueError("give the subject's role: --role merchant|anchor|mcn_institution")
    if not raw:
        raise ValueError("give at least one identifier, e.g. --cn-ric or --phone")
    if role_name.upper() not in Role.__members__:
        raise ValueError(f"role {role_name!r} is not one of {', '.join(r.name.lower() for r in Role)}")
    return Role[role_name.upper()], tuple(normalize(kind, value) for kind, value in raw)


def _lookup(args: argparse.Namespace) -> int:
    role, identifiers = _subject(args)
    credentials = load_credentials(args)
    with reaching(credentials.endpoint), RegistryClient(credentials) as client:
        client.connect()
        result = client.lookup(Applicant(role=role, identifiers=identifiers))
    if args.json:
        output.emit_json(result)
    else:
        _print_result(result)
    return 0


def _print_result(result: LookupResult) -> None:
    print(f"verdict: {result.verdict.name}")
    rows = [
        {
            "subject": m.subject_id,
            "listing": m.listing_id or None,  # what an opinion or an appeal names; none for a report under review
            "reason": m.reason.name,
            "matched": [t.value for t in m.matched_types],
            "categories": [c.name for c in m.categories],
            "severity": m.severity.name,
            "listed_until": m.listed_until,
            "platforms": m.reporting_platforms,
            "appeal": "pending" if m.appeal_pending else "-",
        }
        for m in result.matches
    ]
    if rows:
        output.table(rows, list(rows[0]))


def _report(args: argparse.Namespace) -> int:
    role, identifiers = _subject(args)
    digest = args.evidence_sha256 or hashlib.sha256(Path(args.evidence).read_bytes()).digest()
    fields: dict[str, Any] = {}
    if args.report_id:
        fields["report_id"] = args.report_id
    if args.created_at:
        fields["created_at"] = args.created_at
    new = NewReport(
        role=role,
        identifiers=identifiers,
        category=Category[args.category.upper()],
        severity=Severity[args.severity.upper()],
        summary=args.summary,
        platform_action=args.action,
        evidence_sha256=digest,
        occurred_at=args.occurred_at,
        display_name=args.display_name,
        **fields,
    )
    credentials = load_credentials(args)
    with reaching(credentials.endpoint, REPORT_WORDS), RegistryClient(credentials) as client:
        client.connect()
        receipt = client.submit_report(new)
    if args.json:
        output.emit_json(receipt)
    else:
        output.fields({"report_id": receipt.report_id, "subject_id": receipt.subject_id, "status": receipt.status.name, "received_at": receipt.received_at})
    return 0


def _retract(args: argparse.Namespace) -> int:
    credentials = load_credentials(args)
    with reaching(credentials.endpoint), RegistryClient(credentials) as client:
        client.connect()
        report = client.retract_report(args.report_id, args.reason)
    if args.json:
        output.emit_json({"report_id": report.report_id, "status": report.status, "subject_id": report.subject_id})
    else:
        print(f"report {report.report_id} {report.status.name.lower()}")
    return 0
