"""`jpr admin ...`: the association's staff at work (members, reports, listings)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc, types_pb2
from jpr_client.client import call
from jpr_client.credentials import EXPIRY_WARNING_DAYS
from jpr_client.crypto import dsse
from registry.cli import enrollment, export, import_lists, output
from registry.cli.arguments import count, hex_bytes, hex_prefix, positive, utc_time
from registry.cli.connect import add_credentials_flag, connected_channel, load_credentials, reaching
from registry.crypto import pki
from registry.datadir import SERVER_CERT, SERVER_HOSTS, SERVER_KEY, Issuer, write_new

DEFAULT_CREDENTIALS = "jpr-data/admin.credentials.json"
DEFAULT_ISSUER = "jpr-data/issuer"
ISSUER_ENV = "JPR_ISSUER"
LISTING_STATUSES = ["pending_notice", "active", "expired", "lifted"]


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    admin = parser.add_subparsers(dest="group", required=True, metavar="GROUP")

    members = admin.add_parser("members", aliases=["member"], help="member platforms").add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(members, "add", "register a platform", _members_add)
    add.add_argument("name")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--request", help="the platform's request file from `jpr member keygen`")
    source.add_argument("--generate", action="store_true", help="generate the platform's keys here and write complete credentials (for trials)")
    add.add_argument("--out", required=True, help="file to write: the issued certificate (--request) or credentials (--generate)")
    _issuer_flags(add)
    reissue = _command(members, "reissue", "sign and register a new certificate for a member from its new request (after a leak, or to renew)",
                       _members_reissue)
    reissue.add_argument("name")
    reissue.add_argument("--request", required=True, help="the member's new request file from `jpr member keygen`")
    reissue.add_argument("--out", required=True, help="the issued file to write and send back (`jpr member credentials` takes it)")
    _issuer_flags(reissue)
    _command(members, "list", "list members, their keys and their certificates (SHA-256, expiry)", _members_list)
    add_key = _command(members, "add-key", "register another signing key", _members_add_key)
    add_key.add_argument("name")
    add_key.add_argument("--public-key", required=True, type=hex_bytes(32, "a raw Ed25519 public key"), help="raw Ed25519 public key, hex")
    add_key.add_argument("--valid-from", type=utc_time, help="first moment the key may sign (ISO 8601; default now)")
    add_key.add_argument("--valid-until", type=utc_time, help="the key signs nothing from then on (ISO 8601; default: until revoked)")
    revoke = _command(members, "revoke-key", "revoke a signing key", _members_revoke_key)
    revoke.add_argument("name")
    revoke.add_argument("key_id")
    for verb, run, help_text in (("suspend", _members_suspend, "refuse every call of a member at once"),
                                 ("resume", _members_resume, "let a suspended member call again")):
        change = _command(members, verb, help_text, run)
        change.add_argument("name")
        change.add_argument("--reason", required=True, help="why (recorded)")

    volume = _command(members, "volume", "record how many applicants a member onboards a day (the yardstick for its lookups)", _members_volume)
    volume.add_argument("name")
    volume.add_argument("per_day", type=count, help="applicants onboarded a day")
    volume.add_argument("--reason", required=True, help="where the figure comes from (recorded)")

    audit = admin.add_parser("audit", help="how members use the registry").add_subparsers(dest="action", required=True, metavar="ACTION")
    access = _command(audit, "access", "each member's call volumes, flagging lookups out of line with onboarding or enumeration-like misses",
                      _audit_access)
    access.add_argument("--since", type=utc_time, help="start of the window (ISO 8601; default: 7 days before --until)")
    access.add_argument("--until", type=utc_time, help="end of the window (ISO 8601; default: now)")
    access.add_argument("--volume-factor", type=float, default=0.0, help="flag lookups above this many times the declared volume (default 3)")
    access.add_argument("--miss-factor", type=float, default=0.0, help="flag a match rate this many times below other members' (default 10)")
    access.add_argument("--min-applicants", type=count, default=0, help="judge match rates from this many applicants on (default 1000)")

    expiring = _command(audit, "certs", f"certificates expiring within {EXPIRY_WARNING_DAYS} days (clients', the server's, the CA's)",
                        _audit_certs)
    expiring.add_argument("--within", type=count, default=EXPIRY_WARNING_DAYS, help=f"days ahead (default {EXPIRY_WARNING_DAYS})")

    admins = admin.add_parser("admins", help="the association's named admins, one certificate each").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    admins_add = _command(admins, "add", "issue and register a named admin's certificate; write their credentials", _admins_add)
    admins_add.add_argument("name", help="the person's name (2-63 characters: a-z, 0-9, '-'); recorded with each decision as admin:NAME")
    admins_add.add_argument("--out", required=True, help="credentials file to write (mode 0600); hand it to that person only")
    _issuer_flags(admins_add)
    probes = admin.add_parser("probes", aliases=["probe"], help="health-check credentials (load balancers, container checks)").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    probes_add = _command(probes, "add", "issue and register a probe certificate (it may only ask the health service)", _probes_add)
    probes_add.add_argument("name", nargs="?", default="probe", help="the probe's name (default: probe), e.g. haproxy-1")
    probes_add.add_argument("--out", required=True, help="credentials file to write (mode 0600), e.g. a replica's probe.credentials.json")
    _issuer_flags(probes_add)
    admins_list = _command(admins, "list", "admins' certificates", _admins_list)
    admins_list.add_argument("--all", action="store_true", help="revoked certificates too")
    admins_revoke = _command(admins, "revoke", "revoke every certificate of one admin (a leak, a departure); others keep theirs", _admins_revoke)
    admins_revoke.add_argument("name")
    admins_revoke.add_argument("--reason", required=True, help="why (recorded)")

    server_cert = admin.add_parser("server-cert", help="the registry's TLS server certificate").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    renew_server = server_cert.add_parser("renew", help="sign a new server key and certificate here, where the CA key is")
    renew_server.add_argument("--out-dir", required=True, help="where to write server.key and server.pem (copied to each replica's data directory)")
    renew_server.add_argument("--host", action="append", default=[], help="another DNS name or IP the certificate is valid for (repeatable)")
    _issuer_flags(renew_server, days=pki.SERVER_DAYS)
    output.add_json_flag(renew_server)
    renew_server.set_defaults(run=_server_cert_renew)
    ca = admin.add_parser("ca", help="the registry's CA certificate").add_subparsers(dest="action", required=True, metavar="ACTION")
    renew_ca = ca.add_parser("renew", help="a new CA certificate for the same CA key: every certificate it signed stays valid")
    renew_ca.add_argument("--out", required=True, help="the new ca.pem to write (replaces ca.pem in issuer/, on each replica, in each credentials file)")
    _issuer_flags(renew_ca, days=pki.CA_DAYS)
    output.add_json_flag(renew_ca)
    renew_ca.set_defaults(run=_ca_renew)

    certs = admin.add_parser("cert", aliases=["certs"], help="client certificates").add_subparsers(dest="action", required=True, metavar="ACTION")
    register = _command(certs, "register", "admit a client certificate signed by the registry's CA (one issued before registration, or signed by hand)",
                        _cert_register)
    register.add_argument("file", help="a PEM certificate, or an issued or credentials JSON file holding one")
    revoke_cert = _command(certs, "revoke", "refuse a client certificate from now on", _cert_revoke)
    revoke_cert.add_argument("sha256", help="the certificate's SHA-256 (printed by `members add`), or a PEM file")
    revoke_cert.add_argument("--reason", required=True, help="why (recorded)")

    imports = _command(admin, "import", "import a list the association keeps (CSV) as signed reports, accepted with their own dates", _import)
    import_lists.add_import_flags(imports)

    reports = admin.add_parser("reports", aliases=["report"], help="report review").add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _command(reports, "list", "list reports", _reports_list)
    listing.add_argument("--status", choices=["submitted", "accepted", "rejected", "retracted"], help="only reports in this status (default: all)")
    _paging(listing)
    accept = _command(reports, "accept", "accept a report: list its subject", _reports_accept)
    accept.add_argument("report_id")
    accept.add_argument("--term-days", type=count, default=0, help="listing term (default: by severity)")
    accept.add_argument("--reason", default="", help="why (recorded)")
    reject = _command(reports, "reject", "reject a report", _reports_reject)
    reject.add_argument("report_id")
    reject.add_argument("--reason", required=True, help="why (recorded, shown to the reporter)")

    listings = admin.add_parser("listings", aliases=["listing"], help="joint punishments").add_subparsers(dest="action", required=True, metavar="ACTION")
    listings_list = _command(listings, "list", "list listings", _listings_list)
    listings_list.add_argument("--status", choices=LISTING_STATUSES, help="only listings in this status (default: all)")
    _paging(listings_list)
    queue = _command(listings, "queue", "listings quarantined by the flood guard, disputed or under appeal (quarantined first)", _listings_queue)
    queue.add_argument("--limit", type=positive, default=50, help="at most this many (default 50, at most 500)")
    subjects = admin.add_parser("subject", aliases=["subjects"], help="one person or company: access requests and corrections").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    show = _command(subjects, "show", "everything the registry holds about a subject (for an access request)", _subject_show)
    show.add_argument("subject_id")
    detach = _command(subjects, "detach", "detach a wrongly attached identifier from a subject", _subject_detach)
    detach.add_argument("subject_id")
    detach.add_argument("--token", required=True, type=hex_prefix(16, 128, "a token prefix as `subject show` prints it"), help="the identifier's token prefix, as `subject show` prints it")
    detach.add_argument("--reason", required=True, help="why (recorded)")
    split = _command(subjects, "split", "undo a wrong merge: move reports about someone else to a new subject", _subject_split)
    split.add_argument("subject_id")
    split.add_argument("--report", required=True, action="append", dest="reports", help="a report about someone else (repeat)")
    split.add_argument("--reason", required=True, help="why (recorded)")
    events = _command(admin, "events", "the event log, oldest first (after a leak: --actor admin:NAME --since T)", _events)
    events.add_argument("--actor", default="", help="only this actor's events: admin:NAME, member:NAME or registry (default: all)")
    events.add_argument("--kind", default="", help="only kinds starting with this, e.g. listing. (default: all)")
    events.add_argument("--since", type=utc_time, help="only events at or after this time (ISO 8601)")
    events.add_argument("--until", type=utc_time, help="only events before this time (ISO 8601)")
    _paging(events)
    appeals = admin.add_parser("appeals", aliases=["appeal"], help="appeals against listings").add_subparsers(dest="action", required=True, metavar="ACTION")
    file_appeal = _command(appeals, "file", "file an appeal on the listed subject's behalf", _appeals_file)
    file_appeal.add_argument("listing_id")
    file_appeal.add_argument("--reason", required=True, help="the appellant's grounds (recorded)")
    decide = _command(appeals, "decide", "decide a pending appeal", _appeals_decide)
    decide.add_argument("appeal_id")
    decide.add_argument("--decision", required=True, choices=["upheld", "denied"], help="upheld lifts the listing; denied keeps it")
    decide.add_argument("--reason", required=True, help="why (recorded)")
    appeals_list = _command(appeals, "list", "list appeals, oldest filed first", _appeals_list)
    appeals_list.add_argument("--status", choices=["pending", "upheld", "denied"], help="only appeals in this status (default: all)")
    _paging(appeals_list)
    _export_flags(_command(admin, "export", "write the listings, one row each, as CSV or JSON lines (no token, ever)", _export, json_flag=False))

    objection = _command(listings, "object", "record an objection against a listing in its notice window", _listings_object)
    objection.add_argument("listing_id")
    objection.add_argument("--reason", required=True, help="who objects and why (recorded)")
    lift = _command(listings, "lift", "end a listing early (credit repair, or correction of a wrong listing)", _listings_lift)
    lift.add_argument("listing_id")
    lift.add_argument("--grounds", required=True, choices=["credit-repair", "correction"],
                      help="credit-repair: only after the minimum period (default 365 days); correction: the listing was wrong")
    lift.add_argument("--reason", required=True, help="why (recorded)")
    release = _command(listings, "release", "end the flood guard's quarantine of a listing found right (it denies again)", _listings_release)
    release.add_argument("listing_id")
    release.add_argument("--reason", required=True, help="what the review found (recorded)")


def _export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=list(export.FORMATS), default="csv",
                        help="csv: UTF-8, a header row, multi-valued cells joined with ';' (default); jsonl: one JSON object a line")
    parser.add_argument("--out", help="file to create (refused if it exists; removed if the export fails); default: standard output")
    parser.add_argument("--status", choices=LISTING_STATUSES, default="active", help="listings in this status (default: active)")
    parser.add_argument("--with-reporters", action="store_true",
                        help="add the reporting platforms' names (for the regulator; members see only how many reported)")
    parser.add_argument("--with-free-text", action="store_true", help="add each report's summary and platform action")
    parser.add_argument("--page-size", type=positive, default=500, help="listings per call (at most 500)")


def _issuer_flags(parser: argparse.ArgumentParser, *, days: int = pki.CLIENT_DAYS) -> None:
    parser.add_argument("--issuer", default=os.environ.get(ISSUER_ENV, DEFAULT_ISSUER),
                        help=f"directory holding the CA key, on this machine (env {ISSUER_ENV}; default {DEFAULT_ISSUER}; "
                             "a registry made before issuer/ existed keeps ca.key in its data directory)")
    parser.add_argument("--days", type=count, default=days, help=f"validity of the new certificate in days (default {days})")


def _command(group: Any, name: str, help_text: str, run: Any, *, json_flag: bool = True) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    add_credentials_flag(parser, DEFAULT_CREDENTIALS, json_flag=json_flag)
    parser.set_defaults(run=run)
    return parser


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page-size", type=positive, default=50, help="rows per page (at most 500)")
    parser.add_argument("--page-token", default="", help="the token a previous page printed after 'more:'")


# The registry's names for request fields and values, and the flags that carry them (connect.in_words).
FLAG_WORDS = {
    "token_prefix": "--token",
    "term_days": "--term-days",
    "page_size": "--page-size",
    "page_token": "--page-token",
    "per_day": "PER_DAY",
    "certificate_sha256": "SHA256",
    "grounds CREDIT_REPAIR": "--grounds credit-repair",
    "grounds ADMIN_CORRECTION": "--grounds correction",
}


class _Admin:
    def __init__(self, args: argparse.Namespace) -> None:
        self.credentials = load_credentials(args)
        with reaching(self.credentials.endpoint):
            self._channel = connected_channel(self.credentials)
        self._stub = admin_pb2_grpc.AdminStub(self._channel)

    def call(self, method: str, request: Any) -> Any:
        """Reads are retried on UNAVAILABLE by the channel (jpr_client.client.SAFE_TO_REPEAT); decisions never."""
        with reaching(self.credentials.endpoint, FLAG_WORDS):
            return call(method, getattr(self._stub, method), request, 30.0)


def _members_add(args: argparse.Namespace) -> int:
    admin = _Admin(args)
    # Claim the output file first: a member registered with keys nobody kept cannot be fixed.
    with enrollment.claim(Path(args.out)) as out:
        if args.generate:
            keys = enrollment.generate_keys(args.name)
            request = keys.request()
        else:
            request = enrollment.EnrollmentRequest.load(Path(args.request))
            if request.name != args.name:
                raise ValueError(f"{args.request} is a request for {request.name!r}, not {args.name!r}")
        certificate = Issuer(Path(args.issuer)).sign(request.csr_pem.encode(), args.name, pki.ROLE_MEMBER, args.days)
        response = admin.call(
            "CreateMember",
            admin_pb2.CreateMemberRequest(name=args.name, signing_public_key=request.signing_public_key, certificate_pem=certificate.decode()),
        )
        issued = enrollment.Issued(
            name=args.name,
            registry=response.registry_name,
            endpoint=admin.credentials.endpoint,
            ca_certificate=response.ca_certificate_pem,
            certificate=response.certificate_pem,
            key_id=response.key_id,
            oprf_public_key=response.oprf_public_key.hex(),
        )
        out.write(keys.credentials(issued).to_json() if args.generate else issued.to_json())
    if args.json:
        output.emit_json({"name": args.name, "key_id": response.key_id, "certificate_sha256": response.certificate_sha256, "file": args.out})
    else:
        print(f"member {args.name} registered, signing key {response.key_id}")
        print(f"certificate sha256 {response.certificate_sha256} (keep it: `jpr admin cert revoke` takes it)")
        print(f"{'credentials' if args.generate else 'issued certificate'} written to {args.out}")
    return 0


def _members_reissue(args: argparse.Namespace) -> int:
    """Sign the member's new request here, register the certificate, and its signing key if new. The old
    certificate keeps working until it expires or is revoked: the overlap a renewal needs."""
    admin = _Admin(args)
    request = enrollment.EnrollmentRequest.load(Path(args.request))
    if request.name != args.name:
        raise ValueError(f"{args.request} is a request for {request.name!r}, not {args.name!r}")
    member = next((m for m in admin.call("ListMembers", admin_pb2.ListMembersRequest()).members if m.name == args.name), None)
    if member is None:
        raise ValueError(f"no member named {args.name!r}; `jpr admin members add` registers a new one")
    key_id = dsse.key_id(request.signing_public_key)
    known = {k.key_id: k for k in member.keys}
    if key_id in known and known[key_id].HasField("revoked_at"):
        raise ValueError(f"the request's signing key {key_id} was revoked; the member generates new keys (`jpr member keygen`)")
    with enrollment.claim(Path(args.out)) as out:
        certificate = Issuer(Path(args.issuer)).sign(request.csr_pem.encode(), args.name, pki.ROLE_MEMBER, args.days)
        registered = admin.call("RegisterCertificate", admin_pb2.RegisterCertificateRequest(certificate_pem=certificate.decode()))
        if key_id not in known:
            admin.call("AddMemberKey", admin_pb2.AddMemberKeyRequest(member=args.name, public_key=request.signing_public_key))
        credentials = admin.credentials
        out.write(enrollment.Issued(
            name=args.name, registry=credentials.registry, endpoint=credentials.endpoint, ca_certificate=credentials.ca_certificate,
            certificate=certificate.decode(), key_id=key_id, oprf_public_key=credentials.oprf_public_key,
        ).to_json())
    row = _certificate_row(registered)
    if args.json:
        output.emit_json({**row, "key_id": key_id, "file": args.out})
    else:
        print(f"certificate sha256 {row['certificate_sha256']} registered for member {args.name}, valid until {row['not_after']}")
        print(f"signing key {key_id}{' registered' if key_id not in known else ' (already registered)'}")
        print(f"issued certificate written to {args.out}; the member's other certificates work until they expire or `jpr admin cert revoke`")
    return 0


def _certificate_row(certificate: admin_pb2.Certificate) -> dict[str, Any]:
    return {
        "role": certificate.role,
        "name": certificate.name,
        "certificate_sha256": certificate.certificate_sha256,
        "not_after": output.utc(certificate.not_after),
        "registered_by": certificate.registered_by,
        "revoked_at": output.optional_utc(certificate.revoked_at, certificate.HasField("revoked_at")),
    }


def _member_rows(response: admin_pb2.ListMembersResponse) -> list[dict[str, Any]]:
    return [
        {
            "name": m.name,
            "status": output.enum_name(admin_pb2.MemberStatus, m.status),
            "created_at": output.utc(m.created_at),
            "keys": [_key_row(k) for k in m.keys],
            "certificates": [_certificate_row(c) for c in m.certificates],
        }
        for m in response.members
    ]


def _members_list(args: argparse.Namespace) -> int:
    rows = _member_rows(_Admin(args).call("ListMembers", admin_pb2.ListMembersRequest()))
    if args.json:
        output.emit_json(rows)
        return 0
    for row in rows:  # one cell each: the key or digest, its expiry, and whether it is revoked
        row["keys"] = [k["key_id"] + (" (revoked)" if k["revoked_at"] else "") for k in row["keys"]]
        row["certificates"] = [f"{c['certificate_sha256']} until {c['not_after'][:10]}" + (" (revoked)" if c["revoked_at"] else "")
                               for c in row["certificates"]]
    output.table(rows, ["name", "status", "created_at", "keys", "certificates"])
    return 0


def _members_add_key(args: argparse.Namespace) -> int:
    request = admin_pb2.AddMemberKeyRequest(member=args.name, public_key=args.public_key)
    if args.valid_from:
        request.valid_from.FromDatetime(args.valid_from)
    if args.valid_until:
        request.valid_until.FromDatetime(args.valid_until)
    return _print_key(args, _Admin(args).call("AddMemberKey", request))


def _members_suspend(args: argparse.Namespace) -> int:
    member = _Admin(args).call("SuspendMember", admin_pb2.MemberStatusRequest(member=args.name, reason=args.reason))
    output.emit_json({"name": member.name, "status": "SUSPENDED"}) if args.json else print(f"member {member.name} suspended: every call refused")
    return 0


def _members_resume(args: argparse.Namespace) -> int:
    member = _Admin(args).call("ResumeMember", admin_pb2.MemberStatusRequest(member=args.name, reason=args.reason))
    output.emit_json({"name": member.name, "status": "ACTIVE"}) if args.json else print(f"member {member.name} active again")
    return 0


def _members_volume(args: argparse.Namespace) -> int:
    request = admin_pb2.SetOnboardingVolumeRequest(member=args.name, per_day=args.per_day, reason=args.reason)
    member = _Admin(args).call("SetOnboardingVolume", request)
    if args.json:
        output.emit_json({"name": member.name, "onboarding_per_day": member.onboarding_per_day})
    else:
        print(f"member {member.name} onboards {member.onboarding_per_day:,} applicants a day")
    return 0


def _audit_access(args: argparse.Namespace) -> int:
    request = admin_pb2.AuditAccessRequest(
        volume_factor=args.volume_factor, miss_factor=args.miss_factor, min_applicants=args.min_applicants
    )
    if args.since:
        request.since.FromDatetime(args.since)
    if args.until:
        request.until.FromDatetime(args.until)
    response = _Admin(args).call("AuditAccess", request)
    rows = [
        {
            "member": m.member,
            "onboarding_per_day": m.onboarding_per_day or None,
            "calls": m.calls,
            "refused": m.refused,
            "lookups": m.lookup_calls,
            "applicants": m.applicants,
            "matched": m.matched,
            "match_rate": f"{m.match_rate:.2%}",
            "peers": f"{m.peer_match_rate:.2%}",
            "tokenized": m.tokenized,
            "flags": [output.enum_name(admin_pb2.AccessFlag, f) for f in m.flags],
            "why": list(m.explanations),
        }
        for m in response.members
    ]
    window = {"since": output.utc(response.since), "until": output.utc(response.until)}
    if args.json:
        output.emit_json({**window, "members": rows})
        return 0
    print(f"calls from {window['since']} to {window['until']}")
    output.table(rows, ["member", "onboarding_per_day", "calls", "refused", "lookups", "applicants", "matched", "match_rate", "peers", "tokenized", "flags"])
    for row in rows:
        for why in row["why"]:
            print(f"{row['member']}: {why}")
    return 0


def _audit_certs(args: argparse.Namespace) -> int:
    response = _Admin(args).call("ListCertificates", admin_pb2.ListCertificatesRequest())
    now = datetime.now(UTC)
    rows = [_certificate_row(c) for c in response.certificates]
    rows += [
        {"role": "server", "name": "server.pem (this replica)", "certificate_sha256": None, "not_after": output.utc(response.server_certificate_not_after)},
        {"role": "ca", "name": "ca.pem", "certificate_sha256": None, "not_after": output.utc(response.ca_certificate_not_after)},
    ]
    for row in rows:
        left = datetime.fromisoformat(row["not_after"]) - now
        row["days_left"] = left.days
        row["flag"] = "EXPIRING" if left <= timedelta(days=args.within) else None
    flagged = [row for row in rows if row["flag"]]
    if args.json:
        output.emit_json({"within_days": args.within, "certificates": rows, "expiring": len(flagged)})
        return 0
    output.table(rows, ["role", "name", "certificate_sha256", "not_after", "days_left", "flag"])
    print(f"{len(flagged)} certificate(s) expire within {args.within} days" + (": renew them (docs/operations.md)" if flagged else ""))
    if response.HasField("unregistered_issued_before"):
        print(f"certificates signed before {output.utc(response.unregistered_issued_before)} are admitted unregistered "
              "and not listed: register them (`jpr admin cert register`) or re-issue them")
    return 0


def _admins_add(args: argparse.Namespace) -> int:
    return _add_credentials(args, pki.ROLE_ADMIN, f"hand them to {args.name} only")


def _probes_add(args: argparse.Namespace) -> int:
    return _add_credentials(args, pki.ROLE_PROBE, "a probe may only call the health service")


def _add_credentials(args: argparse.Namespace, role: str, advice: str) -> int:
    """Sign a new key's certificate for `role` with the local CA key, register it, write the credentials."""
    admin = _Admin(args)
    with enrollment.claim(Path(args.out)) as out:
        key_pem, csr_pem = pki.make_csr(args.name, role)
        certificate = Issuer(Path(args.issuer)).sign(csr_pem, args.name, role, args.days)
        registered = admin.call("RegisterCertificate", admin_pb2.RegisterCertificateRequest(certificate_pem=certificate.decode()))
        credentials = replace(admin.credentials, name=args.name, certificate=certificate.decode(), private_key=key_pem.decode())
        out.write(credentials.to_json())
    row = _certificate_row(registered)
    if args.json:
        output.emit_json({**row, "file": args.out})
    else:
        print(f"{role} {args.name} registered, certificate sha256 {row['certificate_sha256']} valid until {row['not_after']}")
        print(f"credentials written to {args.out} ({advice})")
    return 0


