"""Credentials and channels for CLI commands that talk to a running registry."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jpr_client.credentials import Credentials
from registry.cli.output import add_json_flag

ENDPOINT_ENV = "JPR_ENDPOINT"
CREDENTIALS_ENV = "JPR_CREDENTIALS"


def add_credentials_flag(parser: argparse.ArgumentParser, default: str | None, *, json_flag: bool = True) -> None:
    parser.add_argument(
        "--credentials",
        default=os.environ.get(CREDENTIALS_ENV, default),
        help=f"credentials file (env {CREDENTIALS_ENV}; default {default or 'none'})",
    )
    parser.add_argument("--endpoint", help=f"override the endpoint in the credentials file (env {ENDPOINT_ENV})")
    if json_flag:
        add_json_flag(parser)


def load_credentials(args: argparse.Namespace, path: str | None = None) -> Credentials:
    """The credentials of --credentials (or of `path`), with --endpoint or JPR_ENDPOINT applied."""
    path = path or args.credentials
    if not path:
        raise ValueError(f"no credentials: pass --credentials FILE or set {CREDENTIALS_ENV}")
    credentials = Credentials.load(Path(path))
    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV)
    return credentials.with_endpoint(endpoint) if endpoint else credentials
