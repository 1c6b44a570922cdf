"""`jpr admin witnesses ...`: the transparency-log witnesses whose cosignatures the registry accepts and serves.

A witness sends its verifier key (`jpr witness keygen` prints it); once added, its cosignatures
(`jpr witness run`) are kept with each checkpoint, and members can require them (MonitorConfig.witnesses).
"""

from __future__ import annotations

import argparse
from typing import Any

from jpr_client.api.jpr.v1 import admin_pb2
from registry.cli import output
from registry.cli.admin_session import AdminSession


def configure(admin: Any, command: Any) -> None:
    """The `witnesses` group under `jpr admin`; `command` is admin's own helper adding one subcommand."""
    witnesses = admin.add_parser("witnesses", aliases=["witness"], help="transparency-log witnesses").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    add = command(witnesses, "add", "accept a witness's cosignatures: its verifier key from `jpr witness keygen`", witnesses_add)
    add.add_argument("verifier_key", help="the witness's signed-note verifier key, NAME+HASH+KEY")
    add.add_argument("--reason", required=True, help="who the witness is and why it is trusted (recorded)")
    remove = command(witnesses, "remove", "stop accepting a witness's cosignatures (those already served stay)", witnesses_remove)
    remove.add_argument("name", help="the witness's key name")
    remove.add_argument("--reason", required=True, help="why (recorded)")
    command(witnesses, "list", "witnesses, current and removed", witnesses_list)


def witnesses_add(args: argparse.Namespace) -> int:
    witness = AdminSession(args).call("AddWitness", admin_pb2.AddWitnessRequest(verifier_key=args.verifier_key, reason=args.reason))
    output.emit_json(_row(witness)) if args.json else print(f"witness {witness.name} added: its cosignatures are accepted")
    return 0


def witnesses_remove(args: argparse.Namespace) -> int:
    witness = AdminSession(args).call("RemoveWitness", admin_pb2.RemoveWitnessRequest(name=args.name, reason=args.reason))
    output.emit_json(_row(witness)) if args.json else print(f"witness {witness.name} removed")
    return 0


def witnesses_list(args: argparse.Namespace) -> int:
    rows = [_row(w) for w in AdminSession(args).call("ListWitnesses", admin_pb2.ListWitnessesRequest()).witnesses]
    if args.json:
        output.emit_json(rows)
    else:
        output.table(rows, ["name", "verifier_key", "added_at", "removed_at"])
    return 0


def _row(witness: admin_pb2.Witness) -> dict[str, Any]:
    return {
        "name": witness.name,
        "verifier_key": witness.verifier_key,
        "added_at": output.utc(witness.added_at),
        "removed_at": output.optional_utc(witness.removed_at, witness.HasField("removed_at")),
    }