def _admin_certificates(admin: _Admin, include_revoked: bool) -> list[dict[str, Any]]:
    request = admin_pb2.ListCertificatesRequest(role=pki.ROLE_ADMIN, include_revoked=include_revoked)
    return [_certificate_row(c) for c in admin.call("ListCertificates", request).certificates]


def _admins_list(args: argparse.Namespace) -> int:
    rows = _admin_certificates(_Admin(args), args.all)
    output.emit_json(rows) if args.json else output.table(rows, ["name", "certificate_sha256", "not_after", "registered_by", "revoked_at"])
    return 0


def _admins_revoke(args: argparse.Namespace) -> int:
    admin = _Admin(args)
    held = [row for row in _admin_certificates(admin, False) if row["name"] == args.name]
    if not held:
        raise ValueError(f"admin {args.name!r} holds no unrevoked registered certificate (`jpr admin admins list --all`)")
    for row in held:
        admin.call("RevokeCertificate", admin_pb2.RevokeCertificateRequest(certificate_sha256=row["certificate_sha256"], reason=args.reason))
    revoked = [row["certificate_sha256"] for row in held]
    output.emit_json({"name": args.name, "revoked_certificate_sha256": revoked}) if args.json else print(f"admin {args.name}: certificate(s) {', '.join(revoked)} revoked")
    return 0


