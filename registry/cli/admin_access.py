"""`jpr admin members|admins|probes|cert|server-cert|ca|audit`: who may call the registry, with what."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jpr_client.api.jpr.v1 import admin_pb2
from jpr_client.crypto import dsse
from registry.cli import enrollment, output
from registry.cli.admin_session import AdminSession
from registry.crypto import pki
from registry.datadir import SERVER_CERT, SERVER_HOSTS, SERVER_KEY, Issuer, write_new


def members_add(args: argparse.Namespace) -> int:
    admin = AdminSession(args)
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
            log_public_key=response.log_public_key,
        )
        out.write(keys.credentials(issued).to_json() if args.generate else issued.to_json())
    if args.json:
        output.emit_json({"name": args.name, "key_id": response.key_id, "certificate_sha256": response.certificate_sha256, "file": args.out})
    else:
        print(f"member {args.name} registered, signing key {response.key_id}")
        print(f"certificate sha256 {response.certificate_sha256} (keep it: `jpr admin cert revoke` takes it)")
        print(f"{'credentials' if args.generate else 'issued certificate'} written to {args.out}")
    return 0


def members_reissue(args: argparse.Namespace) -> int:
    """Sign the member's new request here, register the certificate, and its signing key if new. The old
    certificate keeps working until it expires or is revoked: the overlap a renewal needs."""
    admin = AdminSession(args)
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
            log_public_key=credentials.log_public_key,
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


def members_list(args: argparse.Namespace) -> int:
    rows = _member_rows(AdminSession(args).call("ListMembers", admin_pb2.ListMembersRequest()))
    if args.json:
        output.emit_json(rows)
        return 0
    for row in rows:  # one cell each: the key or digest, its expiry, and whether it is revoked
        row["keys"] = [k["key_id"] + (" (revoked)" if k["revoked_at"] else "") for k in row["keys"]]
        row["certificates"] = [f"{c['certificate_sha256']} until {c['not_after'][:10]}" + (" (revoked)" if c["revoked_at"] else "")
                               for c in row["certificates"]]
    output.table(rows, ["name", "status", "created_at", "keys", "certificates"])
    return 0


def members_add_key(args: argparse.Namespace) -> int:
    request = admin_pb2.AddMemberKeyRequest(member=args.name, public_key=args.public_key)
    if args.valid_from:
        request.valid_from.FromDatetime(args.valid_from)
    if args.valid_until:
        request.valid_until.FromDatetime(args.valid_until)
    return _print_key(args, AdminSession(args).call("AddMemberKey", request))


def members_suspend(args: argparse.Namespace) -> int:
    member = AdminSession(args).call("SuspendMember", admin_pb2.MemberStatusRequest(member=args.name, reason=args.reason))
    output.emit_json({"name": member.name, "status": "SUSPENDED"}) if args.json else print(f"member {member.name} suspended: every call refused")
    return 0


def members_resume(args: argparse.Namespace) -> int:
    member = AdminSession(args).call("ResumeMember", admin_pb2.MemberStatusRequest(member=args.name, reason=args.reason))
    output.emit_json({"name": member.name, "status": "ACTIVE"}) if args.json else print(f"member {member.name} active again")
    return 0


def members_volume(args: argparse.Namespace) -> int:
    request = admin_pb2.SetOnboardingVolumeRequest(member=args.name, per_day=args.per_day, reason=args.reason)
    member = AdminSession(args).call("SetOnboardingVolume", request)
    if args.json:
        output.emit_json({"name": member.name, "onboarding_per_day": member.onboarding_per_day})
    else:
        print(f"member {member.name} onboards {member.onboarding_per_day:,} applicants a day")
    return 0


def audit_access(args: argparse.Namespace) -> int:
    request = admin_pb2.AuditAccessRequest(
        volume_factor=args.volume_factor, miss_factor=args.miss_factor, min_applicants=args.min_applicants
    )
    if args.since:
        request.since.FromDatetime(args.since)
    if args.until:
        request.until.FromDatetime(args.until)
    response = AdminSession(args).call("AuditAccess", request)
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


def audit_certs(args: argparse.Namespace) -> int:
    response = AdminSession(args).call("ListCertificates", admin_pb2.ListCertificatesRequest())
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


def admins_add(args: argparse.Namespace) -> int:
    return _add_credentials(args, pki.ROLE_ADMIN, f"hand them to {args.name} only")


def probes_add(args: argparse.Namespace) -> int:
    return _add_credentials(args, pki.ROLE_PROBE, "a probe may only call the health service")


def _add_credentials(args: argparse.Namespace, role: str, advice: str) -> int:
    """Sign a new key's certificate for `role` with the local CA key, register it, write the credentials."""
    admin = AdminSession(args)
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


