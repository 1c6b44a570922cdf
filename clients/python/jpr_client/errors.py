"""Typed errors of the SDK."""

from __future__ import annotations

from typing import Any

import grpc


REQUEST_ID_KEY = "x-request-id"  # the registry sends every call its id (docs/protocol.md, "Request ids")


class RPCError(Exception):
    """The registry refused or failed a call. `status` is the gRPC status code; `request_id` is the id the
    registry gave the call (None when no registry answered): quote it to the association, who finds the
    call's record in the registry's log by it.

    Example:
        >>> try:  # doctest: +SKIP
        ...     client.get_report("0b6f...")
        ... except RPCError as error:
        ...     if error.status is grpc.StatusCode.NOT_FOUND: ...
        ...     log.warning("registry refused %s (request id %s)", error.method, error.request_id)
    """

    def __init__(
        self, status: grpc.StatusCode, message: str, method: str, retry_after: float | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(f"{method}: {status.name}: {message}" + (f" (request id {request_id})" if request_id else ""))
        self.status = status
        self.message = message
        self.method = method
        self.retry_after = retry_after  # seconds to wait before retrying (RESOURCE_EXHAUSTED by a rate limit)
        self.request_id = request_id

    @classmethod
    def from_grpc(cls, error: grpc.RpcError, method: str) -> RPCError:
        retry_after = None
        trailers: Any = error.trailing_metadata() or ()
        for key, value in trailers:
            if key == "grpc-retry-pushback-ms":
                retry_after = pushback_seconds(value)
        return cls(error.code(), error.details() or "", method, retry_after, request_id(error))


def request_id(call: Any) -> str | None:
    """The id the registry gave a call (its `x-request-id`), from a grpc.Call or a grpc.RpcError; None without one.

    Example:
        >>> response, call = stub.Lookup.with_call(request)  # doctest: +SKIP
        >>> request_id(call)  # doctest: +SKIP
        '9f1c2e4a7b3d5e60'
    """
    for metadata in (call.initial_metadata, call.trailing_metadata):
        for key, value in metadata() or ():
            if key == REQUEST_ID_KEY:
                return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return None


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


class TransparencyError(Exception):
    """The registry's transparency log does not prove what it should: the root of the log errors.

    Every subclass means the registry (or someone between it and you) showed a history that does not
    hold up; none is a transient failure to retry. Keep the message and the state file, and tell the
    association and the other members: the two checkpoints in a fork are the evidence.

    Example:
        >>> try:  # doctest: +SKIP
        ...     client.checkpoint()
        ... except TransparencyError as error:
        ...     page_security_team(error)
    """


class LogSignatureError(TransparencyError):
    """A checkpoint that the registry's log key (pinned in the credentials) did not sign, or that does not parse."""


class WitnessQuorumError(TransparencyError):
    """A checkpoint cosigned by fewer of the required witnesses than the client was told to require."""


class LogForkError(TransparencyError):
    """Two checkpoints that cannot both be true: the same size with different roots, or a newer one that
    no consistency proof links to the one verified before. The registry rewrote its history, or shows
    different histories to different members."""


class LogRollbackError(TransparencyError):
    """A checkpoint older than the one verified before: the registry (or a replica restored from a backup)
    is serving a past state of the log."""


class LogStateError(TransparencyError):
    """A monitor's or witness's state file that cannot be read, or that holds another log's checkpoint.
    It is never replaced silently: the checkpoint in it is what later ones are checked against."""


class LogProofError(TransparencyError):
    """A log entry that does not prove what the registry answered: the commitment, the inclusion proof,
    or the event itself disagrees with a receipt, a change or a match."""