def _server_cert_renew(args: argparse.Namespace) -> int:
    hosts = [*SERVER_HOSTS, *(h for h in args.host if h not in SERVER_HOSTS)]
    server = pki.issue_server_cert(Issuer(Path(args.issuer)).ca(), hosts, args.days)
    out = Path(args.out_dir)
    write_new(out / SERVER_KEY, server.key_pem, secret=True)
    write_new(out / SERVER_CERT, server.cert_pem)
    not_after = pki.not_after(server.cert_pem)
    if args.json:
        output.emit_json({"key_file": str(out / SERVER_KEY), "certificate_file": str(out / SERVER_CERT), "hosts": hosts,
                          "certificate_sha256": pki.fingerprint(server.cert_pem), "not_after": not_after})
        return 0
    print(f"{out / SERVER_KEY} and {out / SERVER_CERT} written for {', '.join(hosts)}, valid until {not_after.isoformat()}")
    print("copy both into each replica's data directory and restart it; members need nothing new")
    return 0


def _ca_renew(args: argparse.Namespace) -> int:
    certificate = pki.renew_ca(Issuer(Path(args.issuer)).ca(), args.days)
    write_new(Path(args.out), certificate)
    if args.json:
        output.emit_json({"file": args.out, "certificate_sha256": pki.fingerprint(certificate), "not_after": pki.not_after(certificate)})
        return 0
    print(f"new CA certificate for the same key written to {args.out}, valid until {pki.not_after(certificate).isoformat()}")
    print("replace ca.pem in the issuer directory and in each replica's data directory, restart the replicas, "
          "and send it to every member and admin: `jpr member trust-ca --credentials FILE --ca NEW.pem` puts it in their credentials")
    return 0


