"""`jpr`: the registry's command line (server, association admins, platform engineers)."""

from __future__ import annotations

import argparse
import sys

from jpr_client import __version__
from jpr_client.credentials import CredentialsError
from jpr_client.errors import RPCError
from jpr_client.identifiers import InvalidIdentifier
from registry.cli import admin, audit, db, member, server
from registry.datadir import DataDirError
from registry.store.errors import SchemaError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jpr", description="The Joint Punishment Registry.")
    parser.add_argument("--version", action="version", version=f"jpr {__version__} (protocol jpr.v1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server.register(commands)
    db.register(commands)
    admin.register(commands)
    member.register(commands)
    audit.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except RPCError as error:
        print(f"jpr: {error.status.name}: {error.message}", file=sys.stderr)
    except (CredentialsError, InvalidIdentifier, DataDirError, SchemaError, ValueError, OSError) as error:
        print(f"jpr: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
