"""`jpr member ...`: a platform's own keys and credentials."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from jpr_client.credentials import Credentials
from registry.cli.enrollment import Issued, PlatformKeys, generate_keys
from registry.cli.output import add_json_flag, emit_json
from registry.crypto import pki


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    member = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    keygen = member.add_parser("keygen", help="generate this platform's signing key, TLS key and certificate request")
    keygen.add_argument("name", help="the platform's member name")
    keygen.add_argument("--out-dir", default=".", help="where to write NAME.keys.json (secret) and NAME.request.json (send this one)")
    keygen.set_defaults(run=_keygen)
    creds = member.add_parser("credentials", help="combine your keys with the association's issued certificate")
    creds.add_argument("--keys", required=True, help="NAME.keys.json from keygen")
    creds.add_argument("--issued", required=True, help="the file `jpr admin members add --request` wrote")
    creds.add_argument("--out", required=True, help="credentials file to write (mode 0600)")
    creds.set_defaults(run=_credentials)
    status = member.add_parser("status", help="whose credentials these are and when their certificate expires")
    status.add_argument("--credentials", required=True, help="your credentials file")
    status.set_defaults(run=_status)
    trust = member.add_parser("trust-ca", help="put the association's renewed CA certificate into your credentials (`jpr admin ca renew`)")
    trust.add_argument("--credentials", required=True, help="your credentials file (rewritten in place, mode 0600)")
    trust.add_argument("--ca", required=True, help="the renewed CA certificate (PEM) the association sent")
    trust.set_defaults(run=_trust_ca)
    for action in (keygen, creds, status, trust):
        add_json_flag(action)


def _keygen(args: argparse.Namespace) -> int:
    out = Path(args.out_dir)
    keys = generate_keys(args.name)
    keys.save(out / f"{args.name}.keys.json")
    keys.request().save(out / f"{args.name}.request.json")
    if args.json:
        emit_json({"name": args.name, "keys_file": str(out / f"{args.name}.keys.json"), "request_file": str(out / f"{args.name}.request.json")})
        return 0
    print(f"secret keys: {out / f'{args.name}.keys.json'} (keep on the platform)")
    print(f"request:     {out / f'{args.name}.request.json'} (send to the association)")
    return 0


def _credentials(args: argparse.Namespace) -> int:
    keys = PlatformKeys.load(Path(args.keys))
    credentials = keys.credentials(Issued.load(Path(args.issued)))
    credentials.save(Path(args.out))
    if args.json:
        emit_json({"name": credentials.name, "registry": credentials.registry, "endpoint": credentials.endpoint, "file": args.out})
    else:
        print(f"credentials written to {args.out}")
    return 0


def _trust_ca(args: argparse.Namespace) -> int:
    """Replace the pinned CA certificate with its renewal: the same key, so it must have signed this certificate."""
    credentials = Credentials.load(args.credentials)
    ca_pem = Path(args.ca).read_bytes()
    try:
        pki.inspect_client_cert(ca_pem, credentials.certificate.encode(), datetime.now(UTC))
    except pki.PkiError as error:
        raise ValueError(f"--ca {args.ca}: {error}; a renewed CA certificate signs the certificates the old one did "
                         "(a new CA comes with new credentials instead)") from None
    path = Path(args.credentials)
    written = path.with_name(path.name + ".new")  # whole before it takes the old file's place
    replace(credentials, ca_certificate=ca_pem.decode()).save(written)
    os.replace(written, path)
    if args.json:
        emit_json({"file": args.credentials, "ca_certificate_sha256": pki.fingerprint(ca_pem), "ca_not_after": pki.not_after(ca_pem)})
    else:
        print(f"{args.credentials} now trusts the CA certificate in {args.ca}")
    return 0


def _status(args: argparse.Namespace) -> int:
    """Exit 0, or 1 when the certificate expires within 30 days (a cron job's alarm)."""
    credentials = Credentials.load(args.credentials)
    warning = credentials.expiry_warning()
    if args.json:
        emit_json({"role": credentials.role, "name": credentials.name, "registry": credentials.registry, "endpoint": credentials.endpoint,
                   "certificate_expires_at": credentials.certificate_expires_at, "warning": warning})
    else:
        print(f"{credentials.role} {credentials.name} at {credentials.registry} ({credentials.endpoint})")
        print(f"certificate expires {credentials.certificate_expires_at.isoformat()}")
        if warning is not None:
            print(f"warning: {warning}")
    return 0 if warning is None else 1