def _cert_register(args: argparse.Namespace) -> int:
    text = Path(args.file).read_text(encoding="utf-8")
    pem = text if text.lstrip().startswith("-----BEGIN") else str(json.loads(text).get("certificate", ""))
    registered = _Admin(args).call("RegisterCertificate", admin_pb2.RegisterCertificateRequest(certificate_pem=pem))
    row = _certificate_row(registered)
    output.emit_json(row) if args.json else print(f"certificate {row['certificate_sha256']} of {row['role']} {row['name']} registered, valid until {row['not_after']}")
    return 0


def _cert_revoke(args: argparse.Namespace) -> int:
    sha256 = args.sha256
    if Path(sha256).is_file():  # a certificate file: revoke that certificate
        sha256 = pki.fingerprint(Path(sha256).read_bytes())
    revoked = _Admin(args).call("RevokeCertificate", admin_pb2.RevokeCertificateRequest(certificate_sha256=sha256, reason=args.reason))
    if args.json:
        output.emit_json({"certificate_sha256": revoked.certificate_sha256, "revoked_by": revoked.revoked_by, "reason": revoked.reason})
    else:
        print(f"certificate {revoked.certificate_sha256} revoked: its holder is refused from now on")
    return 0


def _members_revoke_key(args: argparse.Namespace) -> int:
    key = _Admin(args).call("RevokeMemberKey", admin_pb2.RevokeMemberKeyRequest(member=args.name, key_id=args.key_id))
    return _print_key(args, key)


