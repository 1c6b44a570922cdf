"""`jpr admin ...`: the association's staff at work; the flags of every admin command.

The commands run in admin_access (members, keys, certificates, audits) and admin_cases (reports,
listings, subjects, appeals, the event log, export and import).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from jpr_client.credentials import EXPIRY_WARNING_DAYS
from registry.cli import export, import_lists, output
from registry.cli.arguments import count, hex_bytes, hex_prefix, positive, utc_time
from registry.cli.connect import add_credentials_flag
from registry.crypto import pki
from registry.cli import admin_access, admin_cases, admin_witnesses

DEFAULT_CREDENTIALS = "jpr-data/admin.credentials.json"


DEFAULT_ISSUER = "jpr-data/issuer"


ISSUER_ENV = "JPR_ISSUER"


LISTING_STATUSES = ["pending_notice", "active", "expired", "lifted"]


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    admin = parser.add_subparsers(dest="group", required=True, metavar="GROUP")

    members = admin.add_parser("members", aliases=["member"], help="member platforms").add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(members, "add", "register a platform", admin_access.members_add)
    add.add_argument("name")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--request", help="the platform's request file from `jpr member keygen`")
    source.add_argument("--generate", action="store_true", help="generate the platform's keys here and write complete credentials (for trials)")
    add.add_argument("--out", required=True, help="file to write: the issued certificate (--request) or credentials (--generate)")
    _issuer_flags(add)
    reissue = _command(members, "reissue", "sign and register a new certificate for a member from its new request (after a leak, or to renew)",
                       admin_access.members_reissue)
    reissue.add_argument("name")
    reissue.add_argument("--request", required=True, help="the member's new request file from `jpr member keygen`")
    reissue.add_argument("--out", required=True, help="the issued file to write and send back (`jpr member credentials` takes it)")
    _issuer_flags(reissue)
    _command(members, "list", "list members, their keys and their certificates (SHA-256, expiry)", admin_access.members_list)
    add_key = _command(members, "add-key", "register another signing key", admin_access.members_add_key)
    add_key.add_argument("name")
    add_key.add_argument("--public-key", required=True, type=hex_bytes(32, "a raw Ed25519 public key"), help="raw Ed25519 public key, hex")
    add_key.add_argument("--valid-from", type=utc_time, help="first moment the key may sign (ISO 8601; default now)")
    add_key.add_argument("--valid-until", type=utc_time, help="the key signs nothing from then on (ISO 8601; default: until revoked)")
    revoke = _command(members, "revoke-key", "revoke a signing key", admin_access.members_revoke_key)
    revoke.add_argument("name")
    revoke.add_argument("key_id")
    for verb, run, help_text in (("suspend", admin_access.members_suspend, "refuse every call of a member at once"),
                                 ("resume", admin_access.members_resume, "let a suspended member call again")):
        change = _command(members, verb, help_text, run)
        change.add_argument("name")
        change.add_argument("--reason", required=True, help="why (recorded)")

    volume = _command(members, "volume", "record how many applicants a member onboards a day (the yardstick for its lookups)", admin_access.members_volume)
    volume.add_argument("name")
    volume.add_argument("per_day", type=count, help="applicants onboarded a day")
    volume.add_argument("--reason", required=True, help="where the figure comes from (recorded)")

    audit = admin.add_parser("audit", help="how members use the registry").add_subparsers(dest="action", required=True, metavar="ACTION")
    access = _command(audit, "access", "each member's call volumes, flagging lookups out of line with onboarding or enumeration-like misses",
                      admin_access.audit_access)
    access.add_argument("--since", type=utc_time, help="start of the window (ISO 8601; default: 7 days before --until)")
    access.add_argument("--until", type=utc_time, help="end of the window (ISO 8601; default: now)")
    access.add_argument("--volume-factor", type=float, default=0.0, help="flag lookups above this many times the declared volume (default 3)")
    access.add_argument("--miss-factor", type=float, default=0.0, help="flag a match rate this many times below other members' (default 10)")
    access.add_argument("--min-applicants", type=count, default=0, help="judge match rates from this many applicants on (default 1000)")

    expiring = _command(audit, "certs", f"certificates expiring within {EXPIRY_WARNING_DAYS} days (clients', the server's, the CA's)",
                        admin_access.audit_certs)
    expiring.add_argument("--within", type=count, default=EXPIRY_WARNING_DAYS, help=f"days ahead (default {EXPIRY_WARNING_DAYS})")

    admins = admin.add_parser("admins", help="the association's named admins, one certificate each").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    admins_add = _command(admins, "add", "issue and register a named admin's certificate; write their credentials", admin_access.admins_add)
    admins_add.add_argument("name", help="the person's name (2-63 characters: a-z, 0-9, '-'); recorded with each decision as admin:NAME")
    admins_add.add_argument("--out", required=True, help="credentials file to write (mode 0600); hand it to that person only")
    _issuer_flags(admins_add)
    probes = admin.add_parser("probes", aliases=["probe"], help="health-check credentials (load balancers, container checks)").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    probes_add = _command(probes, "add", "issue and register a probe certificate (it may only ask the health service)", admin_access.probes_add)
    probes_add.add_argument("name", nargs="?", default="probe", help="the probe's name (default: probe), e.g. haproxy-1")
    probes_add.add_argument("--out", required=True, help="credentials file to write (mode 0600), e.g. a replica's probe.credentials.json")
    _issuer_flags(probes_add)
    admins_list = _command(admins, "list", "admins' certificates", admin_access.admins_list)
    admins_list.add_argument("--all", action="store_true", help="revoked certificates too")
    admins_revoke = _command(admins, "revoke", "revoke every certificate of one admin (a leak, a departure); others keep theirs", admin_access.admins_revoke)
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
    renew_server.set_defaults(run=admin_access.server_cert_renew)
    ca = admin.add_parser("ca", help="the registry's CA certificate").add_subparsers(dest="action", required=True, metavar="ACTION")
    renew_ca = ca.add_parser("renew", help="a new CA certificate for the same CA key: every certificate it signed stays valid")
    renew_ca.add_argument("--out", required=True, help="the new ca.pem to write (replaces ca.pem in issuer/, on each replica, in each credentials file)")
    _issuer_flags(renew_ca, days=pki.CA_DAYS)
    output.add_json_flag(renew_ca)
    renew_ca.set_defaults(run=admin_access.ca_renew)

    admin_witnesses.configure(admin, _command)

    certs = admin.add_parser("cert", aliases=["certs"], help="client certificates").add_subparsers(dest="action", required=True, metavar="ACTION")
    register = _command(certs, "register", "admit a client certificate signed by the registry's CA (one issued before registration, or signed by hand)",
                        admin_access.cert_register)
    register.add_argument("file", help="a PEM certificate, or an issued or credentials JSON file holding one")
    revoke_cert = _command(certs, "revoke", "refuse a client certificate from now on", admin_access.cert_revoke)
    revoke_cert.add_argument("sha256", help="the certificate's SHA-256 (printed by `members add`), or a PEM file")
    revoke_cert.add_argument("--reason", required=True, help="why (recorded)")

    imports = _command(admin, "import", "import a list the association keeps (CSV) as signed reports, accepted with their own dates", admin_cases.import_reports)
    import_lists.add_import_flags(imports)

    reports = admin.add_parser("reports", aliases=["report"], help="report review").add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _command(reports, "list", "list reports", admin_cases.reports_list)
    listing.add_argument("--status", choices=["submitted", "accepted", "rejected", "retracted"], help="only reports in this status (default: all)")
    _paging(listing)
    accept = _command(reports, "accept", "accept a report: list its subject", admin_cases.reports_accept)
    accept.add_argument("report_id")
    accept.add_argument("--term-days", type=count, default=0, help="listing term (default: by severity)")
    accept.add_argument("--reason", default="", help="why (recorded)")
    reject = _command(reports, "reject", "reject a report", admin_cases.reports_reject)
    reject.add_argument("report_id")
    reject.add_argument("--reason", required=True, help="why (recorded, shown to the reporter)")

    listings = admin.add_parser("listings", aliases=["listing"], help="joint punishments").add_subparsers(dest="action", required=True, metavar="ACTION")
    listings_list = _command(listings, "list", "list listings", admin_cases.listings_list)
    listings_list.add_argument("--status", choices=LISTING_STATUSES, help="only listings in this status (default: all)")
    _paging(listings_list)
    queue = _command(listings, "queue", "listings quarantined by the flood guard, disputed or under appeal (quarantined first)", admin_cases.listings_queue)
    queue.add_argument("--limit", type=positive, default=50, help="at most this many (default 50, at most 500)")
    subjects = admin.add_parser("subject", aliases=["subjects"], help="one person or company: access requests and corrections").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    show = _command(subjects, "show", "everything the registry holds about a subject (for an access request)", admin_cases.subject_show)
    show.add_argument("subject_id")
    detach = _command(subjects, "detach", "detach a wrongly attached identifier from a subject", admin_cases.subject_detach)
    detach.add_argument("subject_id")
    detach.add_argument("--token", required=True, type=hex_prefix(16, 128, "a token prefix as `subject show` prints it"), help="the identifier's token prefix, as `subject show` prints it")
    detach.add_argument("--reason", required=True, help="why (recorded)")
    split = _command(subjects, "split", "undo a wrong merge: move reports about someone else to a new subject", admin_cases.subject_split)
    split.add_argument("subject_id")
    split.add_argument("--report", required=True, action="append", dest="reports", help="a report about someone else (repeat)")
    split.add_argument("--reason", required=True, help="why (recorded)")
    events = _command(admin, "events", "the event log, oldest first (after a leak: --actor admin:NAME --since T)", admin_cases.list_events)
    events.add_argument("--actor", default="", help="only this actor's events: admin:NAME, member:NAME or registry (default: all)")
    events.add_argument("--kind", default="", help="only kinds starting with this, e.g. listing. (default: all)")
    events.add_argument("--since", type=utc_time, help="only events at or after this time (ISO 8601)")
    events.add_argument("--until", type=utc_time, help="only events before this time (ISO 8601)")
    _paging(events)
    appeals = admin.add_parser("appeals", aliases=["appeal"], help="appeals against listings").add_subparsers(dest="action", required=True, metavar="ACTION")
    file_appeal = _command(appeals, "file", "file an appeal on the listed subject's behalf", admin_cases.appeals_file)
    file_appeal.add_argument("listing_id")
    file_appeal.add_argument("--reason", required=True, help="the appellant's grounds (recorded)")
    decide = _command(appeals, "decide", "decide a pending appeal", admin_cases.appeals_decide)
    decide.add_argument("appeal_id")
    decide.add_argument("--decision", required=True, choices=["upheld", "denied"], help="upheld lifts the listing; denied keeps it")
    decide.add_argument("--reason", required=True, help="why (recorded)")
    appeals_list = _command(appeals, "list", "list appeals, oldest filed first", admin_cases.appeals_list)
    appeals_list.add_argument("--status", choices=["pending", "upheld", "denied"], help="only appeals in this status (default: all)")
    _paging(appeals_list)
    _export_flags(_command(admin, "export", "write the listings, one row each, as CSV or JSON lines (no token, ever)", admin_cases.export_listings, json_flag=False))

    objection = _command(listings, "object", "record an objection against a listing in its notice window", admin_cases.listings_object)
    objection.add_argument("listing_id")
    objection.add_argument("--reason", required=True, help="who objects and why (recorded)")
    lift = _command(listings, "lift", "end a listing early (credit repair, or correction of a wrong listing)", admin_cases.listings_lift)
    lift.add_argument("listing_id")
    lift.add_argument("--grounds", required=True, choices=["credit-repair", "correction"],
                      help="credit-repair: only after the minimum period (default 365 days); correction: the listing was wrong")
    lift.add_argument("--reason", required=True, help="why (recorded)")
    release = _command(listings, "release", "end the flood guard's quarantine of a listing found right (it denies again)", admin_cases.listings_release)
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
