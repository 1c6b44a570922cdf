"""Credentials and channels for CLI commands that talk to a running registry."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import grpc

from jpr_client import transport
from jpr_client.client import secure_channel
from jpr_client.credentials import Credentials
from jpr_client.errors import RPCError
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


def connected_channel(credentials: Credentials) -> grpc.Channel:
    """A channel to the credentials' registry, connected first: another registry's CA fails at once, unretried."""
    channel = secure_channel(credentials)
    try:
        transport.connect(channel, credentials.endpoint)
    except RPCError:
        channel.close()
        raise
    return channel


@contextmanager
def reaching(endpoint: str, words: Mapping[str, str] | None = None) -> Iterator[None]:
    """Say a registry that nobody answers for as such, and the registry's names for fields in the flags' words.

    `words` maps what the registry calls a value (`token_prefix`, `CREDIT_REPAIR`) to what the user
    typed (`--token`, `credit-repair`); the registry speaks to every client, the CLI to its user.
    """
    try:
        yield
    except RPCError as error:
        if transport.handshake_failed(error):
            raise RPCError(error.status, transport.handshake_message(endpoint, error.message), error.method) from None
        if transport.not_reached(error):
            raise RPCError(error.status, transport.unreachable_message(endpoint, error.message), error.method) from None
        if words:
            raise RPCError(error.status, in_words(error.message, words), error.method, error.retry_after, error.request_id) from None
        raise


def in_words(message: str, words: Mapping[str, str]) -> str:
    """`message` with each of the registry's names replaced by the user's, whole words only.

    Example:
        >>> in_words("token_prefix must be hex", {"token_prefix": "--token"})
        '--token must be hex'
    """
    pattern = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({pattern})(?![\w-])", lambda match: words[match.group(1)], message)