def _print_key(args: argparse.Namespace, key: admin_pb2.SigningKey) -> int:
    row = _key_row(key)
    output.emit_json(row) if args.json else output.fields(row)
    return 0


def _key_row(key: admin_pb2.SigningKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "valid_from": output.utc(key.valid_from),
        "valid_until": output.optional_utc(key.valid_until, key.HasField("valid_until")),
        "revoked_at": output.optional_utc(key.revoked_at, key.HasField("revoked_at")),
    }


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


def _reports_list(args: argparse.Namespace) -> int:
    status = types_pb2.ReportStatus.Value("REPORT_STATUS_" + (args.status or "unspecified").upper())
    request = admin_pb2.ListReportsRequest(status=status, page_size=args.page_size, page_token=args.page_token)
    response = _Admin(args).call("ListReports", request)
    rows = [_report_row(r) for r in response.reports]
    _print_page(args, rows, response.next_page_token, ["report_id", "reporter", "status", "subject_id", "category", "severity", "received_at"])
    return 0


def _listing_status(name: str | None) -> types_pb2.ListingStatus.ValueType:
    return types_pb2.ListingStatus.Value("LISTING_STATUS_" + (name or "unspecified").upper())


def _listings_list(args: argparse.Namespace) -> int:
    request = admin_pb2.ListListingsRequest(status=_listing_status(args.status), page_size=args.page_size, page_token=args.page_token)
    response = _Admin(args).call("ListListings", request)
    rows = [_listing_row(l) for l in response.listings]
    _print_page(args, rows, response.next_page_token, ["listing_id", "subject_id", "status", "severity", "categories", "listed_until", "reporting_platforms"])
    return 0


