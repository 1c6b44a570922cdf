"""Typed errors of the SDK."""

from __future__ import annotations

import grpc


class RPCError(Exception):
    """The registry refused or failed a call. `status` is the gRPC status code.

    Example:
        >>> try:  # doctest: +SKIP
        ...     client.get_report("0b6f...")
        ... except RPCError as error:
        ...     if error.status is grpc.StatusCode.NOT_FOUND: ...
    """

    def __init__(self, status: grpc.StatusCode, message: str, method: str) -> None:
        super().__init__(f"{method}: {status.name}: {message}")
        self.status = status
        self.message = message
        self.method = method