def _admin_certificates(admin: AdminSession, include_revoked: bool) -> list[dict[str, Any]]:
    request = admin_pb2.ListCertificatesRequest(role=pki.ROLE_ADMIN, include_revoked=include_revoked)
    return [_certificate_row(c) for c in admin.call("ListCertificates", request).certificates]


def admins_list(args: argparse.Namespace) -> int:
    rows = _admin_certificates(AdminSession(args), args.all)
    output.emit_json(rows) if args.json else output.table(rows, ["name", "certificate_sha256", "not_after", "registered_by", "revoked_at"])
    return 0


def admins_revoke(args: argparse.Namespace) -> int:
    admin = AdminSession(args)
    held = [row for row in _admin_certificates(admin, False) if row["name"] == args.name]
    if not held:
        raise ValueError(f"admin {args.name!r} holds no unrevoked registered certificate (`jpr admin admins list --all`)")
    for row in held:
        admin.call("RevokeCertificate", admin_pb2.RevokeCertificateRequest(certificate_sha256=row["certificate_sha256"], reason=args.reason))
    revoked = [row["certificate_sha256"] for row in held]
    output.emit_json({"name": args.name, "revoked_certificate_sha256": revoked}) if args.json else print(f"admin {args.name}: certificate(s) {', '.join(revoked)} revoked")
    return 0


def server_cert_renew(args: argparse.Namespace) -> int:
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


def ca_renew(args: argparse.Namespace) -> int:
    certificate = pki.renew_ca(Issuer(Path(args.issuer)).ca(), args.days)
    write_new(Path(args.out), certificate)
    if args.json:
        output.emit_json({"file": args.out, "certificate_sha256": pki.fingerprint(certificate), "not_after": pki.not_after(certificate)})
        return 0
    print(f"new CA certificate for the same key written to {args.out}, valid until {pki.not_after(certificate).isoformat()}")
    print("replace ca.pem in the issuer directory and in each replica's data directory, restart the replicas, "
          "and send it to every member and admin: `jpr member trust-ca --credentials FILE --ca NEW.pem` puts it in their credentials")
    return 0


def cert_register(args: argparse.Namespace) -> int:
    text = Path(args.file).read_text(encoding="utf-8")
    pem = text if text.lstrip().startswith("-----BEGIN") else str(json.loads(text).get("certificate", ""))
    registered = AdminSession(args).call("RegisterCertificate", admin_pb2.RegisterCertificateRequest(certificate_pem=pem))
    row = _certificate_row(registered)
    output.emit_json(row) if args.json else print(f"certificate {row['certificate_sha256']} of {row['role']} {row['name']} registered, valid until {row['not_after']}")
    return 0


def cert_revoke(args: argparse.Namespace) -> int:
    sha256 = args.sha256
    if Path(sha256).is_file():  # a certificate file: revoke that certificate
        sha256 = pki.fingerprint(Path(sha256).read_bytes())
    revoked = AdminSession(args).call("RevokeCertificate", admin_pb2.RevokeCertificateRequest(certificate_sha256=sha256, reason=args.reason))
    if args.json:
        output.emit_json({"certificate_sha256": revoked.certificate_sha256, "revoked_by": revoked.revoked_by, "reason": revoked.reason})
    else:
        print(f"certificate {revoked.certificate_sha256} revoked: its holder is refused from now on")
    return 0


def members_revoke_key(args: argparse.Namespace) -> int:
    key = AdminSession(args).call("RevokeMemberKey", admin_pb2.RevokeMemberKeyRequest(member=args.name, key_id=args.key_id))
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