def _print_page(args: argparse.Namespace, rows: list[dict[str, Any]], next_token: str, columns: list[str]) -> None:
    if args.json:
        output.emit_json({"items": rows, "next_page_token": next_token})
        return
    output.table(rows, columns)
    if next_token:
        print(f"more: --page-token {next_token}")


def _listings_queue(args: argparse.Namespace) -> int:
    response = _Admin(args).call("ListReviewQueue", admin_pb2.ListReviewQueueRequest(limit=args.limit))
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
    _print_page(args, rows, "", ["listing_id", "subject_id", "status", "quarantined", "disputes", "confirmations", "appeal_id", "listed_until"])
    return 0


def _subject_show(args: argparse.Namespace) -> int:
    record = _Admin(args).call("GetSubject", admin_pb2.GetSubjectRequest(subject_id=args.subject_id))
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


def _subject_detach(args: argparse.Namespace) -> int:
    request = admin_pb2.DetachIdentifierRequest(subject_id=args.subject_id, token_prefix=args.token, reason=args.reason)
    correction = _Admin(args).call("DetachIdentifier", request)
    return _print_correction(args, correction, f"identifier {args.token} detached from {correction.subject_id}")


def _subject_split(args: argparse.Namespace) -> int:
    request = admin_pb2.SplitSubjectRequest(subject_id=args.subject_id, report_ids=args.reports, reason=args.reason)
    correction = _Admin(args).call("SplitSubject", request)
    return _print_correction(args, correction, f"{len(correction.report_ids)} report(s) moved from {correction.subject_id} to {correction.new_subject_id}")


