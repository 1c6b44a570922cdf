"""An admin's connection to the registry, and how admin commands print a page of rows."""

from __future__ import annotations

import argparse
from typing import Any

from jpr_client.api.jpr.v1 import admin_pb2_grpc
from jpr_client.client import call
from registry.cli import output
from registry.cli.connect import connected_channel, load_credentials, reaching


# The registry's names for request fields and values, and the flags that carry them (connect.in_words).
FLAG_WORDS = {
    "token_prefix": "--token",
    "term_days": "--term-days",
    "page_size": "--page-size",
    "page_token": "--page-token",
    "per_day": "PER_DAY",
    "certificate_sha256": "SHA256",
    "grounds CREDIT_REPAIR": "--grounds credit-repair",
    "grounds ADMIN_CORRECTION": "--grounds correction",
}


class AdminSession:
    def __init__(self, args: argparse.Namespace) -> None:
        self.credentials = load_credentials(args)
        with reaching(self.credentials.endpoint):
            self._channel = connected_channel(self.credentials)
        self._stub = admin_pb2_grpc.AdminStub(self._channel)

    def call(self, method: str, request: Any) -> Any:
        """Reads are retried on UNAVAILABLE by the channel (jpr_client.client.SAFE_TO_REPEAT); decisions never."""
        with reaching(self.credentials.endpoint, FLAG_WORDS):
            return call(method, getattr(self._stub, method), request, 30.0)


def print_page(args: argparse.Namespace, rows: list[dict[str, Any]], next_token: str, columns: list[str]) -> None:
    if args.json:
        output.emit_json({"items": rows, "next_page_token": next_token})
        return
    output.table(rows, columns)
    if next_token:
        print(f"more: --page-token {next_token}")
