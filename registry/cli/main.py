"""`jpr`: the registry's command line (server, association admins, platform engineers)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from jpr_client import __version__
from registry.cli.arguments import CommandParser, UsageError

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
    "audit": ("log_audit", "check the transparency log against a registry database or a backup"),
    "witness": ("witness", "witness the registry's transparency log: cosign checkpoints that extend the last one"),
}

# Exit codes (README, "Scripting with --json"): a script tells these apart without reading the message.
EXIT_REFUSED = 1  # the registry answered with an error status, or a check of jpr's own failed
EXIT_USAGE = 2  # the command line does not parse (argparse's own code)
EXIT_UNREACHABLE = 3  # no answer from the registry: try again later
_UNREACHABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


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
    as_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    try:
        args = build_parser(argv).parse_args(argv)
    except UsageError as error:  # leaves by SystemExit(2), as argparse does
        if not as_json:
            argparse.ArgumentParser.error(error.parser, str(error))
        raise SystemExit(_fail(True, "INVALID_ARGUMENT", f"{error.parser.prog}: {error}", EXIT_USAGE)) from None
    try:
        result: int = args.run(args)
        return result
    except Exception as error:
        failure = _failure(error)
        if failure is None:
            raise
        return _fail(as_json, *failure)


def _fail(as_json: bool, status: str, line: str, code: int, request_id: str | None = None) -> int:
    """Report a failure on stderr: one line, or with --json {"error": {"status": ..., "message": ...}};
    with the id the registry gave the call when it answered, which the association finds in its log."""
    if as_json:
        from registry.cli.output import emit_error

        emit_error(status, line.removeprefix(f"{status}: "), request_id)  # the line names the status; the object has it apart
    else:
        print(f"jpr: {line}" + (f" (request id {request_id})" if request_id else ""), file=sys.stderr)
    return code


def _failure(error: Exception) -> tuple[str, str, int, str | None] | None:
    """The gRPC status (the registry's, or the one its own check would give), one-line message and exit
    code of an error a user can act on; None for a bug, which keeps its traceback."""
    from jpr_client.errors import RPCError

    message = _one_line(error)
    if message is None:
        return None
    if isinstance(error, RPCError):
        status = error.status.name
        return status, message, EXIT_UNREACHABLE if status in _UNREACHABLE else EXIT_REFUSED, error.request_id
    return ("INVALID_ARGUMENT" if isinstance(error, ValueError) else "FAILED_PRECONDITION"), message, EXIT_REFUSED, None


def _one_line(error: Exception) -> str | None:
    """What `jpr` prints for an error a user can act on; None for a bug, which keeps its traceback.

    The error classes are imported here, not at start: a command's run has loaded their modules
    when it raises one, and `jpr lookup` need not load the data directory's (keys, certificates).
    """
    from jpr_client.credentials import CredentialsError
    from jpr_client.errors import RPCError, TransparencyError
    from jpr_client.identifiers import InvalidIdentifier
    from registry.datadir import DataDirError
    from registry.store.errors import SchemaError

    if isinstance(error, RPCError):
        return f"{error.status.name}: {error.message}"
    if isinstance(error, (CredentialsError, InvalidIdentifier, DataDirError, SchemaError, TransparencyError, ValueError, OSError)):
        return str(error)
    return None


if __name__ == "__main__":
    raise SystemExit(main())