def _print_correction(args: argparse.Namespace, correction: admin_pb2.Correction, done: str) -> int:
    if args.json:
        output.emit_json(output.message(correction))
    else:
        corrected = f"; corrected listings: {', '.join(correction.listing_ids)}" if correction.listing_ids else ""
        print(done + corrected)
    return 0


def _listings_lift(args: argparse.Namespace) -> int:
    grounds = {"credit-repair": admin_pb2.LIFT_GROUNDS_CREDIT_REPAIR, "correction": admin_pb2.LIFT_GROUNDS_ADMIN_CORRECTION}[args.grounds]
    listing = _Admin(args).call("LiftListing", admin_pb2.LiftListingRequest(listing_id=args.listing_id, grounds=grounds, reason=args.reason))
    row = _listing_row(listing)
    output.emit_json(row) if args.json else print(f"listing {row['listing_id']} lifted: {row['subject_id']} is no longer listed")
    return 0


def _listings_release(args: argparse.Namespace) -> int:
    listing = _Admin(args).call("ReleaseListing", admin_pb2.ReleaseListingRequest(listing_id=args.listing_id, reason=args.reason))
    row = _listing_row(listing)
    output.emit_json(row) if args.json else print(f"listing {row['listing_id']} released: its lookups deny again")
    return 0


