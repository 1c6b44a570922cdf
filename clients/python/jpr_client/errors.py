"""Typed errors of the SDK."""

from __future__ import annotations

from typing import Any

import grpc


class RPCError(Exception):
    """The registry refused or failed a call. `status` is the gRPC status code.

    Example:
        >>> try:  # doctest: +SKIP
        ...     client.get_report("0b6f...")
        ... except RPCError as error:
        ...     if error.status is grpc.StatusCode.NOT_FOUND: ...
    """

    def __init__(self, status: grpc.StatusCode, message: str, method: str, retry_after: float | None = None) -> None:
        super().__init__(f"{method}: {status.name}: {message}")
        self.status = status
        self.message = message
        self.method = method
        self.retry_after = retry_after  # seconds to wait before retrying (RESOURCE_EXHAUSTED by a rate limit)

    @classmethod
    def from_grpc(cls, error: grpc.RpcError, method: str) -> RPCError:
        retry_after = None
        trailers: Any = error.trailing_metadata() or ()
        for key, value in trailers:
            if key == "grpc-retry-pushback-ms":
                retry_after = pushback_seconds(value)
        return cls(error.code(), error.details() or "", method, retry_after)


def pushback_seconds(value: str | bytes) -> float | None:
    """The wait a `grpc-retry-pushback-ms` trailer asks for, or None when it is not a whole number of
    milliseconds (gRPC's retry design: anything else means "do not retry"), so a malformed trailer
    never turns a refusal into a ValueError.

    Example:
        >>> pushback_seconds("250"), pushback_seconds("-1")
        (0.25, None)
    """
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if not (0 < len(text) <= 18 and text.isascii() and text.isdigit()):
        return None
    return int(text) / 1000


class TokenProofError(Exception):
    """The registry's Tokenize answer does not prove evaluation under the pinned OPRF key.

    No token is returned: tokens computed under another key would match nobody,
    so lookups would answer CLEAR for listed people. The usual cause is a
    registry (or a restored replica) running with the wrong `oprf.key`, or
    credentials issued by another registry. Report it to the association.

    Example:
        >>> try:  # doctest: +SKIP
        ...     client.lookup(applicant)
        ... except TokenProofError as error:
        ...     alert_operations(error)
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"Tokenize: {message}")
        self.message = message
