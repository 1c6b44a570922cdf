"""The registry's error root.

Each subclass names the gRPC status it maps to; one interceptor in
`registry.server` turns them into `context.abort(code, message)`. The domain
stays free of grpc: the status is carried by name.
"""

from __future__ import annotations

QUOTED_CHARACTERS = 64  # a key id, a UUID, a member name or a payload type fits whole


def quoted(text: str) -> str:
    """Request text as an error message quotes it: whole when short, else a bounded prefix and its length.

    The message travels in the `grpc-message` trailer; quoting a 60,000-character
    field whole would exceed the metadata size limit and turn the refusal into a
    transport failure. The bound holds for the quotation as written, escapes included.
    """
    shown = text[:QUOTED_CHARACTERS]
    while len(repr(shown)) > QUOTED_CHARACTERS + 2:  # two quote marks; "\x00" and "\U000e0001" count in full
        shown = shown[:-1]
    if shown == text:
        return repr(text)
    return f"{shown!r}... ({len(text):,} characters)"


class RegistryError(Exception):
    """A refusal the caller can act on. `str(error)` is sent to the client."""

    status = "INTERNAL"


class InvalidArgument(RegistryError):
    status = "INVALID_ARGUMENT"


class Unauthenticated(RegistryError):
    status = "UNAUTHENTICATED"


class PermissionDenied(RegistryError):
    status = "PERMISSION_DENIED"


class NotFound(RegistryError):
    status = "NOT_FOUND"


class AlreadyExists(RegistryError):
    status = "ALREADY_EXISTS"


class FailedPrecondition(RegistryError):
    status = "FAILED_PRECONDITION"


class ResourceExhausted(RegistryError):
    status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms  # sent as the `grpc-retry-pushback-ms` trailer


class DeadlineExceeded(RegistryError):
    """The caller's deadline passed while the registry worked; the work in progress was abandoned."""

    status = "DEADLINE_EXCEEDED"


class Unavailable(RegistryError):
    """The registry cannot answer correctly right now; the same call may succeed later or elsewhere."""

    status = "UNAVAILABLE"