def _listings_object(args: argparse.Namespace) -> int:
    listing = _Admin(args).call("RecordObjection", admin_pb2.RecordObjectionRequest(listing_id=args.listing_id, reason=args.reason))
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


def _appeals_list(args: argparse.Namespace) -> int:
    status = admin_pb2.AppealStatus.Value("APPEAL_STATUS_" + (args.status or "unspecified").upper())
    request = admin_pb2.ListAppealsRequest(status=status, page_size=args.page_size, page_token=args.page_token)
    response = _Admin(args).call("ListAppeals", request)
    rows = [_appeal_row(a) for a in response.appeals]
    _print_page(args, rows, response.next_page_token, ["appeal_id", "listing_id", "status", "filed_at", "reason"])
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


def _events(args: argparse.Namespace) -> int:
    request = admin_pb2.ListEventsRequest(actor=args.actor, kind_prefix=args.kind, page_size=args.page_size, page_token=args.page_token)
    if args.since:
        request.since.FromDatetime(args.since)
    if args.until:
        request.until.FromDatetime(args.until)
    response = _Admin(args).call("ListEvents", request)
    rows = [_event_row(e) for e in response.events]
    if not args.json:  # one column for the ids the event names
        rows = [{**row, "ids": [row[k] for k in ("subject_id", "listing_id", "report_id") if row[k]]} for row in rows]
    _print_page(args, rows, response.next_page_token, ["seq", "occurred_at", "actor", "kind", "ids", "reason"])
    return 0


def _export(args: argparse.Namespace) -> int:
    admin = _Admin(args)
    selection = export.Selection(reporters=args.with_reporters, free_text=args.with_free_text)
    request = admin_pb2.ListListingsRequest(status=_listing_status(args.status), page_size=args.page_size)
    pages = export.pages(lambda r: admin.call("ListListings", r), request)
    if not args.out:  # the data on stdout; a count on stderr unless both are the same terminal
        shown = sys.stderr.isatty() and not sys.stdout.isatty()
        export.write(pages, sys.stdout, args.format, selection, output.Progress("listings exported", shown=shown))
        return 0
    with enrollment.claim(Path(args.out), newline="") as out:
        count = export.write(pages, out, args.format, selection, output.Progress("listings exported", shown=output.progress_shown(args)))
    print(f"{count:,} {args.status} listings written to {args.out}")
    return 0


def _appeals_file(args: argparse.Namespace) -> int:
    appeal = _Admin(args).call("FileAppeal", admin_pb2.FileAppealRequest(listing_id=args.listing_id, reason=args.reason))
    row = _appeal_row(appeal)
    output.emit_json(row) if args.json else print(f"appeal {row['appeal_id']} filed against {row['listing_id']}; lookups still deny and say it is pending")
    return 0


def _appeals_decide(args: argparse.Namespace) -> int:
    decision = admin_pb2.AppealStatus.Value("APPEAL_STATUS_" + args.decision.upper())
    appeal = _Admin(args).call("DecideAppeal", admin_pb2.DecideAppealRequest(appeal_id=args.appeal_id, decision=decision, reason=args.reason))
    row = _appeal_row(appeal)
    output.emit_json(row) if args.json else print(f"appeal {row['appeal_id']} {row['status'].lower()}")
    return 0


def _reports_accept(args: argparse.Namespace) -> int:
    request = admin_pb2.AcceptReportRequest(report_id=args.report_id, term_days=args.term_days, reason=args.reason)
    response = _Admin(args).call("AcceptReport", request)
    result = {"report": _report_row(response.report), "listing": _listing_row(response.listing)}
    if args.json:
        output.emit_json(result)
    else:
        listing = result["listing"]
        print(f"report {args.report_id} accepted: {listing['subject_id']} listed as {listing['listing_id']} until {output.cell(listing['listed_until'])}")
    return 0


def _reports_reject(args: argparse.Namespace) -> int:
    report = _Admin(args).call("RejectReport", admin_pb2.RejectReportRequest(report_id=args.report_id, reason=args.reason))
    row = _report_row(report)
    output.emit_json(row) if args.json else print(f"report {args.report_id} rejected: {args.reason}")
    return 0


def _import(args: argparse.Namespace) -> int:
    return import_lists.run_import(args, _Admin(args).call, load_credentials(args, args.member_credentials))
