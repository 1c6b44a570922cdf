"""`jpr`: the registry's command line (server, association admins, platform engineers)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from jpr_client import __version__
from registry.cli.arguments import CommandParser

# Every command, the module under registry.cli that defines its flags, and its one-line help.
# `jpr COMMAND` imports that one module and `jpr --help` none, so a platform's lookup starts
# without the admin, server and storage code (tests/integration/test_cli_start.py).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("server", "create a new registry data directory"),
    "health": ("server", "ask a running registry's health service (exit 0 when SERVING)"),
    "serve": ("server", "serve the registry over mutual TLS"),
    "db": ("db", "the registry database"),
    "admin": ("admin", "association administration"),
    "member": ("member", "a platform's keys and credentials"),
    "lookup": ("audit", "entry audit: is this applicant under joint punishment?"),
    "report": ("audit", "sign and submit a report of a serious violation"),
    "retract": ("audit", "withdraw one of your reports with a signed retraction"),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `jpr ARGV`: every command's flags when ARGV is None, else only the chosen one's."""
    parser = CommandParser(prog="jpr", description="The Joint Punishment Registry.")
    parser.add_argument("--version", action="version", version=f"jpr {__version__} (protocol jpr.v1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The top level has flags without values only (-h, --version): the first other word is the command.
    chosen = None if argv is None else next((word for word in argv if not word.startswith("-")), "")
    for name, (module, help_text) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        if chosen is None or chosen == name:
            importlib.import_module(f"registry.cli.{module}").configure(name, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    # gRPC's core logs each failed TLS handshake at INFO on stderr: the one-line reason below says it.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    args = build_parser(argv).parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except Exception as error:
        message = _one_line(error)
        if message is None:
            raise
        print(f"jpr: {message}", file=sys.stderr)
        return 1


def _one_line(error: Exception) -> str | None:
    """What `jpr` prints for an error a user can act on; None for a bug, which keeps its traceback.

    The error classes are imported here, not at start: a command's run has loaded their modules
    when it raises one, and `jpr lookup` need not load the data directory's (keys, certificates).
    """
    from jpr_client.credentials import CredentialsError
    from jpr_client.errors import RPCError
    from jpr_client.identifiers import InvalidIdentifier
    from registry.datadir import DataDirError
    from registry.store.errors import SchemaError

    if isinstance(error, RPCError):
        return f"{error.status.name}: {error.message}"
    if isinstance(error, (CredentialsError, InvalidIdentifier, DataDirError, SchemaError, ValueError, OSError)):
        return str(error)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
