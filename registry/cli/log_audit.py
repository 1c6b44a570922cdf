"""`jpr audit verify`: rebuild the transparency log from a registry database and check every checkpoint.

For the association's auditors, a regulator or a member's own auditor: it reads the
database directly (the live one, read-only, or a `jpr db backup` copy) and needs only
the log's public key, from a credentials file, the command line or the data directory.
It trusts nothing the registry stored about the tree (registry/store/log_audit.py).
"""

from __future__ import annotations

import argparse
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from registry.cli import output
from registry.cli.output import add_json_flag, emit_json
from registry.settings import load_settings


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    audit = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = audit.add_parser(
        "verify", help="rebuild the transparency log from the events and check every signed checkpoint",
        description="Rebuild the transparency log's tree from the event rows and check every stored checkpoint's signature and "
        "root, every event against its leaf, every report envelope and status against its events, and every listing's status. "
        "Exit 0 when everything agrees, 1 with one line per disagreement.",
    )
    where = verify.add_mutually_exclusive_group()
    where.add_argument("--backup", type=Path, help="an SQLite copy of the registry database (`jpr db backup`) to check instead")
    where.add_argument("--database-url", help="SQLAlchemy URL of the registry database (env JPR_DATABASE_URL)")
    verify.add_argument("--data-dir", help="data directory (env JPR_DATA_DIR; default ./jpr-data): its database, and its log key "
                        "when no other is given")
    key = verify.add_mutually_exclusive_group()
    key.add_argument("--log-public-key", help="the log's note verifier key, as in a credentials file's log_public_key")
    key.add_argument("--credentials", type=Path, help="a credentials file whose log_public_key to check against")
    add_json_flag(verify)
    verify.set_defaults(run=_verify)


def _verify(args: argparse.Namespace) -> int:
    from registry.store import log_audit
    from registry.store.database import Database

    log_key = _log_key(args)
    url = _database_url(args)
    database = Database(url)
    try:
        progress = output.Progress("audit", shown=output.progress_shown(args), total=log_audit.leaf_count(database), unit="leaves")
        report = log_audit.verify(database, log_key, progress=progress.show)
        progress.close()
    finally:
        database.dispose()
    if args.json:
        emit_json({
            "ok": report.ok, "leaves": report.leaves, "pending": report.pending, "root_hash": report.root_hash.hex(), "checkpoints": report.checkpoints,
            "newest_checkpoint": report.newest_checkpoint, "reports": report.reports, "listings": report.listings,
            "findings": [{"check": f.check, "where": f.where, "problem": f.problem} for f in report.findings],
        })
    else:
        for finding in report.findings:
            print(finding)
        unsigned = report.leaves - report.newest_checkpoint
        verdict = "OK" if report.ok else f"{len(report.findings)} disagreement(s)"
        waiting = f", {report.pending} committed and not yet in the log" if report.pending else ""
        print(f"{verdict}: {report.leaves} leaves ({unsigned} after the newest checkpoint, not signed yet{waiting}), "
              f"{report.checkpoints} checkpoints, {report.reports} reports, {report.listings} listings; root {report.root_hash.hex()}")
    return 0 if report.ok else 1


def _database_url(args: argparse.Namespace) -> str:
    if args.backup is not None:
        if not args.backup.is_file():
            raise ValueError(f"--backup {args.backup}: no such file")
        with closing(sqlite3.connect(f"file:{args.backup}?mode=ro", uri=True)) as copy:
            try:
                copy.execute("SELECT count(*) FROM log_leaves").fetchone()
            except sqlite3.DatabaseError as error:
                raise ValueError(f"--backup {args.backup} is not a registry database with a transparency log ({error})") from None
        return f"sqlite:///{args.backup}"
    settings = load_settings({"data_dir": args.data_dir, "database_url": args.database_url})
    if not settings.database_url:
        from registry.datadir import DataDir

        DataDir(settings.data_dir).require()
    return settings.effective_database_url


def _log_key(args: argparse.Namespace) -> Any:
    from jpr_client.transparency.note import NoteError, Verifier

    if args.log_public_key:
        try:
            return Verifier.from_key_string(args.log_public_key)
        except NoteError as error:
            raise ValueError(f"--log-public-key: {error}") from None
    if args.credentials is not None:
        from jpr_client.credentials import Credentials

        return Credentials.load(args.credentials).log_verifier
    from registry.datadir import DataDir

    settings = load_settings({"data_dir": args.data_dir})
    data_dir = DataDir(settings.data_dir)
    data_dir.require()
    from jpr_client.transparency.note import Verifier as LogKey

    return LogKey.from_key_string(data_dir.log_public_key())
