"""`jpr witness ...`: run a witness of the registry's transparency log (c2sp.org/tlog-cosignature).

A witness (a member, a regulator, any party the association lists with `jpr admin witnesses add`)
cosigns each new checkpoint once it has checked it extends the last one it cosigned. Members that
require its cosignature then know the registry showed them the history the witness saw. The state
file is what makes the promise hold across restarts: keep it with the key, and never reset it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from jpr_client.client import RegistryClient
from jpr_client.errors import RPCError
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.cosignature import Cosigner, generate_witness_key
from jpr_client.transparency.monitor import describe
from jpr_client.transparency.note import NoteError
from registry.cli.connect import add_credentials_flag, load_credentials, reaching
from registry.cli.output import add_json_flag, emit_json

DEFAULT_INTERVAL = 10.0  # seconds: the registry signs a checkpoint every few seconds while the log grows


def configure(command: str, parser: argparse.ArgumentParser) -> None:
    witness = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    keygen = witness.add_parser("keygen", help="generate a witness key; print the verifier key to give to the association")
    keygen.add_argument("name", help="the witness's key name, e.g. witness.platform-a.example (what members name in their quorum)")
    keygen.add_argument("--out", help="the private key file to write (mode 0600; default NAME.witness.key)")
    add_json_flag(keygen)
    keygen.set_defaults(run=_keygen)
    run = witness.add_parser("run", help="cosign the registry's newest checkpoint once it extends the last one cosigned")
    add_credentials_flag(run, None)
    run.add_argument("--key", required=True, help="the witness's private key file (`jpr witness keygen`)")
    run.add_argument("--state", required=True, help="the witness's state file: the last checkpoint cosigned (created on first run; never reset it)")
    when = run.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="cosign once and exit")
    when.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, help=f"seconds between checkpoints (default {DEFAULT_INTERVAL:g})")
    run.set_defaults(run=_run)


def _keygen(args: argparse.Namespace) -> int:
    secret, verifier_key = generate_witness_key(args.name)
    out = Path(args.out or f"{args.name}.witness.key")
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ValueError(f"{out} exists: a witness key is never overwritten (its cosignatures would no longer verify); "
                         "choose another --out") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    if args.json:
        emit_json({"name": args.name, "key_file": str(out), "verifier_key": verifier_key})
        return 0
    print(f"private key: {out} (keep it with the witness; never share it)", file=sys.stderr)
    print("give the association this verifier key (`jpr admin witnesses add`):", file=sys.stderr)
    print(verifier_key)
    return 0


def _load_cosigner(path: str) -> Cosigner:
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the witness key file {path}: {error}") from None
    try:
        return Cosigner.from_key_string(text)
    except NoteError as error:
        raise ValueError(f"the witness key file {path} holds no witness key (`jpr witness keygen` writes one): {error}") from None


def _run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise ValueError(f"--interval is {args.interval:g}; give a number of seconds above 0")
    cosigner = _load_cosigner(args.key)
    credentials = load_credentials(args)
    with reaching(credentials.endpoint), RegistryClient(credentials) as client:
        client.connect()
        while True:
            try:
                _show(args, client.witness(cosigner, args.state))
            except RPCError as error:
                if args.once or error.status.name not in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                    raise
                print(f"jpr witness: {error.status.name}: {error.message}; trying again in {args.interval:g} s", file=sys.stderr)
            if args.once:
                return 0
            time.sleep(args.interval)


def _show(args: argparse.Namespace, checkpoint: Checkpoint) -> None:
    if args.json:  # bytes in hex, as every --json answer has them
        emit_json({"origin": checkpoint.origin, "size": checkpoint.size, "root_hash": checkpoint.root_hash.hex()})
    else:  # the root as the note writes it, to compare by eye
        print(f"cosigned {checkpoint.origin}: {describe(checkpoint)}", flush=True)
